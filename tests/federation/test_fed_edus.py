"""Presence (`m.presence`) and device-list (`m.device_list_update`) EDUs, both ways."""

from __future__ import annotations

from typing import Any

from handlers.presence import (
    FEDERATION_PING_INTERVAL_MS,
    FEDERATION_TIMEOUT_MS,
    TIMEOUT_CHECK_START_DELAY_S,
)
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.federation.fed_helpers import RemoteServer, join_remote_user, signed_request
from tests.federation.test_sender import FakeFederationClient
from tests.harness import HomeserverTestCase, override_config

SEND = "/_matrix/federation/v1/send"


class EduTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.client = FakeFederationClient()
        hs._parts["federation_client"] = self.client
        self.remote = RemoteServer("remote.test")
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")  # shares no room with anyone remote
        self.bob_token = self.login("bob")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.rita = "@rita:remote.test"
        self.sam = "@sam:other.test"
        join_remote_user(self, self.room_id, self.rita)
        join_remote_user(self, self.room_id, self.sam)
        self.pump()
        self.client.sent.clear()
        self.txn = 0

    def edus(self, destination: str, edu_type: str) -> list[dict[str, Any]]:
        return [e["content"] for t in self.client.to(destination) for e in t.body["edus"]
                if e["edu_type"] == edu_type]

    def send_edus(self, edus: list[Any]) -> None:
        self.txn += 1
        body = {"origin": self.remote.name, "origin_server_ts": 0, "pdus": [], "edus": edus}
        channel = signed_request(self, self.remote, "PUT", f"{SEND}/{self.txn}", body)
        self.assertEqual(channel.code, 200, channel.result)

    def sync(self, token: str, since: str | None = None) -> dict[str, Any]:
        path = f"{CLIENT}/sync?timeout=0" + (f"&since={since}" if since else "")
        channel = self.make_request("GET", path, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body
        return body


class PresenceEduTests(EduTestCase):
    def presence_of(self, user_id: str) -> Any:
        row = self.get_success(self.hs.get_datastores().presence.get_presence(user_id))
        return row

    def set_presence(self, token: str, user_id: str, body: dict[str, Any]) -> None:
        channel = self.make_request("PUT", f"{CLIENT}/presence/{user_id}/status", body,
                                    access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        self.pump()

    def test_local_change_goes_to_servers_sharing_a_room(self) -> None:
        self.set_presence(self.alice_token, self.alice,
                          {"presence": "online", "status_msg": "hi"})
        expected = {"push": [{"user_id": self.alice, "presence": "online",
                              "currently_active": True, "last_active_ago": 0,
                              "status_msg": "hi"}]}
        self.assertEqual(self.edus("remote.test", "m.presence"), [expected])
        self.assertEqual(self.edus("other.test", "m.presence"), [expected])
        self.assertEqual({t.destination for t in self.client.sent},
                         {"remote.test", "other.test"})
        # bob shares no room with a remote server: nothing is sent
        self.client.sent.clear()
        self.set_presence(self.bob_token, self.bob, {"presence": "online"})
        self.assertEqual(self.client.sent, [])

    def test_unchanged_presence_is_not_resent(self) -> None:
        self.set_presence(self.alice_token, self.alice, {"presence": "unavailable"})
        self.set_presence(self.alice_token, self.alice, {"presence": "unavailable"})
        self.assertEqual(len(self.edus("remote.test", "m.presence")), 1)

    def test_online_user_is_pinged_and_idle_change_sent(self) -> None:
        """A user who stays connected is re-sent every 25 minutes; the idle timer's
        change to unavailable is sent when it happens."""
        self.set_presence(self.alice_token, self.alice, {"presence": "online"})
        presence = self.hs.get_presence_handler()
        elapsed = 0
        while elapsed < 32 * 60:
            self.reactor.advance(30)
            elapsed += 30
            self.get_success(presence.user_syncing(self.alice, "online"))
            self.pump()
        states = [(c["push"][0]["presence"], c["push"][0]["currently_active"])
                  for c in self.edus("remote.test", "m.presence")]
        # online; no longer currently active after a minute; idle after 5 minutes; then
        # the same again 25 minutes later (the ping)
        self.assertEqual(states, [("online", True), ("online", False),
                                  ("unavailable", False), ("unavailable", False)])
        self.assertLess(5 * 60_000 + FEDERATION_PING_INTERVAL_MS, 32 * 60_000)

    def test_remote_presence_reaches_room_mates_sync(self) -> None:
        first = self.sync(self.alice_token)
        self.send_edus([{"edu_type": "m.presence", "content": {"push": [
            {"user_id": self.rita, "presence": "online", "last_active_ago": 5000,
             "currently_active": True, "status_msg": "from afar"},
            {"user_id": "@eve:evil.test", "presence": "online"},  # not remote.test's user
            {"user_id": "@ghost:remote.test", "presence": "online"},  # shares no room
            {"user_id": "@bad:remote.test", "presence": "bogus"},
            {"user_id": self.rita, "presence": "online", "last_active_ago": -1},
            "garbage",
        ]}}, {"edu_type": "m.presence", "content": {"push": "nope"}}])
        body = self.sync(self.alice_token, first["next_batch"])
        events = {e["sender"]: e["content"] for e in body["presence"]["events"]}
        self.assertEqual(events, {self.rita: {"presence": "online", "currently_active": True,
                                              "last_active_ago": 5000,
                                              "status_msg": "from afar"}})
        for user in ("@eve:evil.test", "@ghost:remote.test", "@bad:remote.test"):
            self.assertIsNone(self.presence_of(user))
        # An initial sync shows her too; bob, who shares no room with her, does not.
        initial = self.sync(self.alice_token)
        self.assertIn(self.rita, [e["sender"] for e in initial["presence"]["events"]])
        bob = self.sync(self.bob_token)
        self.assertNotIn(self.rita, [e["sender"] for e in bob["presence"]["events"]])
        # GET presence: a room-mate may read it, a stranger may not.
        path = f"{CLIENT}/presence/{self.rita}/status"
        channel = self.make_request("GET", path, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["presence"], "online")
        self.assert_error(self.make_request("GET", path, access_token=self.bob_token),
                          403, "M_FORBIDDEN")
        # An unknown remote user looks like a stranger (no account-existence leak).
        self.assert_error(self.make_request("GET", f"{CLIENT}/presence/@x:remote.test/status",
                                            access_token=self.alice_token),
                          403, "M_FORBIDDEN")

    def test_remote_user_times_out_after_30_minutes_only(self) -> None:
        self.send_edus([{"edu_type": "m.presence", "content": {"push": [
            {"user_id": self.rita, "presence": "online", "currently_active": True}]}}])
        self.assertTrue(self.presence_of(self.rita).remote)
        # The local timers (offline after ~90 s without a sync) do not apply to her.
        self.reactor.advance(TIMEOUT_CHECK_START_DELAY_S)
        for _ in range(10 * 12):
            self.reactor.advance(5)
        self.pump()
        self.assertEqual(self.presence_of(self.rita).state, "online")
        since = self.sync(self.alice_token)["next_batch"]
        for _ in range(FEDERATION_TIMEOUT_MS // 5000):
            self.reactor.advance(5)
        self.pump()
        self.assertEqual(self.presence_of(self.rita).state, "offline")
        body = self.sync(self.alice_token, since)
        self.assertIn((self.rita, "offline"), [(e["sender"], e["content"]["presence"])
                                               for e in body["presence"]["events"]])
        # Her presence is never sent back to anyone (only alice's, who synced).
        sent = [p["user_id"] for c in self.edus("remote.test", "m.presence")
                for p in c["push"]]
        self.assertEqual(set(sent), {self.alice})

    @override_config({"presence": {"enabled": False}})
    def test_disabled_presence_neither_sends_nor_stores(self) -> None:
        self.set_presence(self.alice_token, self.alice, {"presence": "online"})
        self.assertEqual(self.edus("remote.test", "m.presence"), [])
        self.send_edus([{"edu_type": "m.presence", "content": {"push": [
            {"user_id": self.rita, "presence": "online"}]}}])
        self.assertIsNone(self.presence_of(self.rita))


class DeviceListEduTests(EduTestCase):
    def test_local_device_changes_are_sent(self) -> None:
        """New, renamed and deleted devices each go out as an m.device_list_update whose
        prev_id is the user's previous position."""
        lists = self.hs.get_datastores().device_lists
        before = self.get_success(lists.get_last_position_for_user(self.alice))
        self.login("alice", device_id="PHONE")
        self.pump()
        created = self.edus("remote.test", "m.device_list_update")
        self.assertEqual(created, [{"user_id": self.alice, "device_id": "PHONE",
                                    "stream_id": lists.get_current_position(),
                                    "prev_id": [before] if before else []}])
        self.assertEqual(self.edus("other.test", "m.device_list_update"), created)
        channel = self.make_request("PUT", f"{CLIENT}/devices/PHONE",
                                    {"display_name": "My phone"},
                                    access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.pump()
        renamed = self.edus("remote.test", "m.device_list_update")[-1]
        self.assertEqual(renamed["device_display_name"], "My phone")
        self.assertGreater(renamed["stream_id"], created[0]["stream_id"])
        self.get_success(self.hs.get_device_handler().delete_devices(self.alice, ["PHONE"]))
        self.pump()
        deleted = self.edus("remote.test", "m.device_list_update")[-1]
        self.assertEqual({k: deleted[k] for k in ("device_id", "deleted", "prev_id")},
                         {"device_id": "PHONE", "deleted": True,
                          "prev_id": [renamed["stream_id"]]})
        self.assertNotIn("device_display_name", deleted)

    def test_user_without_remote_room_mates_sends_nothing(self) -> None:
        self.login("bob", device_id="LAPTOP")
        self.pump()
        self.assertEqual(self.client.sent, [])

    def test_remote_update_reaches_room_mates_sync(self) -> None:
        lists = self.hs.get_datastores().device_lists
        alice_since = self.sync(self.alice_token)["next_batch"]
        bob_since = self.sync(self.bob_token)["next_batch"]
        before = lists.get_current_position()
        self.send_edus([
            {"edu_type": "m.device_list_update", "content": {  # not remote.test's user
                "user_id": "@eve:evil.test", "device_id": "X", "stream_id": 1,
                "prev_id": []}},
            {"edu_type": "m.device_list_update", "content": {  # shares no room
                "user_id": "@ghost:remote.test", "device_id": "X", "stream_id": 1,
                "prev_id": []}},
            {"edu_type": "m.device_list_update", "content": {  # malformed
                "user_id": self.rita, "device_id": "X", "stream_id": "1"}},
            {"edu_type": "m.device_list_update", "content": ["nope"]},
        ])
        self.assertEqual(lists.get_current_position(), before)
        self.send_edus([{"edu_type": "m.device_list_update", "content": {
            "user_id": self.rita, "device_id": "RITAPHONE", "stream_id": 7, "prev_id": [],
            "device_display_name": "Rita's phone"}}])
        self.assertEqual(lists.get_current_position(), before + 1)
        body = self.sync(self.alice_token, alice_since)
        self.assertEqual(body["device_lists"]["changed"], [self.rita])
        bob = self.sync(self.bob_token, bob_since)
        self.assertNotIn(self.rita, bob.get("device_lists", {}).get("changed", []))

    def test_remote_signing_key_update_marks_the_device_list_changed(self) -> None:
        """Cross-signing key changes reach room-mates as a device-list change."""
        lists = self.hs.get_datastores().device_lists
        since = self.sync(self.alice_token)["next_batch"]
        before = lists.get_current_position()
        self.send_edus([
            {"edu_type": "m.signing_key_update", "content": {"user_id": "@eve:evil.test"}},
            {"edu_type": "m.signing_key_update", "content": {"user_id": 5}},
        ])
        self.assertEqual(lists.get_current_position(), before)
        self.send_edus([{"edu_type": "m.signing_key_update", "content": {
            "user_id": self.rita, "master_key": {}, "self_signing_key": {}}}])
        body = self.sync(self.alice_token, since)
        self.assertEqual(body["device_lists"]["changed"], [self.rita])
