"""Issuing, refreshing and revoking access and refresh tokens.

Tokens are 256-bit random values with a readable prefix (`axo_` access, `axr_` refresh);
only their SHA-256 hashes are stored.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

import attrs

from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@attrs.frozen(slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str | None
    #: milliseconds until the access token expires, if it does
    expires_in_ms: int | None


class TokenHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._store = hs.get_datastores().tokens
        self._access_lifetime = hs.config.refreshable_access_token_lifetime
        self._refresh_lifetime = hs.config.refresh_token_lifetime

    async def issue(self, user_id: str, device_id: str | None,
                    refreshable: bool = False) -> IssuedTokens:
        """Issue an access token (and a refresh token if the client asked and it is enabled)."""
        now = self._clock.time_msec()
        access = new_token("axo_")
        if not refreshable or not self._access_lifetime or device_id is None:
            await self._store.add_access_token(user_id, hash_token(access), device_id, None)
            return IssuedTokens(access, None, None)
        refresh = new_token("axr_")
        refresh_expiry = now + self._refresh_lifetime if self._refresh_lifetime else None
        refresh_id = await self._store.add_refresh_token(
            user_id, hash_token(refresh), device_id, refresh_expiry
        )
        await self._store.add_access_token(
            user_id, hash_token(access), device_id, now + self._access_lifetime, refresh_id
        )
        return IssuedTokens(access, refresh, self._access_lifetime)

    # POST /_matrix/client/v3/refresh
    async def refresh(self, refresh_token: str) -> IssuedTokens:
        """Exchange a refresh token for a new pair.

        The old pair keeps working until the new access or refresh token is first used.
        """
        row = await self._store.get_refresh_token(hash_token(refresh_token))
        now = self._clock.time_msec()
        if row is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown refresh token",
                              soft_logout=False)
        if row.next_token_used:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Refresh token was already used",
                              soft_logout=False)
        if row.expiry_ts is not None and row.expiry_ts <= now:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Refresh token has expired",
                              soft_logout=False)
        assert self._access_lifetime is not None
        refresh = new_token("axr_")
        refresh_expiry = now + self._refresh_lifetime if self._refresh_lifetime else None
        new_refresh_id = await self._store.add_refresh_token(
            row.user_id, hash_token(refresh), row.device_id, refresh_expiry
        )
        access = new_token("axo_")
        await self._store.add_access_token(
            row.user_id, hash_token(access), row.device_id, now + self._access_lifetime,
            new_refresh_id,
        )
        await self._store.replace_refresh_token(row.token_id, new_refresh_id)
        return IssuedTokens(access, refresh, self._access_lifetime)
