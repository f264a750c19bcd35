"""OpenID tokens (client-server API "OpenID"): a client asks for a token proving who its
user is, hands it to a third party (an integration manager, a widget), and the third party
asks this server (`GET /_matrix/federation/v1/openid/userinfo`) whom it belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.tokens import hash_token, new_token
from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: a token's lifetime, as Synapse's default
OPENID_TOKEN_LIFETIME_MS = 3600_000


class OpenIdHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._store = hs.get_datastores().openid
        self._clock = hs.get_clock()
        self._server_name = hs.hostname

    # POST /_matrix/client/v3/user/{userId}/openid/request_token
    async def request_token(self, requester_id: str, user_id: str) -> dict[str, Any]:
        """A new token for the requester.

        Raises:
            MatrixError: 403 M_FORBIDDEN for a token of another user.
        """
        if requester_id != user_id:
            raise MatrixError(403, Codes.FORBIDDEN,
                              "Cannot request OpenID tokens for other users")
        token = new_token("oi_")
        now = self._clock.time_msec()
        await self._store.add_token(hash_token(token), user_id,
                                    now + OPENID_TOKEN_LIFETIME_MS, now)
        return {"access_token": token, "token_type": "Bearer",
                "matrix_server_name": self._server_name,
                "expires_in": OPENID_TOKEN_LIFETIME_MS // 1000}

    # GET /_matrix/federation/v1/openid/userinfo
    async def get_userinfo(self, token: str | None) -> dict[str, Any]:
        """`{"sub": user_id}` for a valid token.

        Raises:
            MatrixError: 401 M_MISSING_TOKEN without a token, 401 M_UNKNOWN_TOKEN for an
                unknown or expired one.
        """
        if not token:
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access_token")
        user_id = await self._store.get_user_for_token(hash_token(token),
                                                       self._clock.time_msec())
        if user_id is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Access Token unknown or expired")
        return {"sub": user_id}
