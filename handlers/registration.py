"""Creating accounts: username checks, password policy, and the account itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import MAX_USERID_LENGTH, is_valid_localpart

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class RegistrationHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        self._clock = hs.get_clock()
        self._users = hs.get_datastores().users
        self._passwords = hs.get_password_handler()

    def check_username_grammar(self, localpart: str) -> str:
        """Return the full user ID for `localpart`, or raise 400 M_INVALID_USERNAME."""
        if not localpart or not is_valid_localpart(localpart):
            raise MatrixError(
                400, Codes.INVALID_USERNAME,
                "User ID can only contain characters a-z, 0-9, or '=_-./+'",
            )
        user_id = f"@{localpart}:{self._server_name}"
        if len(user_id) > MAX_USERID_LENGTH:
            raise MatrixError(400, Codes.INVALID_USERNAME,
                              f"User ID may not be longer than {MAX_USERID_LENGTH} characters")
        return user_id

    async def check_username_available(self, localpart: str) -> str:
        """Grammar check plus 400 M_USER_IN_USE if taken (case-insensitively)."""
        user_id = self.check_username_grammar(localpart)
        if await self._users.get_user_case_insensitive(user_id):
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.")
        return user_id

    async def register_user(self, localpart: str, password: str | None = None,
                            admin: bool = False, displayname: str | None = None,
                            user_type: str | None = None) -> str:
        """Create an account; returns its user ID.

        Raises:
            MatrixError: 400 M_INVALID_USERNAME, M_USER_IN_USE or M_WEAK_PASSWORD.
        """
        user_id = await self.check_username_available(localpart)
        password_hash = None
        if password is not None:
            self._passwords.validate_policy(password)
            password_hash = await self._passwords.hash(password)
        created = await self._users.register_user(
            user_id, password_hash, self._clock.time_msec(), admin=admin, user_type=user_type,
            displayname=displayname if displayname is not None else localpart,
        )
        if not created:
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.")
        return user_id
