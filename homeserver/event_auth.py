"""The authorization rules for room events, room versions 1–12 (spec: rooms/v*.md, "Authorization rules").

`check_auth_rules(event, auth_events)` raises `AuthError` when an event is not allowed.
`select_auth_events` applies the rules on the event's own `auth_events` list (2.1–2.5) and
builds the map `check_auth_rules` takes from it. `auth_events` maps (type, state_key) to the events the check may consult: the caller
always includes the room's `m.room.create` event under ("m.room.create", ""), also in v12
rooms where it is not listed in the event's `auth_events`.
Comments are numbered like the spec's rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from homeserver.errors import Codes, MatrixError
from homeserver.events import Event
from homeserver.identifiers import UserID
from homeserver.room_versions import RoomVersion, get_room_version

AuthEvents = Mapping[tuple[str, str], Event]

_INT_STRING = re.compile(r"[+-]?\d+")
_NAMED_LEVELS = ("users_default", "events_default", "state_default", "ban", "redact", "kick",
                 "invite")
_DEFAULT_LEVELS = {"ban": 50, "kick": 50, "redact": 50, "invite": 0, "events_default": 0,
                   "users_default": 0}


class AuthError(MatrixError):
    """The event breaks an authorization rule (403 M_FORBIDDEN)."""

    def __init__(self, msg: str) -> None:
        super().__init__(403, Codes.FORBIDDEN, msg)


def _domain(user_or_id: str) -> str:
    return user_or_id.split(":", 1)[1] if ":" in user_or_id else ""


def _as_int(value: Any, strict: bool) -> int | None:
    """A power level value: an integer (v10+), or before v10 also a string of one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not strict and isinstance(value, str) and _INT_STRING.fullmatch(value.strip()):
        return int(value.strip())
    return None


# --- power levels ----------------------------------------------------------------------


def get_creators(auth_events: AuthEvents) -> set[str]:
    """The room's creators: the create event's sender (or `creator` before v11), plus
    `additional_creators` in v12."""
    create = auth_events.get(("m.room.create", ""))
    if create is None:
        return set()
    version = create.room_version
    if version.implicit_room_creator:
        creators = {create.sender}
    else:
        creator = create.content.get("creator")
        creators = {creator} if isinstance(creator, str) else set()
    if version.privileged_creators:
        extra = create.content.get("additional_creators")
        if isinstance(extra, list):
            creators.update(u for u in extra if isinstance(u, str))
    return creators


def get_user_power_level(user_id: str, auth_events: AuthEvents) -> int | float:
    """The user's power level; `float('inf')` for creators in v12 rooms."""
    create = auth_events.get(("m.room.create", ""))
    if create is not None and create.room_version.privileged_creators \
            and user_id in get_creators(auth_events):
        return float("inf")
    power = auth_events.get(("m.room.power_levels", ""))
    if power is None:
        return 100 if user_id in get_creators(auth_events) else 0
    strict = power.room_version.enforce_int_power_levels
    users = power.content.get("users")
    if isinstance(users, dict) and user_id in users:
        level = _as_int(users[user_id], strict)
        if level is not None:
            return level
    return _as_int(power.content.get("users_default", 0), strict) or 0


def get_named_level(auth_events: AuthEvents, name: str, default: int) -> int:
    """A top-level level of the power levels (`ban`, `invite`, `redact`, …)."""
    power = auth_events.get(("m.room.power_levels", ""))
    if power is None:
        return default
    value = _as_int(power.content.get(name, default), power.room_version.enforce_int_power_levels)
    return default if value is None else value


def _required_level(event: Event, auth_events: AuthEvents) -> int:
    power = auth_events.get(("m.room.power_levels", ""))
    if power is None:
        return 0
    strict = power.room_version.enforce_int_power_levels
    events = power.content.get("events")
    if isinstance(events, dict) and event.type in events:
        level = _as_int(events[event.type], strict)
        if level is not None:
            return level
    if event.state_key is not None:
        return get_named_level(auth_events, "state_default", 50)
    return get_named_level(auth_events, "events_default", 0)


def _membership(auth_events: AuthEvents, user_id: str) -> str:
    member = auth_events.get(("m.room.member", user_id))
    return (member.membership or "leave") if member is not None else "leave"


# --- which events authorise an event ---------------------------------------------------


def auth_types_for_event(event: Event) -> set[tuple[str, str]]:
    """The (type, state_key) pairs whose current events authorise `event`."""
    if event.type == "m.room.create" and event.state_key == "":
        return set()
    wanted = {("m.room.create", ""), ("m.room.power_levels", ""),
              ("m.room.member", event.sender)}
    if event.type == "m.room.member" and event.state_key is not None:
        membership = event.membership
        wanted.add(("m.room.member", event.state_key))
        if membership in ("join", "invite", "knock"):
            wanted.add(("m.room.join_rules", ""))
        if membership == "invite":
            tpi = event.content.get("third_party_invite")
            if isinstance(tpi, dict):
                signed = tpi.get("signed")
                if isinstance(signed, dict) and isinstance(signed.get("token"), str):
                    wanted.add(("m.room.third_party_invite", signed["token"]))
        if membership == "join" and event.room_version.restricted_join_rule:
            via = event.content.get("join_authorised_via_users_server")
            if isinstance(via, str):
                wanted.add(("m.room.member", via))
    return wanted


def allowed_auth_event_keys(event: Event) -> set[tuple[str, str]]:
    """The (type, state_key) pairs the event may list in its `auth_events` (server-server
    spec, "Auth events selection"): those of `auth_types_for_event`, without the create
    event in rooms whose ID is the create event's (v12)."""
    keys = auth_types_for_event(event)
    if event.room_version.room_id_from_create_event:
        keys.discard(("m.room.create", ""))
    return keys


class MissingAuthEvents(AuthError):
    """Some of the event's `auth_events` are not known here, so it cannot be checked."""

    def __init__(self, event_ids: list[str]) -> None:
        super().__init__(f"Unknown auth events: {', '.join(event_ids[:5])}")
        self.event_ids = event_ids


def select_auth_events(event: Event, cited: Mapping[str, Event],
                       create: Event | None = None) -> dict[tuple[str, str], Event]:
    """The auth events map for `check_auth_rules`, built from the events `event` lists in
    its `auth_events`, after the rules on that list (rules 2.1–2.5; 2 and 3.1–3.5 in v12).

    Args:
        event: the event being authorised (not an `m.room.create`).
        cited: the events we hold among `event.auth_event_ids`, by ID.
        create: v12 rooms only: the room's create event (the event whose ID is the room ID
            with `$` for `!`), if we have it.

    Raises:
        MissingAuthEvents: a listed auth event is not in `cited`.
        AuthError: the list breaks a rule.
    """
    version = event.room_version
    listed = list(event.auth_event_ids)
    missing = [e for e in dict.fromkeys(listed) if e not in cited]
    if missing:
        raise MissingAuthEvents(missing)
    if version.room_id_from_create_event:
        # v12 2. The room ID must name an accepted m.room.create event.
        if create is None or create.event_id != "$" + event.room_id[1:] \
                or (create.type, create.state_key) != ("m.room.create", "") \
                or create.rejected_reason is not None:
            raise AuthError("The room ID does not name an accepted m.room.create event")
    allowed = allowed_auth_event_keys(event)
    auth_map: dict[tuple[str, str], Event] = {}
    for event_id in listed:
        auth_event = cited[event_id]
        if auth_event.state_key is None:
            raise AuthError(f"Auth event {event_id} is not a state event")
        key = auth_event.state_pair()
        # 2.1 No two entries for one (type, state_key) (the same ID twice included).
        if key in auth_map:
            raise AuthError(f"Duplicate auth events for {key}")
        # 2.2 Only the entries the auth events selection picks (no create event in v12).
        if key not in allowed:
            raise AuthError(f"Auth event {event_id} ({key}) is not needed by this event")
        # 2.3 No rejected entries.
        if auth_event.rejected_reason is not None:
            raise AuthError(f"Auth event {event_id} was rejected")
        # 2.5 All entries from this room.
        if auth_event.room_id != event.room_id:
            raise AuthError(f"Auth event {event_id} is from another room")
        auth_map[key] = auth_event
    if version.room_id_from_create_event:
        assert create is not None
        auth_map[("m.room.create", "")] = create
    # 2.4 Before v12, the create event must be among the entries.
    elif ("m.room.create", "") not in auth_map:
        raise AuthError("No m.room.create event in auth events")
    return auth_map


# --- the rules -------------------------------------------------------------------------


def check_auth_rules(event: Event, auth_events: AuthEvents) -> None:
    """Raise `AuthError` unless `event` passes the authorization rules of its room version."""
    version = event.room_version
    # 1. m.room.create
    if event.type == "m.room.create" and event.state_key == "":
        _check_create(event)
        return

    # 2. (considering the auth events) there must be a create event.
    create = auth_events.get(("m.room.create", ""))
    if create is None:
        raise AuthError("No m.room.create event in auth events")
    if create.room_id != event.room_id:
        raise AuthError("The create event is from another room")

    # 3. m.federate: false keeps other servers out.
    if create.content.get("m.federate", True) is False \
            and _domain(event.sender) != _domain(create.sender):
        raise AuthError("This room is not federated")

    # 4. m.room.aliases (v1–v5): state_key must be the sender's server.
    if event.type == "m.room.aliases" and version.special_case_aliases_auth:
        if event.state_key is None:
            raise AuthError("m.room.aliases needs a state_key")
        if event.state_key != _domain(event.sender):
            raise AuthError("m.room.aliases state_key must be the sender's server")
        return

    # 5. m.room.member
    if event.type == "m.room.member":
        _check_membership(event, auth_events)
        return

    # 6. The sender must be joined.
    if _membership(auth_events, event.sender) != "join":
        raise AuthError(f"{event.sender} is not in the room")

    sender_level = get_user_power_level(event.sender, auth_events)

    # 7. m.room.third_party_invite needs the invite level.
    if event.type == "m.room.third_party_invite":
        if sender_level < get_named_level(auth_events, "invite", 0):
            raise AuthError("You don't have permission to invite users")
        return

    # 8. The sender needs the level the event type requires.
    if sender_level < _required_level(event, auth_events):
        raise AuthError(f"You don't have permission to send {event.type} events")

    # 9. State keys that are user IDs belong to that user.
    if event.state_key is not None and event.state_key.startswith("@") \
            and event.state_key != event.sender:
        raise AuthError("You cannot set state owned by another user")

    # 10. m.room.power_levels
    if event.type == "m.room.power_levels" and event.state_key == "":
        _check_power_levels(event, auth_events, sender_level)
        return

    # 11. m.room.redaction (v1, v2 only; later versions leave it to the server).
    if event.type == "m.room.redaction" and not version.uses_reference_hash_event_ids:
        if sender_level >= get_named_level(auth_events, "redact", 50):
            return
        if event.redacts is not None and _domain(event.redacts) == _domain(event.event_id):
            return
        raise AuthError("You don't have permission to redact this event")

    # 12. Otherwise, allow.


def _check_create(event: Event) -> None:
    version = event.room_version
    # 1.1 No prev_events.
    if event.prev_event_ids:
        raise AuthError("m.room.create must not have prev_events")
    # 1.2 The room ID's server is the sender's (not in v12, where the room ID is a hash).
    if not version.room_id_from_create_event and _domain(event.room_id) != _domain(event.sender):
        raise AuthError("The room ID's server must be the creator's")
    # 1.3 A known room version.
    room_version = event.content.get("room_version", "1")
    if not isinstance(room_version, str) or get_room_version(room_version) is None:
        raise AuthError("Unknown room version")
    # 1.4 `creator` before v11.
    if not version.implicit_room_creator and not isinstance(event.content.get("creator"), str):
        raise AuthError("m.room.create needs a creator")
    # 1.5 v12: additional_creators are user IDs.
    if version.privileged_creators and "additional_creators" in event.content:
        extra = event.content["additional_creators"]
        if not isinstance(extra, list) or not all(
                isinstance(u, str) and UserID.is_valid(u) for u in extra):
            raise AuthError("additional_creators must be a list of user IDs")


def _check_membership(event: Event, auth_events: AuthEvents) -> None:
    version = event.room_version
    target = event.state_key
    membership = event.content.get("membership")
    # 5.1 A state_key and a membership are required.
    if target is None or not isinstance(membership, str):
        raise AuthError("m.room.member needs a state_key and a membership")
    sender = event.sender
    create = auth_events[("m.room.create", "")]
    join_rules = auth_events.get(("m.room.join_rules", ""))
    join_rule = join_rules.content.get("join_rule", "invite") if join_rules else "invite"
    target_membership = _membership(auth_events, target)
    sender_membership = _membership(auth_events, sender)
    sender_level = get_user_power_level(sender, auth_events)

    if membership == "join":
        # 5.2.1 The creator's first join, right after the create event.
        if len(event.prev_event_ids) == 1 and event.prev_event_ids[0] == create.event_id:
            first_joiner = create.sender if version.implicit_room_creator \
                else create.content.get("creator")
            if target == first_joiner:
                return
        # 5.2.2 Only the user themselves can join.
        if sender != target:
            raise AuthError("You cannot join on behalf of another user")
        # 5.2.3 Banned users cannot join.
        if sender_membership == "ban":
            raise AuthError("You are banned from this room")
        # 5.2.4 invite / knock rooms: only the invited (or already joined).
        if join_rule == "invite" or (join_rule == "knock" and version.knock_join_rule):
            if sender_membership in ("join", "invite"):
                return
            raise AuthError("You are not invited to this room")
        # 5.2.5 restricted rooms: invited, joined, or authorised by a member who may invite.
        if (join_rule == "restricted" and version.restricted_join_rule) or (
                join_rule == "knock_restricted" and version.knock_restricted_join_rule):
            if sender_membership in ("join", "invite"):
                return
            via = event.content.get("join_authorised_via_users_server")
            if not isinstance(via, str):
                raise AuthError("Join not authorised by a room member")
            if _membership(auth_events, via) != "join":
                raise AuthError("The authorising user is not in the room")
            if get_user_power_level(via, auth_events) < get_named_level(auth_events, "invite", 0):
                raise AuthError("The authorising user cannot invite")
            return
        # 5.2.6 public rooms: anyone.
        if join_rule == "public":
            return
        raise AuthError("You are not allowed to join this room")

    if membership == "invite":
        # 5.3.1 Third-party invites.
        if "third_party_invite" in event.content:
            _check_third_party_invite(event, auth_events, target_membership)
            return
        # 5.3.2 The sender must be joined.
        if sender_membership != "join":
            raise AuthError("You are not in the room")
        # 5.3.3 Joined or banned users cannot be invited.
        if target_membership in ("join", "ban"):
            raise AuthError(f"{target} is already in the room or banned")
        # 5.3.4 The invite level.
        if sender_level >= get_named_level(auth_events, "invite", 0):
            return
        raise AuthError("You don't have permission to invite users")

    if membership == "leave":
        # 5.4.1 Leaving yourself: from invite, join or knock.
        if sender == target:
            allowed = {"invite", "join"} | ({"knock"} if version.knock_join_rule else set())
            if sender_membership in allowed:
                return
            raise AuthError("You are not in the room")
        # 5.4.2 Kicking: the sender must be joined,
        if sender_membership != "join":
            raise AuthError("You are not in the room")
        target_level = get_user_power_level(target, auth_events)
        # 5.4.3 unbanning needs the ban level,
        if target_membership == "ban" and sender_level < get_named_level(auth_events, "ban", 50):
            raise AuthError("You don't have permission to unban users")
        # 5.4.4 and kicking the kick level, over a lower-level user.
        if sender_level >= get_named_level(auth_events, "kick", 50) and target_level < sender_level:
            return
        raise AuthError("You don't have permission to kick this user")

    if membership == "ban":
        # 5.5.1 The sender must be joined.
        if sender_membership != "join":
            raise AuthError("You are not in the room")
        # 5.5.2 The ban level, over a lower-level user.
        target_level = get_user_power_level(target, auth_events)
        if sender_level >= get_named_level(auth_events, "ban", 50) and target_level < sender_level:
            return
        raise AuthError("You don't have permission to ban this user")

    if membership == "knock" and version.knock_join_rule:
        # 5.6.1 Only rooms whose join rule allows knocking.
        knockable = join_rule == "knock" or (
            join_rule == "knock_restricted" and version.knock_restricted_join_rule)
        if not knockable:
            raise AuthError("This room does not accept knocks")
        # 5.6.2 Only for yourself.
        if sender != target:
            raise AuthError("You cannot knock on behalf of another user")
        # 5.6.3 Not when banned, invited or joined.
        if sender_membership in ("ban", "invite", "join"):
            raise AuthError("You cannot knock on this room now")
        return

    # 5.7 Any other membership.
    raise AuthError(f"Unknown membership {membership!r}")


def _check_third_party_invite(event: Event, auth_events: AuthEvents,
                              target_membership: str) -> None:
    import signedjson.key
    import signedjson.sign

    # 5.3.1.1 A banned target cannot be invited.
    if target_membership == "ban":
        raise AuthError("The invited user is banned")
    tpi = event.content.get("third_party_invite")
    signed = tpi.get("signed") if isinstance(tpi, dict) else None
    # 5.3.1.2 `signed` with mxid, token and signatures.
    if not isinstance(signed, dict) or not isinstance(signed.get("mxid"), str) \
            or not isinstance(signed.get("token"), str) \
            or not isinstance(signed.get("signatures"), dict):
        raise AuthError("Malformed third_party_invite")
    # 5.3.1.3 mxid must be the invitee.
    if signed["mxid"] != event.state_key:
        raise AuthError("third_party_invite is for another user")
    # 5.3.1.4 A matching m.room.third_party_invite from the same sender.
    invite = auth_events.get(("m.room.third_party_invite", signed["token"]))
    if invite is None or invite.sender != event.sender:
        raise AuthError("No matching m.room.third_party_invite")
    # 5.3.1.5 signed must verify with one of its public keys.
    keys = []
    if isinstance(invite.content.get("public_key"), str):
        keys.append(invite.content["public_key"])
    for entry in invite.content.get("public_keys") or []:
        if isinstance(entry, dict) and isinstance(entry.get("public_key"), str):
            keys.append(entry["public_key"])
    for server, sigs in signed["signatures"].items():
        if not isinstance(sigs, dict):
            continue
        for key_id in sigs:
            if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
                continue
            for key in keys:
                try:
                    verify_key = signedjson.key.decode_verify_key_bytes(
                        key_id, _decode_base64(key))
                    signedjson.sign.verify_signed_json(signed, server, verify_key)
                    return
                except Exception:  # noqa: BLE001 - try the next key
                    continue
    raise AuthError("third_party_invite signature does not verify")


def _decode_base64(value: str) -> bytes:
    import base64

    padded = value + "=" * (-len(value) % 4)
    if "-" in value or "_" in value:
        return base64.urlsafe_b64decode(padded)
    return base64.b64decode(padded)


def _check_power_levels(event: Event, auth_events: AuthEvents,
                        sender_level: int | float) -> None:
    version: RoomVersion = event.room_version
    strict = version.enforce_int_power_levels
    content = event.content
    # 10.1 Levels must be integers (v10+) or parse as integers (before).
    for name in _NAMED_LEVELS:
        if name in content and _as_int(content[name], strict) is None:
            raise AuthError(f"Power level {name} must be an integer")
    for name in ("events", "notifications", "users"):
        value = content.get(name)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(
                _as_int(v, strict) is not None for v in value.values()):
            raise AuthError(f"Power levels {name} must map to integers")
    users = content.get("users") or {}
    # 10.2 users keys are user IDs.
    for user_id in users:
        if not UserID.is_valid(user_id):
            raise AuthError(f"Invalid user ID in power levels: {user_id}")
    # 10.3 v12: creators are not listed (their power is infinite).
    if version.privileged_creators:
        creators = get_creators(auth_events)
        if creators & set(users):
            raise AuthError("Room creators cannot be given a power level")

    # 10.4 The first power levels event is allowed.
    old = auth_events.get(("m.room.power_levels", ""))
    if old is None:
        return
    old_content = old.content

    def check_change(label: str, before: Any, after: Any) -> None:
        b = _as_int(before, strict) if before is not None else None
        a = _as_int(after, strict) if after is not None else None
        if b == a:
            return
        # 10.5 Neither the old nor the new value may exceed the sender's level.
        if b is not None and b > sender_level:
            raise AuthError(f"You cannot change {label} from above your level")
        if a is not None and a > sender_level:
            raise AuthError(f"You cannot set {label} above your level")

    for name in _NAMED_LEVELS:
        check_change(name, old_content.get(name), content.get(name))
    for name in ("events",) + (("notifications",) if version.limit_notifications_power_levels
                               else ()):
        before_map = old_content.get(name) or {}
        after_map = content.get(name) or {}
        if not isinstance(before_map, dict):
            before_map = {}
        for key in set(before_map) | set(after_map):
            check_change(f"{name}.{key}", before_map.get(key), after_map.get(key))

    # 10.6 users: others at or above the sender's level cannot be changed, and nobody can
    # be raised above it.
    old_users = old_content.get("users") or {}
    if not isinstance(old_users, dict):
        old_users = {}
    for user_id in set(old_users) | set(users):
        before = _as_int(old_users[user_id], strict) if user_id in old_users else None
        after = _as_int(users[user_id], strict) if user_id in users else None
        if before == after:
            continue
        if user_id != event.sender and before is not None and before >= sender_level:
            raise AuthError(f"You cannot change the level of {user_id}")
        if after is not None and after > sender_level:
            raise AuthError("You cannot raise a user above your own level")
