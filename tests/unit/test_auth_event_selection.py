"""The rules on an event's own `auth_events` list (rules 2.1–2.5; 2 and 3.x in v12), as a
table per room version family: v1–v2 (references as [ID, hashes] pairs), v3–v11 (IDs
that are hashes, create event listed), v12 (room ID from the create event, not listed)."""

from __future__ import annotations

import unittest
from typing import Any

import attrs

from homeserver.event_auth import (
    AuthError,
    MissingAuthEvents,
    allowed_auth_event_keys,
    check_auth_rules,
    select_auth_events,
)
from homeserver.events import Event
from homeserver.room_versions import KNOWN_ROOM_VERSIONS, EventFormat, RoomVersion

ALICE, BOB, MALLORY = "@alice:a.test", "@bob:b.test", "@mallory:evil.test"
FAMILIES = ("1", "2", "3", "10", "11", "12")


class Room:
    """Auth events of one room: create, power levels, join rules, two members."""

    def __init__(self, version: str, tag: str = "r") -> None:
        self.v: RoomVersion = KNOWN_ROOM_VERSIONS[version]
        self.tag = tag
        create_id = f"${tag}create"
        self.room_id = "!" + create_id[1:] if self.v.room_id_from_create_event \
            else f"!{tag}:a.test"
        content: dict[str, Any] = {"room_version": version}
        if not self.v.implicit_room_creator:
            content["creator"] = ALICE
        self.create = self._ev(create_id, "m.room.create", ALICE, content, "")
        self.power = self._ev(f"${tag}pl", "m.room.power_levels", ALICE,
                              {"users": {} if self.v.privileged_creators else {ALICE: 100}}, "")
        self.join_rules = self._ev(f"${tag}jr", "m.room.join_rules", ALICE,
                                   {"join_rule": "public"}, "")
        self.alice = self._ev(f"${tag}alice", "m.room.member", ALICE,
                              {"membership": "join"}, ALICE)
        self.bob = self._ev(f"${tag}bob", "m.room.member", BOB, {"membership": "join"}, BOB)
        self.message = self._ev(f"${tag}msg", "m.room.message", BOB, {"body": "secret"}, None)

    def _ev(self, event_id: str, type_: str, sender: str, content: dict[str, Any],
            state_key: str | None) -> Event:
        return Event(event_id=event_id, room_id=self.room_id, type=type_, state_key=state_key,
                     sender=sender, content=content, prev_event_ids=("$p",),
                     auth_event_ids=(), depth=3, origin_server_ts=0, room_version=self.v)

    def base(self) -> list[Event]:
        """What every event of this room cites: the create event (not in v12), power levels."""
        return ([] if self.v.room_id_from_create_event else [self.create]) + [self.power]

    def pdu(self, type_: str, sender: str, content: dict[str, Any], state_key: str | None,
            auth: list[Event]) -> Event:
        """An event citing `auth`, parsed from a PDU in the room version's format."""
        def refs(ids: list[str]) -> list[Any]:
            if self.v.event_format == EventFormat.V1:
                return [[e, {"sha256": "aGFzaA"}] for e in ids]
            return list(ids)

        pdu: dict[str, Any] = {
            "room_id": self.room_id, "type": type_, "sender": sender, "content": content,
            "prev_events": refs(["$p"]), "auth_events": refs([e.event_id for e in auth]), "depth": 4, "origin_server_ts": 0,
            "hashes": {"sha256": "aGFzaA"}, "signatures": {},
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        if self.v.event_format == EventFormat.V1:
            pdu["event_id"] = f"$new{len(auth)}:b.test"
        return Event.from_pdu(pdu, self.v)

    def cited(self, *extra: Event) -> dict[str, Event]:
        events = [self.create, self.power, self.join_rules, self.alice, self.bob, *extra]
        return {e.event_id: e for e in events}


def outcome(room: Room, event: Event, cited: dict[str, Event]) -> str:
    """'ok', 'missing', or 'rejected' for the event with these known auth events."""
    try:
        check_auth_rules(event, select_auth_events(event, cited, room.create))
    except MissingAuthEvents:
        return "missing"
    except AuthError:
        return "rejected"
    return "ok"


class SelectionTableTestCase(unittest.TestCase):
    def test_message_auth_events(self) -> None:
        """A message: the right set passes; another room's, a rejected, a duplicate, an
        unneeded or an unknown auth event refuses it, in every version family."""
        for version in FAMILIES:
            room, other = Room(version), Room(version, tag="o")
            rejected_pl = attrs.evolve(room.power, event_id="$badpl",
                                       rejected_reason="forged")
            second_pl = attrs.evolve(room.power, event_id="$pl2")
            other_bob = attrs.evolve(other.bob)
            cases: list[tuple[str, list[Event], dict[str, Event], str]] = [
                ("the selected set", [*room.base(), room.bob], room.cited(), "ok"),
                ("power levels left out", [*room.base()[:-1], room.bob], room.cited(),
                 "ok"),
                ("a member event of another room",
                 [*room.base(), other_bob], room.cited(other_bob), "rejected"),
                ("a message of another room", [*room.base(), room.bob, other.message],
                 room.cited(other.message), "rejected"),
                ("a rejected power levels event", [*room.base()[:-1], rejected_pl, room.bob],
                 room.cited(rejected_pl), "rejected"),
                ("two power levels events", [*room.base(), second_pl, room.bob],
                 room.cited(second_pl), "rejected"),
                ("the same event twice", [*room.base(), room.bob, room.bob], room.cited(),
                 "rejected"),
                ("another user's member event", [*room.base(), room.bob, room.alice],
                 room.cited(), "rejected"),
                ("join rules for a message", [*room.base(), room.bob, room.join_rules],
                 room.cited(), "rejected"),
                ("an unknown auth event", [*room.base(), room.bob],
                 {k: v for k, v in room.cited().items() if v is not room.bob}, "missing"),
            ]
            if room.v.room_id_from_create_event:
                cases.append(("the create event listed", [room.create, room.power, room.bob],
                              room.cited(), "rejected"))
            else:
                cases.append(("no create event", [room.power, room.bob], room.cited(),
                              "rejected"))
                other_create = other.create
                cases.append(("another room's create event",
                              [other_create, room.power, room.bob],
                              room.cited(other_create), "rejected"))
            for label, auth, cited, expected in cases:
                with self.subTest(version=version, case=label):
                    event = room.pdu("m.room.message", BOB, {"body": "hi"}, None, auth)
                    self.assertEqual(outcome(room, event, cited), expected)

    def test_member_auth_events(self) -> None:
        """A join cites the target's member event and the join rules; an unrelated user's
        member event is refused."""
        for version in FAMILIES:
            room = Room(version)
            mallory_join = room._ev("$mj", "m.room.member", MALLORY, {"membership": "join"},
                                    MALLORY)
            cases = [
                ([*room.base(), room.join_rules], room.cited(), "ok"),
                ([*room.base(), room.join_rules, room.alice], room.cited(), "rejected"),
            ]
            for auth, cited, expected in cases:
                with self.subTest(version=version, auth=[e.event_id for e in auth]):
                    event = room.pdu("m.room.member", "@carol:c.test", {"membership": "join"},
                                     "@carol:c.test", auth)
                    self.assertEqual(outcome(room, event, cited), expected)
            with self.subTest(version=version, case="the sender's own join cited"):
                leave = room.pdu("m.room.member", MALLORY, {"membership": "leave"}, MALLORY,
                                 [*room.base(), mallory_join])
                self.assertEqual(outcome(room, leave, room.cited(mallory_join)), "ok")

    def test_v12_needs_an_accepted_create_event(self) -> None:
        """v12 rule 2: the room ID must name an accepted create event we hold."""
        room = Room("12")
        event = room.pdu("m.room.message", BOB, {"body": "hi"}, None, [room.power, room.bob])
        with self.assertRaises(AuthError):
            select_auth_events(event, room.cited(), None)
        with self.assertRaises(AuthError):
            select_auth_events(event, room.cited(),
                               attrs.evolve(room.create, rejected_reason="bad"))

    def test_allowed_keys_follow_the_selection_algorithm(self) -> None:
        """The allowed keys: create (not in v12), power levels, sender's member; for a
        join also the target, join rules and (restricted rooms) the authorising user."""
        for version in ("3", "10", "12"):
            room = Room(version)
            join = room.pdu("m.room.member", "@carol:c.test",
                            {"membership": "join", "join_authorised_via_users_server": ALICE},
                            "@carol:c.test", [])
            expected = {("m.room.power_levels", ""), ("m.room.member", "@carol:c.test"),
                        ("m.room.join_rules", "")}
            if room.v.restricted_join_rule:
                expected.add(("m.room.member", ALICE))
            if not room.v.room_id_from_create_event:
                expected.add(("m.room.create", ""))
            with self.subTest(version=version):
                self.assertEqual(allowed_auth_event_keys(join), expected)
