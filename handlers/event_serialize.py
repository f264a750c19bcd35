"""Events as clients may see them: the one place that decides which stored redactions
apply, and the client-server ("ClientEvent") and federation formats built on it.

Every path that shows an event, or a value taken from an event's content (room names and
topics in directories and hierarchies, display names in member lists, stripped state),
reads the event through `EventRedactions`, so a redacted event's original content is
never served.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from homeserver.events import Event
from homeserver.redaction import prune_event, prune_event_dict

if TYPE_CHECKING:
    from storage.stores.events import EventsStore

#: event IDs per `get_redactions` query (keeps under SQLite's bound-parameter limit)
_REDACTION_BATCH = 500


class EventRedactions:
    """Which stored redactions apply to events: one in the same room that is not
    rejected (the store's rule), never to a create event (as Synapse)."""

    def __init__(self, events: EventsStore) -> None:
        self._events = events

    async def redactions_of(self, events: Sequence[Event]) -> dict[str, Event]:
        """event ID -> the redaction event that applies to it, for the redacted ones."""
        ids = [e.event_id for e in events]
        redaction_of: dict[str, str] = {}
        for i in range(0, len(ids), _REDACTION_BATCH):
            redaction_of.update(await self._events.get_redactions(ids[i:i + _REDACTION_BATCH]))
        if not redaction_of:
            return {}
        redactions = await self._events.get_events(set(redaction_of.values()))
        out: dict[str, Event] = {}
        for event in events:
            redaction = redactions.get(redaction_of.get(event.event_id, ""))
            if redaction is not None and redaction.room_id == event.room_id \
                    and event.type != "m.room.create":
                out[event.event_id] = redaction
        return out

    async def pruned(self, events: Sequence[Event]) -> list[Event]:
        """The events (same order), each pruned if a redaction applies."""
        redacted = await self.redactions_of(events)
        return [prune_event(e) if e.event_id in redacted else e for e in events]

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]:
        """Like the store's `get_events`, with redacted events pruned: use it wherever
        an event's content is shown."""
        loaded = await self._events.get_events(event_ids)
        return {e.event_id: e for e in await self.pruned(list(loaded.values()))}


def serialize_event(event: Event, now_ms: int, redacted_by: Event | None = None,
                    transaction_id: str | None = None) -> dict[str, Any]:
    """The client form of an event; pruned if `redacted_by` is given.

    Args:
        now_ms: the current time, for `unsigned.age`.
        redacted_by: the redaction event that redacted it, if any.
        transaction_id: the sender device's transaction ID (only for that device).
    """
    source: dict[str, Any] = dict(event.pdu_json)
    if redacted_by is not None:
        source = prune_event_dict(source, event.room_version)
    out: dict[str, Any] = {
        "content": source.get("content", {}),
        "event_id": event.event_id,
        "origin_server_ts": event.origin_server_ts,
        "room_id": event.room_id,
        "sender": event.sender,
        "type": event.type,
    }
    if event.state_key is not None:
        out["state_key"] = event.state_key
    if event.redacts is not None and redacted_by is None:
        out["redacts"] = event.redacts
    unsigned: dict[str, Any] = {"age": max(0, now_ms - event.origin_server_ts)}
    if redacted_by is not None:
        unsigned["redacted_because"] = serialize_event(redacted_by, now_ms)
    if transaction_id is not None:
        unsigned["transaction_id"] = transaction_id
    out["unsigned"] = unsigned
    return out


def serialize_federation_event(event: Event, now_ms: int,
                               redacted_by: Event | None = None) -> dict[str, Any]:
    """The federation form of an event for a client (`event_format: federation`): the
    stored PDU, pruned (its `unsigned` too) when `redacted_by` is given."""
    if redacted_by is None:
        return dict(event.pdu_json)
    out = prune_event_dict(event.pdu_json, event.room_version)
    out["unsigned"] = {"age": max(0, now_ms - event.origin_server_ts),
                       "redacted_because": serialize_federation_event(redacted_by, now_ms)}
    return out


def stripped_state_event(event: Event) -> dict[str, Any]:
    """The stripped form (type, state key, sender, content) of an event as clients may
    see it (pass it through `EventRedactions` first)."""
    return {"type": event.type, "state_key": event.state_key, "sender": event.sender,
            "content": dict(event.content)}

