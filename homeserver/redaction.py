"""The redaction algorithm of every room version (rooms/v1.md … v12.md, "Redactions").

Redaction strips an event down to the keys the protocol needs. The same algorithm decides
what a server signature and the reference hash (hence the event ID) cover, so it must be
exact per room version: a kept key too many or too few changes event IDs.

Per version (the fragments `v1-`, `v6-`, `v9-`, `v11-redactions.md`, plus v8's inline list):
- v1–v5: the base rules, `m.room.aliases` keeps `aliases`.
- v6, v7: `m.room.aliases` loses its special case.
- v8: `m.room.join_rules` also keeps `allow`.
- v9, v10: `m.room.member` also keeps `join_authorised_via_users_server`.
- v11, v12: top level drops `origin`, `membership`, `prev_state`; `m.room.create` keeps all
  of `content`; `m.room.power_levels` keeps `invite`; `m.room.redaction` keeps `redacts`;
  `m.room.member` keeps `third_party_invite.signed`. (v12 reuses v11's rules unchanged.)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import attrs

from homeserver.events import Event
from homeserver.room_versions import RoomVersion

# Top-level keys kept in every room version.
_KEPT_TOP_LEVEL = frozenset({
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
    "signatures", "depth", "prev_events", "auth_events", "origin_server_ts",
})
# Kept as well before v11 ("updated redaction rules" drop them).
_KEPT_TOP_LEVEL_PRE_V11 = frozenset({"prev_state", "origin", "membership"})

_POWER_LEVELS_KEPT = ("ban", "events", "events_default", "kick", "redact", "state_default",
                      "users", "users_default")


def _kept_content_keys(event_type: Any, room_version: RoomVersion) -> tuple[str, ...]:
    """The `content` keys that survive redaction for this event type (besides special cases)."""
    rv = room_version
    if event_type == "m.room.member":
        # v9+ keeps the authorising user, without which redacted restricted joins fail auth.
        if rv.restricted_join_rule_fix:
            return ("membership", "join_authorised_via_users_server")
        return ("membership",)
    if event_type == "m.room.create":
        # v11+ keeps the whole content (handled by the caller); before, only `creator`.
        return ("creator",)
    if event_type == "m.room.join_rules":
        # v8+ keeps `allow` for restricted rooms.
        return ("join_rule", "allow") if rv.restricted_join_rule else ("join_rule",)
    if event_type == "m.room.power_levels":
        return (*_POWER_LEVELS_KEPT, "invite") if rv.updated_redaction_rules \
            else _POWER_LEVELS_KEPT
    if event_type == "m.room.aliases":
        # v6 removed all significance of m.room.aliases from redaction.
        return ("aliases",) if rv.special_case_aliases_auth else ()
    if event_type == "m.room.history_visibility":
        return ("history_visibility",)
    if event_type == "m.room.redaction":
        # v11 moved `redacts` into content, where it must survive redaction.
        return ("redacts",) if rv.updated_redaction_rules else ()
    return ()


def prune_content(event_type: Any, content: Any, room_version: RoomVersion) -> dict[str, Any]:
    """The redacted form of an event's `content` (a new dict; the input is not changed)."""
    if not isinstance(content, Mapping):
        return {}
    if event_type == "m.room.create" and room_version.updated_redaction_rules:
        # v11: "m.room.create allows all keys."
        return copy.deepcopy(dict(content))
    pruned = {key: copy.deepcopy(content[key])
              for key in _kept_content_keys(event_type, room_version) if key in content}
    if event_type == "m.room.member" and room_version.updated_redaction_rules:
        # v11: `third_party_invite` is kept, but only with its `signed` key. An object
        # without `signed` stays as `{}` (the key itself is no longer redacted).
        invite = content.get("third_party_invite")
        if isinstance(invite, Mapping):
            pruned["third_party_invite"] = (
                {"signed": copy.deepcopy(invite["signed"])} if "signed" in invite else {})
    return pruned


def prune_event_dict(pdu: Mapping[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """Apply the room version's redaction algorithm to a wire PDU.

    Returns a new dict (deep copy): only the protected top-level keys, and `content`
    reduced to the keys its event type keeps. `unsigned` is dropped, as the spec's list
    does not include it; `content` is always present (possibly empty).

    Args:
        pdu: the event in federation format.
        room_version: the version of the event's room.
    """
    kept = _KEPT_TOP_LEVEL if room_version.updated_redaction_rules \
        else _KEPT_TOP_LEVEL | _KEPT_TOP_LEVEL_PRE_V11
    pruned = {key: copy.deepcopy(value) for key, value in pdu.items()
              if key in kept and key != "content"}
    pruned["content"] = prune_content(pdu.get("type"), pdu.get("content"), room_version)
    return pruned


def prune_event(event: Event) -> Event:
    """The redacted copy of an `Event` (same ID, room version and rejection status)."""
    rv = event.room_version
    content = prune_content(event.type, event.content, rv)
    pdu_json = prune_event_dict(event.pdu_json, rv) if event.pdu_json else {}
    # Before v11 the top-level `redacts` is not protected; from v11 it lives in content.
    redacts = content.get("redacts") if rv.updated_redaction_rules else None
    return attrs.evolve(
        event,
        content=content,
        pdu_json=pdu_json,
        redacts=redacts if isinstance(redacts, str) else None,
    )
