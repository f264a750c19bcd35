"""`Event`: a PDU as the protocol model sees it — immutable, with its room version.

Auth rules and state resolution work on these. The wire form is kept in `pdu_json` so that
hashes and signatures are computed over exactly what was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from homeserver.room_versions import EventFormat, RoomVersion


def _event_id_list(value: Any, fmt: EventFormat) -> tuple[str, ...]:
    """`prev_events`/`auth_events`: `[[id, {hashes}], …]` in v1/v2, a list of IDs after."""
    if not isinstance(value, list):
        raise ValueError("expected a list of event references")
    if fmt == EventFormat.V1:
        out = []
        for item in value:
            if not (isinstance(item, list) and item and isinstance(item[0], str)):
                raise ValueError("expected [event_id, hashes] pairs")
            out.append(item[0])
        return tuple(out)
    if not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of event IDs")
    return tuple(value)


@attrs.frozen(slots=True, eq=False)
class Event:
    """One room event (PDU).

    Two events are the same event when their IDs are equal; `eq=False` keeps identity
    comparison cheap and hashing by object, which state resolution relies on via IDs.
    """

    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    content: Mapping[str, Any]
    prev_event_ids: tuple[str, ...]
    auth_event_ids: tuple[str, ...]
    depth: int
    origin_server_ts: int
    room_version: RoomVersion
    redacts: str | None = None
    #: the full event as sent over federation (with hashes and signatures)
    pdu_json: Mapping[str, Any] = attrs.field(factory=dict)
    #: set for events that were rejected by auth (kept for the DAG, never for state)
    rejected_reason: str | None = None

    @property
    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def membership(self) -> str | None:
        value = self.content.get("membership")
        return value if isinstance(value, str) else None

    def state_pair(self) -> tuple[str, str]:
        assert self.state_key is not None
        return (self.type, self.state_key)

    @classmethod
    def from_pdu(cls, pdu: Mapping[str, Any], room_version: RoomVersion,
                 event_id: str | None = None) -> Event:
        """Build from a wire PDU; the event ID is computed for v3+ rooms.

        Raises:
            ValueError: a required field is missing or has the wrong type.
        """
        from homeserver.event_hashing import compute_event_id

        fmt = room_version.event_format
        if event_id is None:
            if fmt == EventFormat.V1:
                event_id = pdu.get("event_id")
                if not isinstance(event_id, str):
                    raise ValueError("event_id missing")
            else:
                event_id = compute_event_id(pdu, room_version)
        room_id = pdu.get("room_id")
        if room_version.room_id_from_create_event and pdu.get("type") == "m.room.create" \
                and pdu.get("state_key") == "":
            room_id = "!" + event_id[1:]
        for key, typ in (("type", str), ("sender", str), ("content", dict), ("depth", int),
                         ("origin_server_ts", int)):
            if not isinstance(pdu.get(key), typ) or isinstance(pdu.get(key), bool):
                raise ValueError(f"{key} missing or of the wrong type")
        if not isinstance(room_id, str):
            raise ValueError("room_id missing")
        state_key = pdu.get("state_key")
        if state_key is not None and not isinstance(state_key, str):
            raise ValueError("state_key must be a string")
        redacts = pdu.get("redacts")
        if redacts is None and isinstance(pdu["content"].get("redacts"), str) \
                and room_version.updated_redaction_rules:
            redacts = pdu["content"]["redacts"]
        return cls(
            event_id=event_id,
            room_id=room_id,
            type=pdu["type"],
            state_key=state_key,
            sender=pdu["sender"],
            content=pdu["content"],
            prev_event_ids=_event_id_list(pdu.get("prev_events", []), fmt),
            auth_event_ids=_event_id_list(pdu.get("auth_events", []), fmt),
            depth=pdu["depth"],
            origin_server_ts=pdu["origin_server_ts"],
            room_version=room_version,
            redacts=redacts if isinstance(redacts, str) else None,
            pdu_json=pdu,
        )


StateMap = Mapping[tuple[str, str], str]
"""Room state: (event type, state key) -> event ID."""
