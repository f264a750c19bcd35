"""`AuditLog`: what every admin action and security-relevant event calls.

    await hs.get_audit_log().record(AuditAction.USER_DEACTIVATED, actor=admin_id,
                                    target=user_id, request=request, details={"erase": True})

Entries are append-only (docs/admin.md, "Audit log"). Inside a store transaction, use
`AuditLogStore.append_txn` instead, so that the entry commits with the change it records.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class RequestOrigin(Protocol):
    """Where a request came from (an HTTP request has both; handlers don't import rest)."""

    client_ip: str

    @property
    def user_agent(self) -> str: ...


class AuditAction(enum.StrEnum):
    """The recorded actions. Values are stable: tooling filters on them."""

    # security events from users themselves
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    PASSWORD_CHANGED = "password_changed"
    DEVICE_ADDED = "device_added"
    DEVICE_REMOVED = "device_removed"
    # admin actions on users
    USER_CREATED = "user_created"
    USER_MODIFIED = "user_modified"
    USER_DEACTIVATED = "user_deactivated"
    USER_REACTIVATED = "user_reactivated"
    USER_PASSWORD_RESET = "user_password_reset"
    USER_SUSPENDED = "user_suspended"
    USER_UNSUSPENDED = "user_unsuspended"
    USER_LOCKED = "user_locked"
    USER_UNLOCKED = "user_unlocked"
    USER_SHADOW_BANNED = "user_shadow_banned"
    USER_SHADOW_UNBANNED = "user_shadow_unbanned"
    USER_RATELIMIT_OVERRIDE = "user_ratelimit_override"
    USER_LOGGED_IN_AS = "user_logged_in_as"
    USER_EVENTS_REDACTED = "user_events_redacted"
    USER_ROLE_CHANGED = "user_role_changed"
    # admin actions on rooms
    ROOM_DELETED = "room_deleted"
    ROOM_BLOCKED = "room_blocked"
    ROOM_UNBLOCKED = "room_unblocked"
    ROOM_PURGED = "room_history_purged"
    ROOM_ADMIN_MADE = "room_admin_made"
    ROOM_FORCE_JOIN = "room_force_join"
    # media
    MEDIA_QUARANTINED = "media_quarantined"
    MEDIA_UNQUARANTINED = "media_unquarantined"
    MEDIA_PROTECTED = "media_protected"
    MEDIA_DELETED = "media_deleted"
    # moderation and server
    REPORT_DELETED = "report_deleted"
    CONTENT_FILTER_CHANGED = "content_filter_changed"
    MODERATION_DECIDED = "moderation_decided"
    SERVER_NOTICE_SENT = "server_notice_sent"
    REGISTRATION_TOKEN_CHANGED = "registration_token_changed"


class AuditLog:
    def __init__(self, hs: HomeServer) -> None:
        self._store = hs.get_datastores().audit_log
        self._clock = hs.get_clock()

    async def record(self, action: AuditAction, *, actor: str | None,
                     target: str | None = None, request: RequestOrigin | None = None,
                     details: dict[str, Any] | None = None) -> int:
        """Append one entry; `request` gives the IP and user agent. Returns its id."""
        ip = request.client_ip if request is not None else None
        user_agent = request.user_agent if request is not None else None
        return await self._store.append(self._clock.time_msec(), action.value, actor, target,
                                        ip, user_agent, details or {})
