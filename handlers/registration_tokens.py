"""Token-authenticated registration: the `m.login.registration_token` UIA stage, the
validity check, and the admin operations on tokens (Synapse's admin API)."""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING, Any

from handlers.ui_auth import SESSION_LIFETIME_MS, StageFailed
from homeserver.errors import Codes, MatrixError, NotFoundError
from storage.stores.registration_tokens import KEEP, Keep, RegistrationTokenRow

if TYPE_CHECKING:
    from homeserver.server import HomeServer
    from storage.stores.ui_auth import UIAuthSession

REGISTRATION_TOKEN = "m.login.registration_token"

#: the characters of a token (the spec's opaque identifier grammar)
TOKEN_CHARS = string.ascii_letters + string.digits + "._~-"
MAX_TOKEN_LENGTH = 64
DEFAULT_TOKEN_LENGTH = 16
_GENERATE_ATTEMPTS = 3


class RegistrationTokenHandler:
    """Built by `RegistrationHandler`, which registers `check_stage` with UIA."""

    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._store = hs.get_datastores().registration_tokens
        self._limiter = hs.get_ratelimiters().registration
        self._registration_enabled = hs.config.enable_registration

    async def _release_expired(self) -> None:
        # Uses held by sessions that can no longer finish go back to the token. Done
        # lazily where the counts matter, so no timer is needed.
        await self._store.release_expired_claims(self._clock.time_msec() - SESSION_LIFETIME_MS)

    # -- registration --

    async def check_stage(self, auth: dict[str, Any], session: UIAuthSession,
                          for_user_id: str | None) -> str:
        """The `m.login.registration_token` stage: the session claims one use of the token.

        Raises:
            StageFailed: M_FORBIDDEN for an unknown, used-up or expired token (401 challenge).
            MatrixError: 400 for a missing token or one other than the session already holds.
        """
        token = auth.get("token")
        if token is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing registration token")
        if not isinstance(token, str):
            raise MatrixError(400, Codes.BAD_JSON, "Registration token must be a string")
        await self._release_expired()
        held = await self._store.claim(token, session.session_id, self._clock.time_msec())
        if held is None:
            raise StageFailed(Codes.FORBIDDEN, "Invalid registration token")
        if held != token:
            raise MatrixError(400, Codes.INVALID_PARAM, "Registration token has changed")
        return token

    async def use(self, session_id: str) -> None:
        """Registration under `session_id` succeeded: its token use becomes completed."""
        await self._store.use_claim(session_id)

    # GET /_matrix/client/v1/register/m.login.registration_token/validity
    async def check_validity(self, token: str, client_ip: str) -> bool:
        # Rate limited first: this endpoint is an oracle for guessing tokens.
        self._limiter.check(f"token_validity:{client_ip}")
        if not self._registration_enabled:
            raise MatrixError(403, Codes.FORBIDDEN, "Registration has been disabled")
        await self._release_expired()
        return await self._store.is_valid(token, self._clock.time_msec())

    # -- administration (GET/POST/PUT/DELETE /_synapse/admin/v1/registration_tokens...) --

    async def list_tokens(self, valid: bool | None) -> list[RegistrationTokenRow]:
        await self._release_expired()
        return await self._store.list_tokens(valid, self._clock.time_msec())

    async def get_token(self, token: str) -> RegistrationTokenRow:
        await self._release_expired()
        row = await self._store.get_token(token)
        if row is None:
            raise NotFoundError(f"No such registration token: {token}")
        return row

    async def create_token(self, token: str | None, uses_allowed: int | None,
                           expiry_time: int | None, length: int) -> RegistrationTokenRow:
        """Create a token, random of `length` characters when `token` is None.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a bad value or a token that exists.
        """
        if token is not None:
            if not 0 < len(token) <= MAX_TOKEN_LENGTH:
                raise MatrixError(400, Codes.INVALID_PARAM, "token must not be empty and must "
                                  f"not be longer than {MAX_TOKEN_LENGTH} characters")
            if not set(token) <= set(TOKEN_CHARS):
                raise MatrixError(400, Codes.INVALID_PARAM, "token must consist only of "
                                  "characters matched by the regex [A-Za-z0-9._~-]")
        elif not 0 < length <= MAX_TOKEN_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"length must be greater than zero and not greater than "
                              f"{MAX_TOKEN_LENGTH}")
        self._check_uses_allowed(uses_allowed)
        self._check_expiry_time(expiry_time)

        if token is not None:
            if not await self._store.create_token(token, uses_allowed, expiry_time):
                raise MatrixError(400, Codes.INVALID_PARAM, f"Token already exists: {token}")
        else:
            for _ in range(_GENERATE_ATTEMPTS):
                token = "".join(secrets.choice(TOKEN_CHARS) for _ in range(length))
                if await self._store.create_token(token, uses_allowed, expiry_time):
                    break
            else:
                raise MatrixError(500, Codes.UNKNOWN, "Unable to generate a unique token")
        return RegistrationTokenRow(token, uses_allowed, 0, 0, expiry_time)

    async def update_token(self, token: str, uses_allowed: int | None | Keep = KEEP,
                           expiry_time: int | None | Keep = KEEP) -> RegistrationTokenRow:
        """Change the given fields; 404 M_NOT_FOUND if there is no such token."""
        if not isinstance(uses_allowed, Keep):
            self._check_uses_allowed(uses_allowed)
        if not isinstance(expiry_time, Keep):
            self._check_expiry_time(expiry_time)
        row = await self._store.update_token(token, uses_allowed, expiry_time)
        if row is None:
            raise NotFoundError(f"No such registration token: {token}")
        return row

    async def delete_token(self, token: str) -> None:
        if not await self._store.delete_token(token):
            raise NotFoundError(f"No such registration token: {token}")

    @staticmethod
    def _check_uses_allowed(uses_allowed: int | None) -> None:
        # The column is a 32-bit INTEGER (as in Synapse).
        if uses_allowed is not None and not 0 <= uses_allowed < 2**31:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "uses_allowed must be a non-negative integer or null")

    def _check_expiry_time(self, expiry_time: int | None) -> None:
        if expiry_time is not None and expiry_time < self._clock.time_msec():
            raise MatrixError(400, Codes.INVALID_PARAM, "expiry_time must not be in the past")
        if expiry_time is not None and expiry_time >= 2**63:
            raise MatrixError(400, Codes.INVALID_PARAM, "expiry_time is too far in the future")
