"""Events as clients see them (the client-server "ClientEvent" format)."""

from __future__ import annotations

from typing import Any

from homeserver.events import Event
from homeserver.redaction import prune_event_dict


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
