"""Membership changes of local users in local rooms: invite, join, leave, kick, ban,
unban, knock. The auth rules decide what is allowed; this module shapes the events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.event_creation import EventSpec, SentEvent
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import UserID

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class RoomMemberHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        stores = hs.get_datastores()
        self._profiles = stores.profiles
        self._events = stores.events
        self._members = stores.room_members
        self._creation = hs.get_event_creation_handler()

    async def update_membership(self, sender: str, room_id: str, target: str,
                                membership: str, reason: str | None = None,
                                txn_key: tuple[str, str, str] | None = None,
                                extra_content: dict[str, Any] | None = None) -> SentEvent:
        """Send the `m.room.member` event for `target` (auth rules decide if allowed).

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a bad user ID, 404 M_NOT_FOUND for an
                unknown room, 403 M_FORBIDDEN when the auth rules refuse.
        """
        UserID.parse(target)
        if await self._events.get_room_version(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        content: dict[str, Any] = dict(extra_content or {})
        content["membership"] = membership
        if reason is not None:
            content["reason"] = reason
        if membership in ("join", "invite", "knock") and self._hs.is_mine_id(target):
            profile = await self._profiles.get_profile(target)
            if profile is not None:
                if profile.displayname:
                    content.setdefault("displayname", profile.displayname)
                if profile.avatar_url:
                    content.setdefault("avatar_url", profile.avatar_url)
        return await self._creation.send(EventSpec(
            room_id=room_id, type="m.room.member", sender=sender, content=content,
            state_key=target, txn_key=txn_key))

    async def invite(self, sender: str, room_id: str, invitee: str, is_direct: bool = False,
                     reason: str | None = None) -> SentEvent:
        extra = {"is_direct": True} if is_direct else None
        return await self.update_membership(sender, room_id, invitee, "invite", reason,
                                            extra_content=extra)

    async def join(self, user_id: str, room_id: str, reason: str | None = None) -> SentEvent:
        return await self.update_membership(user_id, room_id, user_id, "join", reason)

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> SentEvent:
        return await self.update_membership(user_id, room_id, user_id, "leave", reason)
