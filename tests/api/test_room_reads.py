"""GET /rooms/{roomId}/event/{eventId}, /state, /state/{eventType}/{stateKey}."""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


class RoomReadsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.room_id = self.create_room(self.alice_token,
                                        {"preset": "public_chat", "topic": "first"})

    def get(self, path: str, token: str | None = None) -> Any:
        return self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}{path}",
                                 access_token=token or self.alice_token)

    # -- /event --

    def test_get_event(self) -> None:
        """A member gets the event in client format, with unsigned.age."""
        event_id = self.send_message(self.alice_token, self.room_id, "hello")
        self.reactor.advance(5)
        channel = self.get(f"/event/{event_id}")
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["event_id"], event_id)
        self.assertEqual(body["room_id"], self.room_id)
        self.assertEqual(body["sender"], self.alice)
        self.assertEqual(body["type"], "m.room.message")
        self.assertEqual(body["content"], {"msgtype": "m.text", "body": "hello"})
        self.assertGreaterEqual(body["unsigned"]["age"], 5000)
        self.assertNotIn("state_key", body)
        self.assertNotIn("hashes", body)

    def test_get_event_not_found(self) -> None:
        """Unknown event IDs, events of another room and unknown rooms give 404."""
        self.assert_error(self.get("/event/$nope"), 404, "M_NOT_FOUND")
        other = self.create_room(self.alice_token)
        event_id = self.send_message(self.alice_token, other)
        self.assert_error(self.get(f"/event/{event_id}"), 404, "M_NOT_FOUND")
        channel = self.make_request("GET", f"{CLIENT}/rooms/!nope:test/event/{event_id}",
                                    access_token=self.alice_token)
        self.assert_error(channel, 404, "M_NOT_FOUND")

    def test_get_event_needs_token(self) -> None:
        """Without an access token: 401 M_MISSING_TOKEN."""
        event_id = self.send_message(self.alice_token, self.room_id)
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/event/{event_id}")
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    def test_get_event_hidden_from_non_member(self) -> None:
        """A non-member of a `shared` room gets 404, not the event."""
        event_id = self.send_message(self.alice_token, self.room_id)
        self.assert_error(self.get(f"/event/{event_id}", self.bob_token), 404, "M_NOT_FOUND")

    def test_get_redacted_event(self) -> None:
        """A redacted event comes back pruned with unsigned.redacted_because."""
        event_id = self.send_message(self.alice_token, self.room_id, "secret")
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/redact/{event_id}/r1", {"reason": "oops"},
            access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        redaction_id = channel.json_body["event_id"]
        channel = self.get(f"/event/{event_id}")
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["content"], {})
        because = body["unsigned"]["redacted_because"]
        self.assertEqual(because["event_id"], redaction_id)
        self.assertEqual(because["type"], "m.room.redaction")
        self.assertEqual(because["content"]["reason"], "oops")
        # The redaction itself is readable and not pruned.
        channel = self.get(f"/event/{redaction_id}")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["content"]["reason"], "oops")

    # -- /state --

    def test_get_state(self) -> None:
        """A member gets the current state as a list of client events."""
        channel = self.get("/state")
        self.assertEqual(channel.code, 200, channel.result)
        by_key = {(e["type"], e["state_key"]): e for e in channel.json_body}
        self.assertEqual(by_key[("m.room.create", "")]["sender"], self.alice)
        self.assertEqual(by_key[("m.room.member", self.alice)]["content"]["membership"],
                         "join")
        self.assertEqual(by_key[("m.room.topic", "")]["content"]["topic"], "first")
        self.assertIn(("m.room.power_levels", ""), by_key)
        self.assertIn(("m.room.join_rules", ""), by_key)
        for event in channel.json_body:
            self.assertEqual(event["room_id"], self.room_id)
            self.assertIn("event_id", event)

    def test_state_forbidden_for_non_member(self) -> None:
        """A user who never joined gets 403 on /state and /state/{type}; so does an unknown
        room, and an invited user."""
        self.assert_error(self.get("/state", self.bob_token), 403, "M_FORBIDDEN")
        self.assert_error(self.get("/state/m.room.topic", self.bob_token), 403, "M_FORBIDDEN")
        channel = self.make_request("GET", f"{CLIENT}/rooms/!unknown:test/state",
                                    access_token=self.alice_token)
        self.assert_error(channel, 403, "M_FORBIDDEN")
        self.invite(self.alice, self.room_id, self.bob)
        self.assert_error(self.get("/state", self.bob_token), 403, "M_FORBIDDEN")
        self.assert_error(self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/state"),
                          401, "M_MISSING_TOKEN")

    def test_world_readable_state_for_non_member(self) -> None:
        """In a world_readable room a non-member reads the current state."""
        self.send_state(self.alice_token, self.room_id, "m.room.history_visibility",
                        {"history_visibility": "world_readable"})
        channel = self.get("/state/m.room.topic/", self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"topic": "first"})
        self.assertEqual(self.get("/state", self.bob_token).code, 200)

    def test_leaver_sees_state_as_of_leaving(self) -> None:
        """After leaving, /state and /state/{type} show the state at the leave event."""
        self.join(self.bob, self.room_id)
        self.leave(self.bob, self.room_id)
        self.send_state(self.alice_token, self.room_id, "m.room.topic", {"topic": "later"})
        channel = self.get("/state/m.room.topic", self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"topic": "first"})
        channel = self.get("/state", self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        by_key = {(e["type"], e["state_key"]): e for e in channel.json_body}
        self.assertEqual(by_key[("m.room.topic", "")]["content"]["topic"], "first")
        self.assertEqual(by_key[("m.room.member", self.bob)]["content"]["membership"], "leave")
        # Alice, still joined, sees the new topic.
        self.assertEqual(self.get("/state/m.room.topic").json_body, {"topic": "later"})

    def test_banned_user_sees_state_as_of_ban(self) -> None:
        """A banned user reads the state at their ban, not later changes."""
        self.join(self.bob, self.room_id)
        self.set_membership(self.alice, self.room_id, self.bob, "ban")
        self.send_state(self.alice_token, self.room_id, "m.room.topic", {"topic": "later"})
        channel = self.get("/state/m.room.member/" + self.bob, self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["membership"], "ban")
        self.assertEqual(self.get("/state/m.room.topic", self.bob_token).json_body,
                         {"topic": "first"})

    # -- /state/{eventType}/{stateKey} --

    def test_get_state_event_content_and_format(self) -> None:
        """Content by default; the whole client event with ?format=event."""
        channel = self.get("/state/m.room.topic/")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"topic": "first"})
        channel = self.get("/state/m.room.topic/?format=event")
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["type"], "m.room.topic")
        self.assertEqual(body["state_key"], "")
        self.assertEqual(body["content"], {"topic": "first"})
        self.assertEqual(body["sender"], self.alice)
        self.assertIn("event_id", body)
        channel = self.get(f"/state/m.room.member/{self.alice}?format=content")
        self.assertEqual(channel.json_body["membership"], "join")

    def test_legacy_form_without_state_key(self) -> None:
        """/state/{eventType} without a trailing slash reads the empty state key."""
        channel = self.get("/state/m.room.topic")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"topic": "first"})

    def test_get_state_event_not_found(self) -> None:
        """An unknown type or state key gives 404 M_NOT_FOUND."""
        self.assert_error(self.get("/state/m.room.name/"), 404, "M_NOT_FOUND")
        self.assert_error(self.get("/state/m.room.topic/nope"), 404, "M_NOT_FOUND")
        self.assert_error(self.get(f"/state/m.room.member/{self.bob}"), 404, "M_NOT_FOUND")

    def test_bad_format(self) -> None:
        """An unknown ?format value is 400 M_INVALID_PARAM."""
        self.assert_error(self.get("/state/m.room.topic/?format=xml"), 400, "M_INVALID_PARAM")

    def test_redacted_state_event_is_pruned(self) -> None:
        """A redacted topic reads as pruned content; the event form says why."""
        topic_id = self.send_state(self.alice_token, self.room_id, "m.room.topic",
                                   {"topic": "rude"})
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/redact/{topic_id}/r1", {},
            access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.get("/state/m.room.topic").json_body, {})
        body = self.get("/state/m.room.topic?format=event").json_body
        self.assertEqual(body["event_id"], topic_id)
        self.assertEqual(body["unsigned"]["redacted_because"]["redacts"], topic_id)

    def test_put_state_still_routed(self) -> None:
        """The GET servlet does not shadow PUT on the same path."""
        self.send_state(self.alice_token, self.room_id, "m.room.topic", {"topic": "put"})
        self.assertEqual(self.get("/state/m.room.topic").json_body, {"topic": "put"})
