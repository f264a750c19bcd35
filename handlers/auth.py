"""Who an access token belongs to: `Requester` and token validation (no HTTP here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from handlers.tokens import hash_token
from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# Device "last seen" is written at most this often per device.
LAST_SEEN_INTERVAL_MS = 10 * 60 * 1000


#: admin roles (docs/admin.md, "Roles"): a moderator handles reports, the moderation queue
#: and room blocking, but not users or server settings
ROLE_ADMIN = "admin"
ROLE_MODERATOR = "moderator"


@attrs.frozen(slots=True)
class Requester:
    """The authenticated user behind a request."""

    user_id: str
    device_id: str | None
    access_token_id: int
    is_guest: bool = False
    shadow_banned: bool = False


class AuthHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        stores = hs.get_datastores()
        self._tokens = stores.tokens
        self._users = stores.users
        self._devices = stores.devices
        self._last_seen: dict[tuple[str, str], int] = {}

    async def get_user_by_access_token(self, token: str, allow_locked: bool = False,
                                       allow_expired: bool = False) -> Requester:
        """Validate an access token.

        Raises:
            MatrixError: 401 M_UNKNOWN_TOKEN for an unknown, revoked or expired token
                (expired: `soft_logout: true`); 401 M_USER_LOCKED for a locked account.
        """
        row = await self._tokens.get_access_token(hash_token(token))
        if row is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown access token",
                              soft_logout=False)
        if (row.valid_until_ms is not None and not allow_expired
                and row.valid_until_ms <= self._clock.time_msec()):
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Access token has expired",
                              soft_logout=True)
        user = await self._users.get_user(row.user_id)
        if user is None or user.deactivated:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown access token",
                              soft_logout=False)
        if user.locked and not allow_locked:
            raise MatrixError(401, Codes.USER_LOCKED, "This account has been locked",
                              soft_logout=True)
        if row.refresh_token_id is not None and not row.used:
            await self._tokens.mark_access_token_used(row.token_id)
        return Requester(
            user_id=row.user_id, device_id=row.device_id, access_token_id=row.token_id,
            is_guest=user.is_guest, shadow_banned=user.shadow_banned,
        )

    async def is_server_admin(self, user_id: str) -> bool:
        user = await self._users.get_user(user_id)
        return bool(user and user.admin)

    async def get_admin_role(self, user_id: str) -> str | None:
        """`"admin"` for a full server admin, `"moderator"` for a moderator, else None."""
        user = await self._users.get_user(user_id)
        if user is None or user.deactivated:
            return None
        if user.admin:
            return ROLE_ADMIN
        return ROLE_MODERATOR if user.admin_role == ROLE_MODERATOR else None

    async def record_last_seen(self, requester: Requester, ip: str, user_agent: str) -> None:
        """Note the device's last use, at most once per LAST_SEEN_INTERVAL_MS."""
        if requester.device_id is None:
            return
        key = (requester.user_id, requester.device_id)
        now = self._clock.time_msec()
        if now - self._last_seen.get(key, -LAST_SEEN_INTERVAL_MS) < LAST_SEEN_INTERVAL_MS:
            return
        self._last_seen[key] = now
        await self._devices.update_last_seen(requester.user_id, requester.device_id, now, ip,
                                             user_agent)
