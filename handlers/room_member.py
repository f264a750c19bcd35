"""Membership changes of local users in local rooms: invite, join, leave, kick, ban,
unban, knock. The auth rules decide what is allowed; this module shapes the events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.restricted import AUTHORISING_USER
from handlers.event_creation import EventSpec, SentEvent
from handlers.ratelimit import check_all
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import RoomAlias, UserID

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
        self._state = stores.state
        self._rooms = stores.rooms
        self._limits = hs.get_ratelimiters()
        self._account_data = hs.get_account_data_handler()

    async def update_membership(self, sender: str, room_id: str, target: str,
                                membership: str, reason: str | None = None,
                                txn_key: tuple[str, str, str] | None = None,
                                extra_content: dict[str, Any] | None = None,
                                ratelimit: bool = True) -> SentEvent:
        """Send the `m.room.member` event for `target` (auth rules decide if allowed).

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a bad user ID, 404 M_NOT_FOUND for an
                unknown room, 403 M_FORBIDDEN when the auth rules refuse, 429 over the
                `rc_joins`/`rc_joins_per_room`/`rc_invites` limits.
        """
        UserID.parse(target)
        if await self._events.get_room_version(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if membership == "invite" and target != sender and self._hs.is_mine_id(target):
            await self._account_data.check_invites_allowed(target)
        if ratelimit:
            await self._ratelimit(sender, room_id, target, membership)
        content = await self._member_content(target, membership, reason, extra_content)
        if membership == "join" and sender == target:
            # A restricted room: one of our members who may invite vouches for the join.
            fed = self._hs.get_federation_membership_handler()
            via = await fed.restricted_join_authoriser(room_id, target)
            if via is not None:
                content[AUTHORISING_USER] = via
        return await self._creation.send(EventSpec(
            room_id=room_id, type="m.room.member", sender=sender, content=content,
            state_key=target, txn_key=txn_key))

    async def _ratelimit(self, sender: str, room_id: str, target: str,
                         membership: str) -> None:
        limits = self._limits
        if membership == "invite":
            check_all((limits.invites_per_room, room_id), (limits.invites_per_user, target),
                      (limits.invites_per_issuer, sender))
        elif membership == "join" and sender == target:
            # A member changing their profile re-sends their join: not a new join.
            current = await self._members.get_local_membership(sender, room_id)
            if current is None or current.membership != "join":
                check_all((limits.joins_local, sender), (limits.joins_per_room, room_id))

    async def _member_content(self, target: str, membership: str, reason: str | None,
                              extra_content: dict[str, Any] | None = None) -> dict[str, Any]:
        content: dict[str, Any] = dict(extra_content or {})
        # Only our restricted-join logic may name an authorising user: a client's value
        # would be trusted by the auth rules (stripped unconditionally, as Synapse).
        content.pop(AUTHORISING_USER, None)
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
        return content

    async def invite(self, sender: str, room_id: str, invitee: str, is_direct: bool = False,
                     reason: str | None = None, ratelimit: bool = True) -> SentEvent:
        extra = {"is_direct": True} if is_direct else None
        return await self.update_membership(sender, room_id, invitee, "invite", reason,
                                            extra_content=extra, ratelimit=ratelimit)

    async def _current_membership(self, room_id: str, user_id: str) -> str | None:
        state = await self._state.get_current_state_ids(room_id)
        event_id = state.get(("m.room.member", user_id))
        if event_id is None:
            return None
        event = await self._events.get_event(event_id)
        return event.membership if event is not None else None

    async def _require_room(self, room_id: str) -> None:
        if await self._events.get_room_version(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")

    async def resolve_room(self, room_id_or_alias: str) -> str:
        """A room ID from a room ID or a local alias (404 M_NOT_FOUND if unknown here)."""
        if room_id_or_alias.startswith("#"):
            RoomAlias.parse(room_id_or_alias)
            found = await self._rooms.get_alias(room_id_or_alias)
            if found is None:
                raise MatrixError(404, Codes.NOT_FOUND, "Room alias not found")
            return found[0]
        if not room_id_or_alias.startswith("!"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Expected a room ID or alias")
        if await self._events.get_room_version(room_id_or_alias) is None:
            # Remote rooms need federation (a later feature).
            raise MatrixError(404, Codes.NOT_FOUND, "No known servers for this room")
        return room_id_or_alias

    async def resolve_room_for_join(self, room_id_or_alias: str,
                                    servers: list[str] | tuple[str, ...] = ()
                                    ) -> tuple[str, list[str]]:
        """(room ID, servers to join through) from a room ID or an alias (a remote alias
        is asked of its server over federation); the room need not be known here.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for neither; 404 M_NOT_FOUND for an unknown
                alias.
        """
        if room_id_or_alias.startswith("#"):
            alias = RoomAlias.parse(room_id_or_alias)
            if not self._hs.is_mine_server_name(alias.domain):
                fed = self._hs.get_federation_membership_handler()
                room_id, alias_servers = await fed.query_room_alias(room_id_or_alias)
                return room_id, [*alias_servers, *servers, alias.domain]
            return await self.resolve_room(room_id_or_alias), list(servers)
        if not room_id_or_alias.startswith("!"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Expected a room ID or alias")
        return room_id_or_alias, list(servers)

    # POST /_matrix/client/v3/join/{roomIdOrAlias}, /rooms/{roomId}/join
    async def join(self, user_id: str, room_id: str, reason: str | None = None,
                   servers: list[str] | tuple[str, ...] = ()) -> SentEvent:
        """Join; joining a room one is already in sends nothing new (idempotent). A room
        our server is not in is joined through one of `servers`, the inviter's server or
        the room ID's server (make_join/send_join)."""
        fed = self._hs.get_federation_membership_handler()
        if not await fed.is_host_in_room(room_id):
            invite = await self._members.get_local_membership(user_id, room_id)
            inviter: list[str] = []
            if invite is not None and invite.membership == "invite":
                invite_event = await self._events.get_event(invite.event_id)
                if invite_event is not None:
                    inviter = [UserID.parse(invite_event.sender).domain]
            candidates = fed.candidate_servers(room_id, servers, inviter)
            if candidates:
                check_all((self._limits.joins_remote, user_id),
                          (self._limits.joins_per_room, room_id))
                content = await self._member_content(user_id, "join", reason)
                joined = await fed.join_remote_room(user_id, room_id, candidates, content)
                return SentEvent(joined.event, joined.stream_ordering)
        await self._require_room(room_id)
        if await self._current_membership(room_id, user_id) == "join":
            state = await self._state.get_current_state_ids(room_id)
            existing = await self._events.get_event(state[("m.room.member", user_id)])
            ordering = await self._events.get_stream_ordering(existing.event_id) \
                if existing is not None else None
            if existing is not None and ordering is not None:
                return SentEvent(existing, ordering, new=False)
        return await self.update_membership(user_id, room_id, user_id, "join", reason)

    # POST /_matrix/client/v3/rooms/{roomId}/leave
    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> SentEvent | None:
        """Leave (or reject an invite, or withdraw a knock). Leaving a room already left
        is a no-op (None); a room never joined is 403. An invite to a room our server
        is not in is rejected through the inviter's server (make_leave/send_leave)."""
        local = await self._members.get_local_membership(user_id, room_id)
        if local is not None and local.membership in ("invite", "knock"):
            fed = self._hs.get_federation_membership_handler()
            if not await fed.is_host_in_room(room_id):
                content = await self._member_content(user_id, "leave", reason)
                left = await fed.reject_remote_invite(user_id, room_id, content)
                return SentEvent(left.event, left.stream_ordering)
        await self._require_room(room_id)
        current = await self._current_membership(room_id, user_id)
        if current in (None, "leave"):
            if current is None:
                raise MatrixError(403, Codes.FORBIDDEN, f"User {user_id} not in room {room_id}")
            return None
        return await self.update_membership(user_id, room_id, user_id, "leave", reason)

    # POST /_matrix/client/v3/rooms/{roomId}/kick
    async def kick(self, sender: str, room_id: str, target: str,
                   reason: str | None = None) -> SentEvent:
        UserID.parse(target)
        await self._require_room(room_id)
        if await self._current_membership(room_id, target) not in ("join", "invite", "knock"):
            raise MatrixError(403, Codes.FORBIDDEN, f"{target} is not in the room")
        return await self.update_membership(sender, room_id, target, "leave", reason)

    # POST /_matrix/client/v3/rooms/{roomId}/ban
    async def ban(self, sender: str, room_id: str, target: str,
                  reason: str | None = None) -> SentEvent:
        return await self.update_membership(sender, room_id, target, "ban", reason)

    # POST /_matrix/client/v3/rooms/{roomId}/unban
    async def unban(self, sender: str, room_id: str, target: str,
                    reason: str | None = None) -> SentEvent:
        UserID.parse(target)
        await self._require_room(room_id)
        if await self._current_membership(room_id, target) != "ban":
            raise MatrixError(403, Codes.FORBIDDEN, f"{target} is not banned")
        return await self.update_membership(sender, room_id, target, "leave", reason)

    # POST /_matrix/client/v3/knock/{roomIdOrAlias}
    async def knock(self, user_id: str, room_id: str, reason: str | None = None,
                    servers: list[str] | tuple[str, ...] = ()) -> SentEvent:
        """Knock; on a room our server is not in, through one of `servers` or the room
        ID's server (make_knock/send_knock)."""
        fed = self._hs.get_federation_membership_handler()
        if not await fed.is_host_in_room(room_id):
            candidates = fed.candidate_servers(room_id, servers)
            if candidates:
                content = await self._member_content(user_id, "knock", reason)
                knocked = await fed.knock_remote_room(user_id, room_id, candidates, content)
                return SentEvent(knocked.event, knocked.stream_ordering)
        return await self.update_membership(user_id, room_id, user_id, "knock", reason)

    # POST /_matrix/client/v3/rooms/{roomId}/forget
    async def forget(self, user_id: str, room_id: str) -> None:
        """Forget a room one has left; 400 M_UNKNOWN while still joined or invited."""
        membership = await self._members.get_local_membership(user_id, room_id)
        if membership is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if membership.membership not in ("leave", "ban"):
            raise MatrixError(400, Codes.UNKNOWN, "User must leave the room before forgetting it")
        await self._members.forget(user_id, room_id)
