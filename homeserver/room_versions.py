"""Room versions 1–12 and the differences between them (spec: rooms/v1.md … v12.md).

Code never compares version strings: it asks the `RoomVersion` for the behaviour flag.
"""

from __future__ import annotations

from enum import Enum

import attrs


class EventFormat(Enum):
    #: v1, v2: event IDs are `$random:server`, chosen by the origin server
    V1 = 1
    #: v3: event IDs are `$` + unpadded standard base64 of the reference hash
    V2 = 2
    #: v4+: event IDs are `$` + unpadded URL-safe base64 of the reference hash
    V3 = 3


class StateResAlgorithm(Enum):
    V1 = "v1"
    V2 = "v2"
    #: v12: state resolution v2.1 (empty starting state, conflicted state subgraph)
    V2_1 = "v2.1"


@attrs.frozen(slots=True)
class RoomVersion:
    identifier: str
    event_format: EventFormat
    state_res: StateResAlgorithm
    #: v5+: a server's keys must be valid at the time of the event they sign
    enforce_key_validity: bool
    #: v1–v5: `m.room.aliases` has its own auth rule (state_key must be the sender's server)
    special_case_aliases_auth: bool
    #: v6+: integers outside [-2^53+1, 2^53-1] and floats are rejected in events
    strict_canonicaljson: bool
    #: v6+: `notifications` in power levels is checked on changes
    limit_notifications_power_levels: bool
    #: v7+: the `knock` join rule and membership exist
    knock_join_rule: bool
    #: v8+: the `restricted` join rule exists
    restricted_join_rule: bool
    #: v9+: `join_authorised_via_users_server` is kept by redaction
    restricted_join_rule_fix: bool
    #: v10+: the `knock_restricted` join rule exists
    knock_restricted_join_rule: bool
    #: v10+: power level values must be integers, not strings
    enforce_int_power_levels: bool
    #: v11+: `m.room.create` has no `creator`; the sender is the creator
    implicit_room_creator: bool
    #: v11+: the redaction algorithm of v11 (keeps `m.room.create` content, `invite` in
    #: power levels, `signed` in third-party invites; drops `origin`, `membership`, `prev_state`)
    updated_redaction_rules: bool
    #: v12+: creators (sender + `additional_creators`) have infinite power level
    privileged_creators: bool
    #: v12+: the room ID is `!` + the reference hash of the create event, which has no room_id
    room_id_from_create_event: bool
    #: v1, v2 have no strict event ID format and no reference-hash IDs
    stable: bool = True

    @property
    def uses_reference_hash_event_ids(self) -> bool:
        return self.event_format != EventFormat.V1


def _v(identifier: str, **flags: object) -> RoomVersion:
    n = int(identifier)
    defaults: dict[str, object] = dict(
        event_format=EventFormat.V1 if n <= 2 else EventFormat.V2 if n == 3 else EventFormat.V3,
        state_res=StateResAlgorithm.V1 if n == 1 else (
            StateResAlgorithm.V2_1 if n >= 12 else StateResAlgorithm.V2),
        enforce_key_validity=n >= 5,
        special_case_aliases_auth=n <= 5,
        strict_canonicaljson=n >= 6,
        limit_notifications_power_levels=n >= 6,
        knock_join_rule=n >= 7,
        restricted_join_rule=n >= 8,
        restricted_join_rule_fix=n >= 9,
        knock_restricted_join_rule=n >= 10,
        enforce_int_power_levels=n >= 10,
        implicit_room_creator=n >= 11,
        updated_redaction_rules=n >= 11,
        privileged_creators=n >= 12,
        room_id_from_create_event=n >= 12,
    )
    defaults.update(flags)
    return RoomVersion(identifier=identifier, **defaults)  # type: ignore[arg-type]


KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    str(n): _v(str(n)) for n in range(1, 13)
}

DEFAULT_ROOM_VERSION = "12"


def get_room_version(identifier: str) -> RoomVersion | None:
    return KNOWN_ROOM_VERSIONS.get(identifier)
