"""The authorization rules, as tables of allowed/forbidden events across room versions."""

from __future__ import annotations

import itertools
import unittest
from typing import Any

import signedjson.key
import signedjson.sign

from homeserver.event_auth import (
    AuthError,
    auth_types_for_event,
    check_auth_rules,
    get_user_power_level,
)
from homeserver.events import Event
from homeserver.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

ALICE, BOB, CAROL = "@alice:a.test", "@bob:b.test", "@carol:a.test"
ROOM = "!room:a.test"
_ids = itertools.count()


def ev(version: RoomVersion, type_: str, sender: str, content: dict[str, Any],
       state_key: str | None = None, prev: tuple[str, ...] = ("$prev",),
       event_id: str | None = None, room_id: str = ROOM) -> Event:
    return Event(event_id=event_id or f"$e{next(_ids)}:a.test", room_id=room_id, type=type_,
                 state_key=state_key, sender=sender, content=content, prev_event_ids=prev,
                 auth_event_ids=(), depth=5, origin_server_ts=0, room_version=version)


class Room:
    """A room's auth state, built up event by event."""

    def __init__(self, version: str, join_rule: str = "public",
                 users: dict[str, Any] | None = None, **power: Any) -> None:
        self.v = KNOWN_ROOM_VERSIONS[version]
        content: dict[str, Any] = {"room_version": version}
        if not self.v.implicit_room_creator:
            content["creator"] = ALICE
        self.create = ev(self.v, "m.room.create", ALICE, content, "", prev=(),
                         event_id="$create:a.test")
        self.state: dict[tuple[str, str], Event] = {("m.room.create", ""): self.create}
        self.member(ALICE, "join")
        pl_users = {} if self.v.privileged_creators else {ALICE: 100}
        pl_users.update(users or {})
        self.set("m.room.power_levels", {"users": pl_users, **power})
        self.set("m.room.join_rules", {"join_rule": join_rule})

    def set(self, type_: str, content: dict[str, Any], key: str = "",
            sender: str = ALICE) -> None:
        self.state[(type_, key)] = ev(self.v, type_, sender, content, key)

    def member(self, user: str, membership: str) -> None:
        self.set("m.room.member", {"membership": membership}, user, sender=user)

    def allowed(self, event: Event) -> bool:
        try:
            check_auth_rules(event, self.state)
            return True
        except AuthError:
            return False

    def event(self, type_: str, sender: str, content: dict[str, Any],
              state_key: str | None = None) -> Event:
        return ev(self.v, type_, sender, content, state_key)

    def membership(self, sender: str, target: str, membership: str, **extra: Any) -> Event:
        return self.event("m.room.member", sender, {"membership": membership, **extra}, target)


ALL = [str(n) for n in range(1, 13)]


class CreateRulesTestCase(unittest.TestCase):
    def test_create_event(self) -> None:
        """1. A create event: no prev events, a known version, a creator before v11, the
        sender's server in the room ID before v12, valid additional_creators in v12."""
        for version in ALL:
            v = KNOWN_ROOM_VERSIONS[version]
            base: dict[str, Any] = {"room_version": version}
            if not v.implicit_room_creator:
                base["creator"] = ALICE
            cases = [
                (base, (), ROOM, True),
                (base, ("$x",), ROOM, False),
                ({**base, "room_version": "99"}, (), ROOM, False),
            ]
            if not v.implicit_room_creator:
                cases.append(({"room_version": version}, (), ROOM, False))
            if not v.room_id_from_create_event:
                cases.append((base, (), "!room:other.test", False))
            if v.privileged_creators:
                cases.append(({**base, "additional_creators": [BOB]}, (), ROOM, True))
                cases.append(({**base, "additional_creators": ["bob"]}, (), ROOM, False))
                cases.append(({**base, "additional_creators": BOB}, (), ROOM, False))
            for content, prev, room_id, expected in cases:
                with self.subTest(version=version, content=content, prev=prev):
                    create = ev(v, "m.room.create", ALICE, content, "", prev=prev,
                                room_id=room_id)
                    try:
                        check_auth_rules(create, {})
                        ok = True
                    except AuthError:
                        ok = False
                    self.assertEqual(ok, expected)

    def test_no_create_event_and_federate(self) -> None:
        """2. Without a create event nothing passes; 3. m.federate false keeps others out."""
        room = Room("10")
        msg = room.event("m.room.message", ALICE, {"body": "x"})
        self.assertFalse(Room.allowed(
            type("R", (), {"state": {}})(), msg))  # type: ignore[arg-type]
        room.create = ev(room.v, "m.room.create", ALICE,
                         {"room_version": "10", "creator": ALICE, "m.federate": False}, "",
                         prev=(), event_id="$create:a.test")
        room.state[("m.room.create", "")] = room.create
        room.member(BOB, "join")
        self.assertFalse(room.allowed(room.event("m.room.message", BOB, {})))
        self.assertTrue(room.allowed(room.event("m.room.message", ALICE, {})))


class MembershipRulesTestCase(unittest.TestCase):
    def test_join_rules(self) -> None:
        """5.2 Joins follow the join rule; banned users never join; only for oneself."""
        for version in ALL:
            v = KNOWN_ROOM_VERSIONS[version]
            cases: list[tuple[str, str | None, bool]] = [
                ("public", None, True),
                ("invite", None, False),
                ("invite", "invite", True),
                ("public", "ban", False),
                ("knock", "invite", v.knock_join_rule),
                ("knock", None, False),
                ("restricted", None, False),
                ("restricted", "invite", v.restricted_join_rule),
            ]
            for join_rule, prior, expected in cases:
                with self.subTest(version=version, join_rule=join_rule, prior=prior):
                    room = Room(version, join_rule)
                    if prior is not None:
                        room.member(BOB, prior)
                    self.assertEqual(room.allowed(room.membership(BOB, BOB, "join")), expected)
            room = Room(version)
            self.assertFalse(room.allowed(room.membership(ALICE, BOB, "join")))

    def test_creator_first_join(self) -> None:
        """5.2.1 The creator joins right after the create event in an invite-only room."""
        for version in ALL:
            room = Room(version, "invite")
            del room.state[("m.room.member", ALICE)]
            del room.state[("m.room.join_rules", "")]
            del room.state[("m.room.power_levels", "")]
            join = ev(room.v, "m.room.member", ALICE, {"membership": "join"}, ALICE,
                      prev=("$create:a.test",))
            self.assertTrue(room.allowed(join), version)
            later = ev(room.v, "m.room.member", BOB, {"membership": "join"}, BOB,
                       prev=("$create:a.test",))
            self.assertFalse(room.allowed(later), version)

    def test_restricted_join_via_member(self) -> None:
        """5.2.5 Restricted joins need a joined authoriser with the invite level."""
        for version in ("8", "10", "12"):
            room = Room(version, "restricted", invite=50, users={CAROL: 50})
            room.member(CAROL, "join")
            via = room.membership(BOB, BOB, "join", join_authorised_via_users_server=CAROL)
            self.assertTrue(room.allowed(via))
            room.state[("m.room.power_levels", "")] = room.event(
                "m.room.power_levels", ALICE, {"users": {}, "invite": 50}, "")
            self.assertFalse(room.allowed(via), version)

    def test_invites(self) -> None:
        """5.3 Invites need a joined sender with the invite level and a free target."""
        room = Room("11", "invite", invite=50)
        room.member(BOB, "join")
        self.assertTrue(room.allowed(room.membership(ALICE, CAROL, "invite")))
        self.assertFalse(room.allowed(room.membership(BOB, CAROL, "invite")))  # level 0 < 50
        self.assertFalse(room.allowed(room.membership(ALICE, BOB, "invite")))  # already in
        room.member(CAROL, "ban")
        self.assertFalse(room.allowed(room.membership(ALICE, CAROL, "invite")))
        outsider = Room("11")
        self.assertFalse(outsider.allowed(outsider.membership(BOB, CAROL, "invite")))

    def test_leave_kick_ban_unban(self) -> None:
        """5.4/5.5 Leaving oneself; kicking and banning need their level and more power."""
        for version in ("1", "6", "11", "12"):
            room = Room(version, users={BOB: 50})
            room.member(BOB, "join")
            room.member(CAROL, "join")
            self.assertTrue(room.allowed(room.membership(CAROL, CAROL, "leave")))
            self.assertTrue(room.allowed(room.membership(BOB, CAROL, "leave")))
            self.assertFalse(room.allowed(room.membership(CAROL, BOB, "leave")))
            self.assertFalse(room.allowed(room.membership(BOB, ALICE, "leave")))
            self.assertTrue(room.allowed(room.membership(BOB, CAROL, "ban")))
            self.assertFalse(room.allowed(room.membership(CAROL, BOB, "ban")))
            self.assertFalse(room.allowed(room.membership(BOB, ALICE, "ban")))
            room.member(CAROL, "ban")
            self.assertTrue(room.allowed(room.membership(BOB, CAROL, "leave")))  # unban
            self.assertFalse(room.allowed(room.membership(CAROL, CAROL, "leave")))
            stranger = Room(version)
            self.assertFalse(stranger.allowed(stranger.membership(BOB, BOB, "leave")))

    def test_knock(self) -> None:
        """5.6 Knocks: only with a knock join rule (v7+), for oneself, when not in the room."""
        for version in ALL:
            v = KNOWN_ROOM_VERSIONS[version]
            room = Room(version, "knock")
            self.assertEqual(room.allowed(room.membership(BOB, BOB, "knock")), v.knock_join_rule)
            self.assertFalse(room.allowed(room.membership(ALICE, BOB, "knock")))
            room.member(BOB, "ban")
            self.assertFalse(room.allowed(room.membership(BOB, BOB, "knock")))
            public = Room(version, "public")
            self.assertFalse(public.allowed(public.membership(BOB, BOB, "knock")))
            if v.knock_restricted_join_rule:
                kr = Room(version, "knock_restricted")
                self.assertTrue(kr.allowed(kr.membership(BOB, BOB, "knock")))
            room = Room(version, "knock")
            self.assertFalse(room.allowed(room.membership(BOB, BOB, "dance")))

    def test_third_party_invite(self) -> None:
        """5.3.1 A third-party invite needs a `signed` block verified by the invite's key."""
        key = signedjson.key.generate_signing_key("1")
        public = signedjson.key.encode_verify_key_base64(key.verify_key)
        room = Room("11")
        room.set("m.room.third_party_invite", {"public_key": public, "display_name": "b"}, "tok")
        signed = signedjson.sign.sign_json({"mxid": BOB, "token": "tok"}, "id.test", key)
        invite = room.membership(ALICE, BOB, "invite",
                                 third_party_invite={"display_name": "b", "signed": signed})
        self.assertTrue(room.allowed(invite))
        self.assertIn(("m.room.third_party_invite", "tok"), auth_types_for_event(invite))
        tampered = dict(signed, mxid=CAROL)
        bad = room.membership(ALICE, CAROL, "invite",
                              third_party_invite={"display_name": "b", "signed": tampered})
        self.assertFalse(room.allowed(bad))
        other_token = dict(signed, token="other")
        self.assertFalse(room.allowed(room.membership(
            ALICE, BOB, "invite", third_party_invite={"signed": other_token})))


class PowerRulesTestCase(unittest.TestCase):
    def test_members_and_levels(self) -> None:
        """6-9. Non-members cannot send; muted members cannot send; state needs
        state_default; `@user` state keys belong to that user."""
        room = Room("11", events_default=0)
        self.assertFalse(room.allowed(room.event("m.room.message", BOB, {})))
        room.member(BOB, "join")
        self.assertTrue(room.allowed(room.event("m.room.message", BOB, {})))
        self.assertFalse(room.allowed(room.event("m.room.name", BOB, {"name": "x"}, "")))
        self.assertTrue(room.allowed(room.event("m.room.name", ALICE, {"name": "x"}, "")))
        self.assertFalse(room.allowed(room.event("io.x", ALICE, {}, BOB)))
        self.assertTrue(room.allowed(room.event("io.x", ALICE, {}, ALICE)))
        muted = Room("11", events_default=10)
        muted.member(BOB, "join")
        self.assertFalse(muted.allowed(muted.event("m.room.message", BOB, {})))
        kicked = Room("11")
        kicked.member(BOB, "leave")
        self.assertFalse(kicked.allowed(kicked.event("m.room.message", BOB, {})))

    def test_aliases_special_case(self) -> None:
        """4. m.room.aliases: state_key is the sender's server in v1-v5; ordinary after."""
        for version in ALL:
            v = KNOWN_ROOM_VERSIONS[version]
            room = Room(version)
            room.member(BOB, "join")
            own = room.event("m.room.aliases", BOB, {"aliases": []}, "b.test")
            self.assertEqual(room.allowed(own), v.special_case_aliases_auth)
            other = room.event("m.room.aliases", ALICE, {"aliases": []}, "b.test")
            self.assertEqual(room.allowed(other), not v.special_case_aliases_auth)

    def test_power_level_changes(self) -> None:
        """10. Nobody raises anyone above themselves or changes users at/above their level."""
        room = Room("11", users={BOB: 50, CAROL: 50})
        room.member(BOB, "join")
        pl = {"users": {ALICE: 100, BOB: 50, CAROL: 50}, "state_default": 50}

        def change(sender: str, **content: Any) -> bool:
            return room.allowed(room.event("m.room.power_levels", sender, content, ""))

        self.assertTrue(change(ALICE, **{**pl, "users": {ALICE: 100, BOB: 99, CAROL: 50}}))
        self.assertFalse(change(BOB, **{**pl, "users": {ALICE: 100, BOB: 51, CAROL: 50}}))
        self.assertFalse(change(BOB, **{**pl, "users": {ALICE: 100, BOB: 50, CAROL: 0}}))
        self.assertTrue(change(BOB, **{**pl, "users": {ALICE: 100, BOB: 10, CAROL: 50}}))
        self.assertFalse(change(BOB, **{**pl, "ban": 60}))
        self.assertFalse(change(BOB, **{**pl, "users": {ALICE: 100, BOB: 50, CAROL: 50},
                                        "events": {"m.room.name": 60}}))
        self.assertFalse(change(ALICE, **{**pl, "users": {"not-a-user": 1}}))

    def test_integer_levels_from_v10(self) -> None:
        """String power levels parse before v10 and are refused from v10."""
        for version in ALL:
            v = KNOWN_ROOM_VERSIONS[version]
            room = Room(version)
            users = {} if v.privileged_creators else {ALICE: 100}
            event = room.event("m.room.power_levels", ALICE,
                               {"users": users, "ban": "50"}, "")
            self.assertEqual(room.allowed(event), not v.enforce_int_power_levels, version)

    def test_notifications_from_v6(self) -> None:
        """Raising `notifications.room` above one's level is checked from v6."""
        for version in ALL:
            v = KNOWN_ROOM_VERSIONS[version]
            room = Room(version, users={BOB: 50}, state_default=0)
            room.member(BOB, "join")
            users = {BOB: 50} if v.privileged_creators else {ALICE: 100, BOB: 50}
            event = room.event("m.room.power_levels", BOB,
                               {"users": users, "state_default": 0,
                                "notifications": {"room": 80}}, "")
            self.assertEqual(room.allowed(event), not v.limit_notifications_power_levels)

    def test_v12_creators(self) -> None:
        """v12: creators have infinite power and may not be listed in `users`."""
        room = Room("12")
        self.assertEqual(get_user_power_level(ALICE, room.state), float("inf"))
        listed = room.event("m.room.power_levels", ALICE, {"users": {ALICE: 100}}, "")
        self.assertFalse(room.allowed(listed))
        self.assertTrue(room.allowed(room.event("m.room.power_levels", ALICE,
                                                {"users": {BOB: 100}}, "")))
        old = Room("11")
        self.assertEqual(get_user_power_level(ALICE, old.state), 100)

    def test_default_levels_without_power_levels(self) -> None:
        """Without power levels the creator has 100 and everyone else users_default 0."""
        room = Room("10")
        del room.state[("m.room.power_levels", "")]
        self.assertEqual(get_user_power_level(ALICE, room.state), 100)
        self.assertEqual(get_user_power_level(BOB, room.state), 0)

    def test_redactions_v1_v2_only(self) -> None:
        """11. In v1-v2 a redaction needs the redact level or the same server; later not."""
        for version in ("1", "2", "3", "11"):
            v = KNOWN_ROOM_VERSIONS[version]
            room = Room(version)
            room.member(BOB, "join")
            redaction = Event(event_id="$r:b.test", room_id=ROOM, type="m.room.redaction",
                              state_key=None, sender=BOB, content={}, prev_event_ids=("$p",),
                              auth_event_ids=(), depth=3, origin_server_ts=0, room_version=v,
                              redacts="$target:a.test")
            self.assertEqual(room.allowed(redaction), v.uses_reference_hash_event_ids)

    def test_auth_types(self) -> None:
        """auth_types_for_event names create, power levels, sender and target member, join
        rules for joins/invites/knocks."""
        room = Room("11")
        join = room.membership(BOB, BOB, "join")
        self.assertEqual(auth_types_for_event(join), {
            ("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", BOB),
            ("m.room.join_rules", "")})
        leave = room.membership(ALICE, BOB, "leave")
        self.assertNotIn(("m.room.join_rules", ""), auth_types_for_event(leave))
        self.assertIn(("m.room.member", ALICE), auth_types_for_event(leave))
        self.assertEqual(auth_types_for_event(room.create), set())
