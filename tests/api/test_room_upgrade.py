"""Room upgrades: POST /rooms/{roomId}/upgrade."""

from __future__ import annotations

import urllib.parse
from typing import Any

from homeserver.room_versions import KNOWN_ROOM_VERSIONS
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase

COPIED: dict[str, dict[str, Any]] = {
    "m.room.name": {"name": "Old name"},
    "m.room.topic": {"topic": "Old topic"},
    "m.room.avatar": {"url": "mxc://test/avatar"},
    "m.room.history_visibility": {"history_visibility": "joined"},
    "m.room.guest_access": {"guest_access": "forbidden"},
    "m.room.encryption": {"algorithm": "m.megolm.v1.aes-sha2"},
    "m.room.server_acl": {"allow": ["*"], "deny": ["evil.example"], "allow_ip_literals": False},
}


class RoomUpgradeTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")

    def upgrade(self, room_id: str, body: Any, token: str | None = None) -> Any:
        return self.make_request("POST", f"{CLIENT}/rooms/{room_id}/upgrade", body,
                                 access_token=token or self.alice_token)

    def upgraded(self, room_id: str, version: str, token: str | None = None,
                 **extra: Any) -> str:
        channel = self.upgrade(room_id, {"new_version": version, **extra}, token)
        self.assertEqual(channel.code, 200, channel.result)
        new_room: str = channel.json_body["replacement_room"]
        self.assertNotEqual(new_room, room_id)
        return new_room

    def room_with_state(self, version: str, **body: Any) -> str:
        room_id = self.create_room(self.alice_token, {"room_version": version,
                                                      "preset": "public_chat", **body})
        for event_type, content in COPIED.items():
            self.send_state(self.alice_token, room_id, event_type, content)
        return room_id

    def test_upgrade_copies_state_and_tombstones(self) -> None:
        """The new room gets predecessor, version and the copied state; the old room gets
        the tombstone and power levels that silence ordinary members."""
        old = self.room_with_state("10")
        self.join(self.bob, old)
        old_power = self.state_content(old, "m.room.power_levels")
        last_event = self.send_message(self.alice_token, old)
        new = self.upgraded(old, "11")

        create = self.state_content(new, "m.room.create")
        assert create is not None
        self.assertEqual(create["room_version"], "11")
        self.assertEqual(create["predecessor"], {"room_id": old, "event_id": last_event})
        for event_type, content in COPIED.items():
            self.assertEqual(self.state_content(new, event_type), content, event_type)
        self.assertEqual(self.state_content(new, "m.room.join_rules"), {"join_rule": "public"})
        self.assertEqual(self.state_content(new, "m.room.power_levels"), old_power)
        member = self.state_content(new, "m.room.member", self.alice)
        assert member is not None
        self.assertEqual(member["membership"], "join")
        self.assertIsNone(self.state_content(new, "m.room.member", self.bob))

        self.assertEqual(self.state_content(old, "m.room.tombstone"),
                         {"body": "This room has been replaced", "replacement_room": new})
        restricted = self.state_content(old, "m.room.power_levels")
        assert restricted is not None
        self.assertEqual((restricted["events_default"], restricted["invite"]), (50, 50))
        channel = self.make_request("PUT", f"{CLIENT}/rooms/{old}/send/m.room.message/t1",
                                    {"msgtype": "m.text", "body": "hi"},
                                    access_token=self.bob_token)
        self.assert_error(channel, 403, "M_FORBIDDEN")

    def test_upgrade_to_v12_creators(self) -> None:
        """Upgrading to v12: additional_creators go in m.room.create, creators leave the
        power levels' users, predecessor has no event_id, other admins stay."""
        carol = self.register_user("carol")
        old = self.create_room(self.alice_token, {
            "room_version": "11", "power_level_content_override": {
                "users": {self.alice: 100, carol: 100, self.bob: 50}}})
        new = self.upgraded(old, "12", additional_creators=[self.bob])
        self.assertNotIn(":", new)
        create = self.state_content(new, "m.room.create")
        assert create is not None
        self.assertEqual(create["additional_creators"], [self.bob])
        self.assertEqual(create["predecessor"], {"room_id": old})
        self.assertNotIn("creator", create)
        power = self.state_content(new, "m.room.power_levels")
        assert power is not None
        self.assertEqual(power["users"], {carol: 100})

    def test_additional_creators_ignored_before_v12(self) -> None:
        """additional_creators has no effect when the new version has no such notion."""
        old = self.create_room(self.alice_token, {"room_version": "10"})
        new = self.upgraded(old, "11", additional_creators=[self.bob])
        create = self.state_content(new, "m.room.create")
        assert create is not None
        self.assertNotIn("additional_creators", create)

    def test_v12_to_v11_keeps_creator_power(self) -> None:
        """Downgrading from v12 gives the old room's creators level 100 in the new room."""
        old = self.create_room(self.alice_token, {"room_version": "12"})
        new = self.upgraded(old, "11")
        power = self.state_content(new, "m.room.power_levels")
        assert power is not None
        self.assertEqual(power["users"], {self.alice: 100})
        self.send_state(self.alice_token, new, "m.room.power_levels",
                        {**power, "users": {self.alice: 100, self.bob: 50}})

    def test_moderator_raised_then_restored(self) -> None:
        """A user allowed to tombstone but below some state levels is raised in the new
        room while state is copied, then put back to their old level."""
        old = self.room_with_state("11", power_level_content_override={
            "users": {self.alice: 100, self.bob: 50},
            "events": {"m.room.tombstone": 50, "m.room.server_acl": 100,
                       "m.room.encryption": 100, "m.room.power_levels": 50,
                       "m.room.history_visibility": 100}})
        self.join(self.bob, old)
        new = self.upgraded(old, "11", token=self.bob_token)
        self.assertEqual(self.state_content(new, "m.room.server_acl"),
                         COPIED["m.room.server_acl"])
        self.assertEqual(self.state_content(new, "m.room.encryption"),
                         COPIED["m.room.encryption"])
        power = self.state_content(new, "m.room.power_levels")
        assert power is not None
        self.assertEqual(power["users"], {self.alice: 100, self.bob: 50})

    def test_aliases_move(self) -> None:
        """Local aliases and the canonical alias move; remote alt aliases stay behind."""
        old = self.create_room(self.alice_token, {"room_alias_name": "main"})
        channel = self.make_request("PUT", f"{CLIENT}/directory/room/%23alt:test",
                                    {"room_id": old}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.send_state(self.alice_token, old, "m.room.canonical_alias", {
            "alias": "#main:test", "alt_aliases": ["#alt:test", "#far:elsewhere.org"]})
        new = self.upgraded(old, "12")
        for alias in ("#main:test", "#alt:test"):
            channel = self.make_request(
                "GET", f"{CLIENT}/directory/room/{urllib.parse.quote(alias)}")
            self.assertEqual(channel.json_body["room_id"], new, alias)
        channel = self.make_request("GET", f"{CLIENT}/rooms/{new}/aliases",
                                    access_token=self.alice_token)
        self.assertEqual(channel.json_body["aliases"], ["#alt:test", "#main:test"])
        self.assertEqual(self.state_content(new, "m.room.canonical_alias"),
                         {"alias": "#main:test", "alt_aliases": ["#alt:test"]})
        self.assertEqual(self.state_content(old, "m.room.canonical_alias"),
                         {"alt_aliases": ["#far:elsewhere.org"]})

    def test_directory_entry_moves(self) -> None:
        """A published room's directory entry moves to the replacement."""
        old = self.create_room(self.alice_token, {"visibility": "public"})
        new = self.upgraded(old, "12")
        for room_id, visibility in ((old, "private"), (new, "public")):
            channel = self.make_request("GET", f"{CLIENT}/directory/list/room/{room_id}")
            self.assertEqual(channel.json_body, {"visibility": visibility})

    def test_bans_copied(self) -> None:
        """Banned users are banned in the new room too."""
        old = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, old)
        self.set_membership(self.alice, old, self.bob, "ban")
        new = self.upgraded(old, "12")
        member = self.state_content(new, "m.room.member", self.bob)
        assert member is not None
        self.assertEqual(member["membership"], "ban")

    def test_space_type_children_and_federate(self) -> None:
        """The room type and m.federate are kept; a space keeps its (non-empty) children."""
        old = self.create_room(self.alice_token, {
            "creation_content": {"type": "m.space", "m.federate": False}})
        self.send_state(self.alice_token, old, "m.space.child", {"via": ["test"]},
                        state_key="!child:test")
        self.send_state(self.alice_token, old, "m.space.child", {}, state_key="!gone:test")
        new = self.upgraded(old, "12")
        create = self.state_content(new, "m.room.create")
        assert create is not None
        self.assertEqual((create["type"], create["m.federate"]), ("m.space", False))
        self.assertEqual(self.state_content(new, "m.space.child", "!child:test"),
                         {"via": ["test"]})
        self.assertIsNone(self.state_content(new, "m.space.child", "!gone:test"))

    def test_every_version_pair(self) -> None:
        """Rooms of every version upgrade to v12 and to v1."""
        for version in KNOWN_ROOM_VERSIONS:
            for target in ("12", "1"):
                with self.subTest(version=version, target=target):
                    old = self.create_room(self.alice_token, {"room_version": version,
                                                              "name": "n"})
                    new = self.upgraded(old, target)
                    self.assertEqual(self.state_content(new, "m.room.name"), {"name": "n"})

    def test_upgrade_twice(self) -> None:
        """An upgraded room can be upgraded again by its admin."""
        old = self.create_room(self.alice_token)
        first = self.upgraded(old, "12")
        second = self.upgraded(first, "12")
        self.assertNotEqual(first, second)

    # -- errors --

    def test_unsupported_version(self) -> None:
        """An unknown room version is 400 M_UNSUPPORTED_ROOM_VERSION."""
        old = self.create_room(self.alice_token)
        self.assert_error(self.upgrade(old, {"new_version": "99"}), 400,
                          "M_UNSUPPORTED_ROOM_VERSION")

    def test_unknown_room(self) -> None:
        """An unknown room is 404 M_NOT_FOUND."""
        self.assert_error(self.upgrade("!nope:test", {"new_version": "12"}), 404,
                          "M_NOT_FOUND")

    def test_forbidden(self) -> None:
        """Non-members and members without power to send m.room.tombstone get 403, and
        nothing is changed."""
        old = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.assert_error(self.upgrade(old, {"new_version": "12"}, self.bob_token), 403,
                          "M_FORBIDDEN")
        self.join(self.bob, old)
        self.assert_error(self.upgrade(old, {"new_version": "12"}, self.bob_token), 403,
                          "M_FORBIDDEN")
        self.assertIsNone(self.state_content(old, "m.room.tombstone"))
        rooms = self.get_success(self.hs.get_datastores().room_members
                                 .get_rooms_for_local_user(self.bob))
        self.assertEqual([r.room_id for r in rooms], [old])

    def test_bad_bodies(self) -> None:
        """Missing or mistyped fields and non-JSON bodies get their error codes."""
        old = self.create_room(self.alice_token)
        cases = [({}, "M_MISSING_PARAM"), ({"new_version": 12}, "M_BAD_JSON"),
                 ({"new_version": "12", "additional_creators": "@bob:test"}, "M_BAD_JSON"),
                 ({"new_version": "12", "additional_creators": ["bob"]}, "M_INVALID_PARAM"),
                 (b"nope", "M_NOT_JSON")]
        for body, errcode in cases:
            with self.subTest(body=body):
                self.assert_error(self.upgrade(old, body), 400, errcode)

    def test_needs_token(self) -> None:
        """Upgrading without an access token is 401 M_MISSING_TOKEN."""
        old = self.create_room(self.alice_token)
        channel = self.make_request("POST", f"{CLIENT}/rooms/{old}/upgrade",
                                    {"new_version": "12"})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")
