"""Outsiders reading rooms (issue 9): who was never joined reads nothing, who left reads
the room as it was when they left, /aliases only for members (and world-readable rooms)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from tests.api.room_helpers import CLIENT as C
from tests.api.room_helpers import RoomHelpers
from tests.harness import FakeChannel, HomeserverTestCase

SYNC_WITH_LEAVE = "/sync?filter=" + urllib.parse.quote(json.dumps({"room": {
    "include_leave": True, "timeline": {"limit": 50}}}))


class OutsiderReadsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        for name in ("alice", "mallory"):
            self.register_user(name)
        self.alice = self.login("alice")
        self.mallory = self.login("mallory")
        self.room = self.create_room(self.alice, {
            "preset": "private_chat", "name": "SECRETNAME",
            "initial_state": [{"type": "m.room.join_rules", "state_key": "",
                               "content": {"join_rule": "knock"}}]})
        self.ok(self.alice, "PUT", "/directory/room/%23hideout:test", {"room_id": self.room})
        self.send_message(self.alice, self.room, "SECRETMSG")

    def req(self, token: str, method: str, path: str, body: Any = None) -> FakeChannel:
        return self.make_request(method, C + path, body, access_token=token)

    def ok(self, token: str, method: str, path: str, body: Any = None) -> Any:
        channel = self.req(token, method, path, body)
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body

    def assert_reads_forbidden(self) -> None:
        for path in ("/state", "/state/m.room.name/", "/members", "/aliases",
                     "/messages?dir=b", "/joined_members"):
            with self.subTest(path=path):
                self.assert_error(self.req(self.mallory, "GET", f"/rooms/{self.room}{path}"),
                                  403, "M_FORBIDDEN")

    def assert_leave_section_without_secrets(self) -> None:
        channel = self.req(self.mallory, "GET", SYNC_WITH_LEAVE)
        self.assertEqual(channel.code, 200, channel.result)
        left = channel.json_body["rooms"]["leave"][self.room]
        self.assertEqual(left["state"]["events"], [])
        self.assertNotIn(b"SECRET", channel.result)

    def test_banned_before_joining(self) -> None:
        """A user banned without ever joining reads no state, members or aliases, and
        their sync leave section carries no state."""
        self.set_membership("@alice:test", self.room, "@mallory:test", "ban")
        self.assert_reads_forbidden()
        self.assert_leave_section_without_secrets()

    def test_withdrawn_knock(self) -> None:
        """A knock withdrawn (and an invite rejected) grants nothing."""
        self.ok(self.mallory, "POST", f"/knock/{self.room}", {})
        self.ok(self.mallory, "POST", f"/rooms/{self.room}/leave", {})
        self.assert_reads_forbidden()
        self.assert_leave_section_without_secrets()
        self.invite("@alice:test", self.room, "@mallory:test")
        self.ok(self.mallory, "POST", f"/rooms/{self.room}/leave", {})
        self.assert_reads_forbidden()

    def test_state_as_of_the_end_of_the_last_join(self) -> None:
        """Who left reads the state as of leaving, even after a later knock and its
        withdrawal; later changes reach neither /state nor the sync leave section."""
        self.invite("@alice:test", self.room, "@mallory:test")
        self.join("@mallory:test", self.room)
        self.leave("@mallory:test", self.room)
        self.send_state(self.alice, self.room, "m.room.name", {"name": "LATERNAME"})
        self.ok(self.mallory, "POST", f"/knock/{self.room}", {})
        self.ok(self.mallory, "POST", f"/rooms/{self.room}/leave", {})
        self.assertEqual(self.ok(self.mallory, "GET", f"/rooms/{self.room}/state/m.room.name/"),
                         {"name": "SECRETNAME"})
        members = self.ok(self.mallory, "GET", f"/rooms/{self.room}/members")["chunk"]
        self.assertIn("@mallory:test", [e["state_key"] for e in members])
        channel = self.req(self.mallory, "GET", SYNC_WITH_LEAVE)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertNotIn(b"LATERNAME", channel.result)
        self.assertIn(self.room, channel.json_body["rooms"]["leave"])

    def test_server_admin_reads_aliases(self) -> None:
        """A server admin reads a room's aliases without being in it (as Synapse)."""
        self.register_user("root", admin=True)
        self.assertEqual(self.ok(self.login("root"), "GET", f"/rooms/{self.room}/aliases"),
                         {"aliases": ["#hideout:test"]})

    def test_aliases_only_for_members_or_world_readable(self) -> None:
        """/aliases: joined members yes, departed members no (the current list would
        leak), anyone once the room is world_readable."""
        self.assertEqual(self.ok(self.alice, "GET", f"/rooms/{self.room}/aliases"),
                         {"aliases": ["#hideout:test"]})
        self.invite("@alice:test", self.room, "@mallory:test")
        self.join("@mallory:test", self.room)
        self.ok(self.mallory, "GET", f"/rooms/{self.room}/aliases")
        self.leave("@mallory:test", self.room)
        self.assert_error(self.req(self.mallory, "GET", f"/rooms/{self.room}/aliases"),
                          403, "M_FORBIDDEN")
        self.send_state(self.alice, self.room, "m.room.history_visibility",
                        {"history_visibility": "world_readable"})
        self.ok(self.mallory, "GET", f"/rooms/{self.room}/aliases")
        self.register_user("olive")
        self.ok(self.login("olive"), "GET", f"/rooms/{self.room}/aliases")
