"""The room engine through createRoom, send and state: versions, txn IDs, limits, state."""

from __future__ import annotations

from typing import Any

from homeserver.room_versions import KNOWN_ROOM_VERSIONS
from tests.harness import HomeserverTestCase

CREATE = "/_matrix/client/v3/createRoom"


class RoomEngineTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.token = self.login("alice")

    def create(self, body: dict[str, Any] | None = None, token: str | None = None) -> str:
        channel = self.make_request("POST", CREATE, body or {}, access_token=token or self.token)
        self.assertEqual(channel.code, 200, channel.result)
        room_id: str = channel.json_body["room_id"]
        return room_id

    def send(self, room_id: str, txn: str, body: dict[str, Any] | None = None,
             token: str | None = None, event_type: str = "m.room.message") -> Any:
        return self.make_request(
            "PUT", f"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn}",
            body if body is not None else {"msgtype": "m.text", "body": "hi"},
            access_token=token or self.token)

    def current_state(self, room_id: str) -> dict[tuple[str, str], Any]:
        hs = self.hs
        ids = self.get_success(hs.get_datastores().state.get_current_state_ids(room_id))
        events = self.get_success(hs.get_datastores().events.get_events(ids.values()))
        return {k: events[v] for k, v in ids.items()}

    def test_every_room_version(self) -> None:
        """Rooms of every version 1-12 can be created and messaged; IDs follow the version."""
        for version in KNOWN_ROOM_VERSIONS:
            with self.subTest(version=version):
                room_id = self.create({"room_version": version, "name": f"v{version}"})
                channel = self.send(room_id, f"t{version}")
                self.assertEqual(channel.code, 200, channel.result)
                event_id = channel.json_body["event_id"]
                if int(version) >= 12:
                    self.assertNotIn(":", room_id)
                else:
                    self.assertTrue(room_id.endswith(":test"))
                if int(version) <= 2:
                    self.assertTrue(event_id.endswith(":test"))
                else:
                    self.assertNotIn(":", event_id)
                state = self.current_state(room_id)
                self.assertEqual(state[("m.room.name", "")].content["name"], f"v{version}")
                self.assertEqual(state[("m.room.create", "")].content["room_version"], version)

    def test_default_version_and_presets(self) -> None:
        """New rooms are v12 by default; presets set join rules and history visibility."""
        room_id = self.create({"preset": "public_chat", "topic": "hello"})
        state = self.current_state(room_id)
        self.assertEqual(state[("m.room.create", "")].content["room_version"], "12")
        self.assertEqual(state[("m.room.join_rules", "")].content["join_rule"], "public")
        self.assertEqual(state[("m.room.history_visibility", "")]
                         .content["history_visibility"], "shared")
        self.assertEqual(state[("m.room.topic", "")].content["topic"], "hello")
        # v12: the creator has infinite power and is not listed in power levels.
        self.assertNotIn(self.alice, state[("m.room.power_levels", "")].content["users"])
        private = self.current_state(self.create({"preset": "private_chat"}))
        self.assertEqual(private[("m.room.join_rules", "")].content["join_rule"], "invite")

    def test_v11_creator_listed_in_power_levels(self) -> None:
        """Before v12 the creator gets power level 100 in m.room.power_levels."""
        state = self.current_state(self.create({"room_version": "11"}))
        self.assertEqual(state[("m.room.power_levels", "")].content["users"], {self.alice: 100})

    def test_txn_id_idempotent(self) -> None:
        """The same txn ID from the same device returns the same event; another device not."""
        room_id = self.create()
        first = self.send(room_id, "abc").json_body["event_id"]
        self.assertEqual(self.send(room_id, "abc").json_body["event_id"], first)
        other_device = self.login("alice")
        self.assertNotEqual(self.send(room_id, "abc", token=other_device)
                            .json_body["event_id"], first)

    def test_errors(self) -> None:
        """Unknown room 404, non-member 403, oversize 413, bad version 400, bad JSON 400."""
        room_id = self.create()
        self.assert_error(self.send("!nope:test", "1"), 404, "M_NOT_FOUND")
        self.register_user("bob")
        bob = self.login("bob")
        self.assert_error(self.send(room_id, "1", token=bob), 403, "M_FORBIDDEN")
        self.assert_error(self.send(room_id, "2", {"body": "x" * 70000}), 413, "M_TOO_LARGE")
        channel = self.make_request("POST", CREATE, {"room_version": "99"},
                                    access_token=self.token)
        self.assert_error(channel, 400, "M_UNSUPPORTED_ROOM_VERSION")
        channel = self.make_request("POST", CREATE, {"name": 5}, access_token=self.token)
        self.assert_error(channel, 400, "M_BAD_JSON")
        channel = self.make_request("POST", CREATE, {"preset": "bogus"}, access_token=self.token)
        self.assert_error(channel, 400, "M_INVALID_PARAM")
        channel = self.make_request("POST", CREATE, {"invite": ["not-a-user"]},
                                    access_token=self.token)
        self.assert_error(channel, 400, "M_INVALID_PARAM")
        self.assert_error(self.make_request("POST", CREATE, {}), 401, "M_MISSING_TOKEN")
        self.assert_error(self.send(room_id, "3", event_type="x" * 256), 400,
                          "M_INVALID_PARAM")
        # Floats are not canonical JSON in v6+ rooms.
        self.assert_error(self.send(room_id, "4", {"body": "x", "n": 1.5}), 400, "M_BAD_JSON")

    def test_state_put_and_power(self) -> None:
        """Room state is set with PUT /state; a member without power is refused."""
        room_id = self.create({"preset": "public_chat"})
        channel = self.make_request(
            "PUT", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.topic",
            {"topic": "new"}, access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.current_state(room_id)[("m.room.topic", "")].content["topic"],
                         "new")
        self.register_user("bob")
        bob = self.login("bob")
        self.get_success(self.hs.get_room_member_handler().join("@bob:test", room_id))
        channel = self.make_request(
            "PUT", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.name/",
            {"name": "bob's"}, access_token=bob)
        self.assert_error(channel, 403, "M_FORBIDDEN")
        # Messages are fine at power 0.
        self.assertEqual(self.send(room_id, "b1", token=bob).code, 200)

    def test_muted_member_cannot_send(self) -> None:
        """Raising events_default above a member's level mutes them."""
        room_id = self.create({"preset": "public_chat"})
        self.register_user("bob")
        bob = self.login("bob")
        self.get_success(self.hs.get_room_member_handler().join("@bob:test", room_id))
        power = dict(self.current_state(room_id)[("m.room.power_levels", "")].content)
        power["events_default"] = 10
        channel = self.make_request(
            "PUT", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.power_levels",
            power, access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assert_error(self.send(room_id, "m1", token=bob), 403, "M_FORBIDDEN")

    def test_state_groups_are_deltas_with_bounded_chains(self) -> None:
        """State after each event is stored as deltas, reset to a full snapshot periodically."""
        room_id = self.create({"room_version": "10"})
        for i in range(60):
            channel = self.make_request(
                "PUT", f"/_matrix/client/v3/rooms/{room_id}/state/io.axon.test/k{i}",
                {"i": i}, access_token=self.token)
            self.assertEqual(channel.code, 200, channel.result)
        db = self.hs.get_datastores().db
        rows = self.get_success(db.execute(
            "chains", "SELECT MAX(chain_length) FROM state_groups WHERE room_id = ?", room_id))
        self.assertLessEqual(rows[0][0], 50)
        state = self.current_state(room_id)
        self.assertEqual(state[("io.axon.test", "k59")].content, {"i": 59})
        last = self.send(room_id, "after").json_body["event_id"]
        after = self.get_success(self.hs.get_datastores().state.get_state_after_event(last))
        self.assertEqual(len(after), len(state))

    def test_redaction_power(self) -> None:
        """A member may redact their own event but not another's without power."""
        room_id = self.create({"preset": "public_chat"})
        self.register_user("bob")
        bob = self.login("bob")
        self.get_success(self.hs.get_room_member_handler().join("@bob:test", room_id))
        mine = self.send(room_id, "a1").json_body["event_id"]
        path = f"/_matrix/client/v3/rooms/{room_id}/redact/{mine}/r1"
        self.assert_error(self.make_request("PUT", path, {}, access_token=bob), 403,
                          "M_FORBIDDEN")
        bobs = self.send(room_id, "b1", token=bob).json_body["event_id"]
        channel = self.make_request(
            "PUT", f"/_matrix/client/v3/rooms/{room_id}/redact/{bobs}/r2", {"reason": "oops"},
            access_token=bob)
        self.assertEqual(channel.code, 200, channel.result)
        redactions = self.get_success(self.hs.get_datastores().events.get_redactions([bobs]))
        self.assertEqual(redactions[bobs], channel.json_body["event_id"])
        channel = self.make_request("PUT", path, {}, access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
