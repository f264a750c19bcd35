"""Listing rooms and members: /joined_rooms, /members, /joined_members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.event_serialize import EventRedactions
from homeserver.errors import BadRequestError, Codes, MatrixError
from homeserver.stream_token import TopologicalToken, parse_pagination_token

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class RoomMembersReadHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._events = stores.events
        self._state = stores.state
        self._members = stores.room_members
        self._stream = stores.stream
        self._visibility = hs.get_visibility_handler()
        self._reads = hs.get_room_read_handler()
        self._redactions = EventRedactions(self._events)

    # GET /_matrix/client/v3/joined_rooms
    async def joined_rooms(self, user_id: str) -> list[str]:
        rooms = await self._members.get_rooms_for_local_user(user_id, ("join",))
        return sorted(r.room_id for r in rooms)

    # GET /_matrix/client/v3/rooms/{roomId}/members
    async def members(self, user_id: str, room_id: str, membership: str | None,
                      not_membership: str | None, at: str | None) -> list[dict[str, Any]]:
        """The m.room.member events of the state the user may see (or at a point in
        the timeline given by `at`: a /sync or pagination token, or an event ID),
        filtered by membership.

        Raises:
            MatrixError: 403 M_FORBIDDEN for rooms the user may not read; 404 M_NOT_FOUND
                for an unknown or invisible `at` event; 400 M_INVALID_PARAM for an `at`
                that is neither.
        """
        state = await self._visibility.check_can_see_room_state(user_id, room_id)
        if at is not None and not at.startswith("$"):
            # A token: the state after the room's last event at or before its position.
            try:
                token = parse_pagination_token(at)
            except ValueError:
                raise BadRequestError("'at' is neither a token nor an event ID") from None
            if isinstance(token, TopologicalToken):
                at = await self._stream.get_last_event_at(room_id, (token.depth,
                                                                    token.stream))
            else:
                at = await self._stream.get_last_event_before(room_id, token.room)
            if at is None:
                raise MatrixError(404, Codes.NOT_FOUND, "No event at 'at'")
        if at is not None:
            event = await self._events.get_event(at)
            if event is None or event.room_id != room_id \
                    or not await self._visibility.is_event_visible_to(user_id, event):
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown 'at' event")
            at_state = await self._state.get_state_after_event(at)
            if at_state is None:
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown 'at' event")
            state = at_state
        member_ids = [e for (t, _), e in state.items() if t == "m.room.member"]
        events = await self._events.get_events(member_ids)
        chosen = [
            events[e] for e in member_ids if e in events
            and (membership is None or events[e].membership == membership)
            and (not_membership is None or events[e].membership != not_membership)
        ]
        chosen.sort(key=lambda ev: ev.state_key or "")
        return await self._reads.serialize_events(chosen)

    # GET /_matrix/client/v3/rooms/{roomId}/joined_members
    async def joined_members(self, user_id: str, room_id: str) -> dict[str, dict[str, Any]]:
        """Joined members with display names and avatars; only for members of the room."""
        membership = await self._members.get_local_membership(user_id, room_id)
        if membership is None or membership.membership != "join":
            raise MatrixError(403, Codes.FORBIDDEN, f"User {user_id} not in room {room_id}")
        state = await self._state.get_current_state_ids(room_id)
        member_ids = [e for (t, _), e in state.items() if t == "m.room.member"]
        events = await self._redactions.get_events(member_ids)
        joined: dict[str, dict[str, Any]] = {}
        for event in events.values():
            if event.membership != "join" or event.state_key is None:
                continue
            info: dict[str, Any] = {}
            for src, dst in (("displayname", "display_name"), ("avatar_url", "avatar_url")):
                value = event.content.get(src)
                if isinstance(value, str):
                    info[dst] = value
            joined[event.state_key] = info
        return joined
