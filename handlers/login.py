"""Logging in with a password, and creating the device and tokens of a new session."""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING, Any

import attrs

from handlers.tokens import IssuedTokens
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import UserID

if TYPE_CHECKING:
    from homeserver.server import HomeServer

DEVICE_ID_LENGTH = 10
MAX_DEVICE_ID_LENGTH = 255


def random_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(DEVICE_ID_LENGTH))


@attrs.frozen(slots=True)
class Session:
    user_id: str
    device_id: str
    tokens: IssuedTokens

    def to_json(self, server_name: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "user_id": self.user_id,
            "access_token": self.tokens.access_token,
            "device_id": self.device_id,
            "home_server": server_name,
        }
        if self.tokens.refresh_token is not None:
            body["refresh_token"] = self.tokens.refresh_token
            body["expires_in_ms"] = self.tokens.expires_in_ms
        return body


class LoginHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        stores = hs.get_datastores()
        self._users = stores.users
        self._devices = stores.devices
        self._device_lists = hs.get_device_list_handler()
        self._passwords = hs.get_password_handler()
        self._tokens = hs.get_token_handler()
        self._limits = hs.get_ratelimiters()
        self._password_enabled = (hs.config.password_config.enabled
                                  and hs.config.password_config.localdb_enabled)

    def login_flows(self) -> list[dict[str, Any]]:
        flows: list[dict[str, Any]] = []
        if self._password_enabled:
            flows.append({"type": "m.login.password"})
        return flows

    def user_id_from_identifier(self, identifier: Any) -> str:
        """The full user ID an `m.id.user` identifier names (localpart or full ID)."""
        if not isinstance(identifier, dict):
            raise MatrixError(400, Codes.BAD_JSON, "'identifier' must be an object")
        if identifier.get("type") != "m.id.user":
            raise MatrixError(400, Codes.UNKNOWN, "Unknown identifier type")
        user = identifier.get("user")
        if not isinstance(user, str) or not user:
            raise MatrixError(400, Codes.BAD_JSON, "'identifier.user' must be a string")
        if user.startswith("@"):
            return str(UserID.parse(user))
        return f"@{user}:{self._server_name}"

    async def _canonical_user_id(self, user_id: str) -> str | None:
        """The stored ID for a login name: exact, else the one case-insensitive match."""
        if await self._users.get_user(user_id) is not None:
            return user_id
        matches = await self._users.get_user_case_insensitive(user_id)
        return matches[0] if len(matches) == 1 else None

    async def check_password_for_user(self, user_id: str, password: str) -> bool:
        if not self._password_enabled:
            return False
        user = await self._users.get_user(user_id)
        matches = await self._passwords.check(password, user.password_hash if user else None)
        return user is not None and matches

    # POST /_matrix/client/v3/login  (type m.login.password)
    async def login_with_password(self, identifier: Any, password: str, client_ip: str,
                                  device_id: str | None, display_name: str | None,
                                  refreshable: bool) -> Session:
        """Check the password and open a session.

        Raises:
            MatrixError: 403 M_FORBIDDEN for an unknown user or wrong password (the same
                answer for both), 403 M_USER_DEACTIVATED, 429 when rate limited.
        """
        if not self._password_enabled:
            raise MatrixError(400, Codes.UNKNOWN, "Password login is disabled")
        self._limits.login_address.check(client_ip)
        named_id = self.user_id_from_identifier(identifier)
        self._limits.login_account.check(named_id.lower())
        self._limits.login_failed_attempts.check(named_id.lower(), update=False)
        user_id = await self._canonical_user_id(named_id)
        user = await self._users.get_user(user_id) if user_id else None
        # A bcrypt check runs for unknown and deactivated accounts too (against a dummy
        # hash), so the time taken does not tell which accounts exist.
        stored = user.password_hash if user is not None and not user.deactivated else None
        matches = await self._passwords.check(password, stored)
        # Deactivation removes the password hash, so it is reported whatever the
        # password (as Synapse does).
        if user is not None and user.deactivated:
            raise MatrixError(403, Codes.USER_DEACTIVATED, "This account has been deactivated")
        if user is None or not matches:
            self._limits.login_failed_attempts.record(named_id.lower())
            raise MatrixError(403, Codes.FORBIDDEN, "Invalid username or password")
        if user.locked:
            raise MatrixError(401, Codes.USER_LOCKED, "This account has been locked")
        return await self.create_session(user.user_id, device_id, display_name, refreshable)

    async def create_session(self, user_id: str, device_id: str | None,
                             display_name: str | None, refreshable: bool) -> Session:
        """Create (or reuse) the device and issue its tokens."""
        if device_id is not None and not 0 < len(device_id) <= MAX_DEVICE_ID_LENGTH:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid device_id")
        created = False
        if device_id is None:
            for _ in range(5):
                device_id = random_device_id()
                if await self._devices.store_device(user_id, device_id, display_name):
                    created = True
                    break
        else:
            created = await self._devices.store_device(user_id, device_id, display_name)
        assert device_id is not None
        if created:
            await self._device_lists.notify_device_change(user_id, [device_id])
        tokens = await self._tokens.issue(user_id, device_id, refreshable)
        return Session(user_id, device_id, tokens)
