"""Reading a room: one event by ID, the whole state, one state entry — each through the
history-visibility rules, and with redacted events pruned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from handlers.event_serialize import serialize_event
from homeserver.errors import Codes, MatrixError
from homeserver.events import Event

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: event IDs per `get_redactions` query (keeps under SQLite's bound-parameter limit)
_REDACTION_BATCH = 500


class RoomReadHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._events = hs.get_datastores().events
        self._visibility = hs.get_visibility_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}
    async def get_event(self, user_id: str, room_id: str, event_id: str) -> dict[str, Any]:
        """One event in client format.

        Raises:
            MatrixError: 404 M_NOT_FOUND when the event is unknown, in another room, or
                not visible to the user (the spec does not tell these apart).
        """
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id \
                or not await self._visibility.is_event_visible_to(user_id, event):
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found.")
        return (await self.serialize_events([event]))[0]

    # GET /_matrix/client/v3/rooms/{roomId}/state
    async def get_state(self, user_id: str, room_id: str) -> list[dict[str, Any]]:
        """The state the user may see (current, or as of leaving) as a list of events.

        Raises:
            MatrixError: 403 M_FORBIDDEN for rooms the user may not read.
        """
        state_ids = await self._visibility.check_can_see_room_state(user_id, room_id)
        events = await self._events.get_events(state_ids.values())
        return await self.serialize_events(
            [events[e] for e in state_ids.values() if e in events])

    # GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
    async def get_state_event(self, user_id: str, room_id: str, event_type: str,
                              state_key: str, as_event: bool) -> dict[str, Any]:
        """The content of one state entry, or (`as_event`) the whole client event.

        Raises:
            MatrixError: 403 M_FORBIDDEN for rooms the user may not read; 404 M_NOT_FOUND
                when the state has no such entry.
        """
        state_ids = await self._visibility.check_can_see_room_state(user_id, room_id)
        event_id = state_ids.get((event_type, state_key))
        event = await self._events.get_event(event_id) if event_id is not None else None
        if event is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found.")
        serialized = (await self.serialize_events([event]))[0]
        if as_event:
            return serialized
        content: dict[str, Any] = serialized["content"]
        return content

    async def serialize_events(self, events: Sequence[Event],
                               txn_ids: Mapping[str, str] | None = None
                               ) -> list[dict[str, Any]]:
        """Client form of events, pruned with `unsigned.redacted_because` where a
        redaction in the same room applies (create events are never redacted, as
        Synapse). `txn_ids` (event ID -> transaction ID) marks the requesting device's
        own sends."""
        now = self._clock.time_msec()
        ids = [e.event_id for e in events]
        redaction_of: dict[str, str] = {}
        for i in range(0, len(ids), _REDACTION_BATCH):
            redaction_of.update(await self._events.get_redactions(ids[i:i + _REDACTION_BATCH]))
        redactions = await self._events.get_events(set(redaction_of.values()))
        out = []
        for event in events:
            redaction = redactions.get(redaction_of.get(event.event_id, ""))
            if redaction is not None and (redaction.room_id != event.room_id
                                          or event.type == "m.room.create"):
                redaction = None
            out.append(serialize_event(
                event, now, redacted_by=redaction,
                transaction_id=txn_ids.get(event.event_id) if txn_ids else None))
        return out
