"""Gaps found in use: deactivation parts rooms and erases, ignored users in /messages,
profile changes copied into joins, `summary` always in /sync, UIA 401 shape."""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import CLIENT
from tests.api.test_sync import SyncHelpers
from tests.harness import HomeserverTestCase, override_config

DEACTIVATE = f"{CLIENT}/account/deactivate"


class RoomGapsTestCase(SyncHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, self.room_id)

    def members(self, room_id: str) -> dict[str, str]:
        channel = self.make_request("GET", f"{CLIENT}/rooms/{room_id}/members",
                                    access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        return {e["state_key"]: e["content"]["membership"]
                for e in channel.json_body["chunk"]}

    def deactivate(self, token: str, user: str, erase: bool = False) -> None:
        body: dict[str, Any] = {"erase": erase}
        channel = self.make_request("POST", DEACTIVATE, body, access_token=token)
        self.assertEqual(channel.code, 401, channel.result)
        body["auth"] = {"type": "m.login.password", "password": "password",
                        "session": channel.json_body["session"],
                        "identifier": {"type": "m.id.user", "user": user}}
        channel = self.make_request("POST", DEACTIVATE, body, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)

    def messages(self, token: str, room_id: str) -> list[dict[str, Any]]:
        channel = self.make_request("GET", f"{CLIENT}/rooms/{room_id}/messages?dir=b&limit=50",
                                    access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        chunk: list[dict[str, Any]] = channel.json_body["chunk"]
        return chunk

    # -- deactivation --

    def test_deactivation_leaves_rooms_and_rejects_invites(self) -> None:
        """A deactivated user leaves every joined room and their pending invites are rejected."""
        other = self.create_room(self.alice_token)
        self.invite(self.alice, other, self.bob)
        self.deactivate(self.bob_token, "bob")
        self.assertEqual(self.members(self.room_id)[self.bob], "leave")
        self.assertEqual(self.members(other)[self.bob], "leave")

    def test_erased_user_events_redacted_for_new_joiners(self) -> None:
        """After deactivation with erase, a later joiner sees the user's messages redacted;
        a member who was there sees them whole."""
        self.send_state(self.alice_token, self.room_id, "m.room.history_visibility",
                        {"history_visibility": "shared"})
        event_id = self.send_message(self.bob_token, self.room_id, "secret")
        self.deactivate(self.bob_token, "bob", erase=True)
        self.register_user("carol")
        carol_token = self.login("carol")
        self.join("@carol:test", self.room_id)
        seen = {e["event_id"]: e for e in self.messages(carol_token, self.room_id)}
        self.assertEqual(seen[event_id]["content"], {})
        seen = {e["event_id"]: e for e in self.messages(self.alice_token, self.room_id)}
        self.assertEqual(seen[event_id]["content"]["body"], "secret")

    def test_deactivation_without_erase_keeps_events(self) -> None:
        """Without erase, a later joiner still sees the deactivated user's messages."""
        self.send_state(self.alice_token, self.room_id, "m.room.history_visibility",
                        {"history_visibility": "shared"})
        event_id = self.send_message(self.bob_token, self.room_id, "kept")
        self.deactivate(self.bob_token, "bob")
        self.register_user("carol")
        carol_token = self.login("carol")
        self.join("@carol:test", self.room_id)
        seen = {e["event_id"]: e for e in self.messages(carol_token, self.room_id)}
        self.assertEqual(seen[event_id]["content"]["body"], "kept")

    # -- ignored users --

    def test_messages_drop_ignored_users_messages_not_state(self) -> None:
        """/messages drops an ignored user's messages but keeps their state events."""
        message = self.send_message(self.bob_token, self.room_id, "noise")
        channel = self.make_request(
            "PUT", f"{CLIENT}/user/{self.alice}/account_data/m.ignored_user_list",
            {"ignored_users": {self.bob: {}}}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        ids = [e["event_id"] for e in self.messages(self.alice_token, self.room_id)]
        self.assertNotIn(message, ids)
        bob_join = self.state_event_id(self.room_id, "m.room.member", self.bob)
        self.assertIn(bob_join, ids)

    def state_event_id(self, room_id: str, event_type: str, state_key: str) -> str:
        stores = self.hs.get_datastores()
        current = self.get_success(stores.state.get_current_state_ids(room_id))
        event_id: str = current[(event_type, state_key)]
        return event_id

    # -- profile propagation --

    def test_displayname_change_updates_joins(self) -> None:
        """Setting a display name re-sends the user's join with it in each joined room."""
        other = self.create_room(self.bob_token)
        channel = self.make_request("PUT", f"{CLIENT}/profile/{self.bob}/displayname",
                                    {"displayname": "Bobby"}, access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        for room_id in (self.room_id, other):
            content = self.state_content(room_id, "m.room.member", self.bob)
            assert content is not None
            self.assertEqual(content["displayname"], "Bobby")
            self.assertEqual(content["membership"], "join")
        channel = self.make_request("DELETE", f"{CLIENT}/profile/{self.bob}/displayname",
                                    access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        content = self.state_content(self.room_id, "m.room.member", self.bob)
        assert content is not None
        self.assertNotIn("displayname", content)

    @override_config({"rc_joins_per_room": {"per_second": 0.001, "burst_count": 1}})
    def test_profile_propagation_rate_limited_per_room(self) -> None:
        """Over the per-room limit the profile is saved but the join is not re-sent."""
        for name in ("One", "Two"):
            channel = self.make_request("PUT", f"{CLIENT}/profile/{self.bob}/displayname",
                                        {"displayname": name}, access_token=self.bob_token)
            self.assertEqual(channel.code, 200, channel.result)
        content = self.state_content(self.room_id, "m.room.member", self.bob)
        assert content is not None
        self.assertEqual(content["displayname"], "One")
        channel = self.make_request("GET", f"{CLIENT}/profile/{self.bob}/displayname")
        self.assertEqual(channel.json_body, {"displayname": "Two"})

    # -- sync summary, UIA shape --

    def test_sync_summary_always_present(self) -> None:
        """/sync sends `summary` for joined rooms without lazy loading (an empty object)."""
        body = self.sync(self.alice_token)
        self.assertEqual(body["rooms"]["join"][self.room_id]["summary"], {})

    def test_delete_device_401_has_flows_params_session(self) -> None:
        """DELETE /devices/{id}'s 401 always carries flows, params and session."""
        for content in (None, {}, {"auth": {"type": "m.login.password", "password": "no",
                                            "identifier": {"type": "m.id.user",
                                                           "user": "alice"}}}):
            channel = self.make_request("DELETE", f"{CLIENT}/devices/NOPE", content,
                                        access_token=self.alice_token)
            self.assertEqual(channel.code, 401, channel.result)
            self.assertTrue(channel.json_body["flows"])
            self.assertIsInstance(channel.json_body["params"], dict)
            self.assertIsInstance(channel.json_body["session"], str)


class InviteBlockingTestCase(SyncHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.room_id = self.create_room(self.alice_token)

    def set_config(self, content: dict[str, Any]) -> None:
        channel = self.make_request(
            "PUT", f"{CLIENT}/user/{self.bob}/account_data/m.invite_permission_config",
            content, access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)

    def invite_request(self) -> Any:
        return self.make_request("POST", f"{CLIENT}/rooms/{self.room_id}/invite",
                                 {"user_id": self.bob}, access_token=self.alice_token)

    def test_invite_blocked(self) -> None:
        """default_action block: /invite is 403 M_INVITE_BLOCKED; removing it allows again."""
        self.set_config({"default_action": "block"})
        self.assert_error(self.invite_request(), 403, "M_INVITE_BLOCKED")
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/state/m.room.member/{self.bob}",
            {"membership": "invite"}, access_token=self.alice_token)
        self.assert_error(channel, 403, "M_INVITE_BLOCKED")
        self.set_config({})
        self.assertEqual(self.invite_request().code, 200)

    def test_create_room_with_blocked_invitee(self) -> None:
        """createRoom succeeds without inviting a user who blocks invites."""
        self.set_config({"default_action": "block"})
        room_id = self.create_room(self.alice_token, {"invite": [self.bob]})
        self.assertIsNone(self.state_content(room_id, "m.room.member", self.bob))

    def test_existing_invites_hidden_from_sync(self) -> None:
        """Invites already received are not served by /sync while invites are blocked."""
        self.invite(self.alice, self.room_id, self.bob)
        self.assertIn(self.room_id, self.sync(self.bob_token)["rooms"]["invite"])
        self.set_config({"default_action": "block"})
        self.assertEqual(self.sync(self.bob_token)["rooms"]["invite"], {})

    def test_ignored_inviter_dropped_from_sync(self) -> None:
        """An invite from an ignored user does not reach /sync."""
        channel = self.make_request(
            "PUT", f"{CLIENT}/user/{self.bob}/account_data/m.ignored_user_list",
            {"ignored_users": {self.alice: {}}}, access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.invite(self.alice, self.room_id, self.bob)
        self.assertEqual(self.sync(self.bob_token)["rooms"]["invite"], {})
