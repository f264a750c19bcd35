"""Reading a room: one event by ID, the whole state, one state entry — each through the
history-visibility rules, and with redacted events pruned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from handlers.event_serialize import (
    EventRedactions,
    serialize_event,
    serialize_federation_event,
)
from homeserver.errors import Codes, MatrixError
from homeserver.events import Event

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class RoomReadHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._events = hs.get_datastores().events
        self._visibility = hs.get_visibility_handler()
        self._redactions = EventRedactions(self._events)
        self._aggregations = hs.get_bundled_aggregations()

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
        return (await self.serialize_events([event], user_id=user_id))[0]

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
                               txn_ids: Mapping[str, str] | None = None,
                               event_format: str = "client", user_id: str | None = None
                               ) -> list[dict[str, Any]]:
        """Events as clients may see them: pruned, with `unsigned.redacted_because`,
        where a redaction applies (`EventRedactions`), in the client format or
        (`event_format="federation"`) as PDUs. `txn_ids` (event ID -> transaction ID)
        marks the requesting device's own sends (client format). With `user_id`, the
        bundled aggregations (`unsigned["m.relations"]`) as that user sees them."""
        now = self._clock.time_msec()
        redactions = await self._redactions.redactions_of(events)
        if event_format == "federation":
            out = [serialize_federation_event(e, now, redactions.get(e.event_id))
                   for e in events]
        else:
            out = [serialize_event(
                event, now, redacted_by=redactions.get(event.event_id),
                transaction_id=txn_ids.get(event.event_id) if txn_ids else None)
                for event in events]
        if user_id is not None:
            aggregations = await self._aggregations.for_events(events, user_id,
                                                               redacted=redactions.keys())
            for event, client in zip(events, out, strict=True):
                agg = aggregations.get(event.event_id)
                if agg is not None:
                    client["unsigned"] = {**client.get("unsigned", {}), "m.relations": agg}
        return out
