"""Authenticating HTTP requests: the access token from the `Authorization` header."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.auth import Requester
from homeserver.errors import Codes, MatrixError
from rest.http import HttpRequest

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def get_access_token_from_request(request: HttpRequest) -> str | None:
    """The token from `Authorization: Bearer <token>`; query-string tokens are not accepted."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MatrixError(401, Codes.MISSING_TOKEN, "Invalid Authorization header")
    return token.strip()


class Auth:
    """What servlets call first: `requester = await auth.get_user_by_req(request)`."""

    def __init__(self, hs: HomeServer) -> None:
        self._handler = hs.get_auth_handler()

    async def get_user_by_req(self, request: HttpRequest, allow_guest: bool = False,
                              allow_locked: bool = False,
                              allow_expired: bool = False) -> Requester:
        """Check the request's access token.

        Raises:
            MatrixError: 401 M_MISSING_TOKEN without a token, 401 M_UNKNOWN_TOKEN or
                M_USER_LOCKED from the token check, 403 M_GUEST_ACCESS_FORBIDDEN.
        """
        token = get_access_token_from_request(request)
        if token is None:
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access token")
        requester = await self._handler.get_user_by_access_token(token, allow_locked,
                                                                 allow_expired)
        if requester.is_guest and not allow_guest:
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access not allowed")
        request.requester = requester
        await self._handler.record_last_seen(requester, request.client_ip, request.user_agent)
        return requester

    async def is_server_admin(self, requester: Requester) -> bool:
        return await self._handler.is_server_admin(requester.user_id)

    async def require_server_admin(self, request: HttpRequest) -> Requester:
        """Authenticate and require a server admin (403 M_FORBIDDEN otherwise)."""
        requester = await self.get_user_by_req(request)
        if not await self._handler.is_server_admin(requester.user_id):
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a server admin")
        return requester

    async def require_moderator(self, request: HttpRequest) -> Requester:
        """Authenticate and require a server admin or a moderator (403 otherwise)."""
        requester = await self.get_user_by_req(request)
        if await self._handler.get_admin_role(requester.user_id) is None:
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a server admin or moderator")
        return requester
