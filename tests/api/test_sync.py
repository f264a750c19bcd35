"""GET /sync: initial and incremental sync, long-poll, rooms sections, filters, errors."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import FakeChannel, HomeserverTestCase


class SyncHelpers(RoomHelpers):
    def sync_request(self, token: str, since: str | None = None,
                     filter: Any = None, timeout: int = 0, **params: Any) -> FakeChannel:
        query: dict[str, Any] = {"timeout": timeout, **params}
        if since is not None:
            query["since"] = since
        if filter is not None:
            query["filter"] = filter if isinstance(filter, str) else json.dumps(filter)
        return self.make_request("GET", f"{CLIENT}/sync?{urllib.parse.urlencode(query)}",
                                 access_token=token, await_result=timeout == 0)

    def sync(self, token: str, since: str | None = None, filter: Any = None,
             **params: Any) -> dict[str, Any]:
        channel = self.sync_request(token, since, filter, **params)
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body
        return body

    @staticmethod
    def timeline_ids(body: dict[str, Any], room_id: str) -> list[str]:
        room = body["rooms"]["join"].get(room_id)
        return [e["event_id"] for e in room["timeline"]["events"]] if room else []


class SyncTestCase(SyncHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat",
                                                          "name": "Sync room"})

    # -- initial sync --

    def test_initial_sync_has_room_timeline_and_state(self) -> None:
        first = self.send_message(self.alice_token, self.room_id, "one")
        second = self.send_message(self.alice_token, self.room_id, "two")
        body = self.sync(self.alice_token)
        self.assertTrue(body["next_batch"].startswith("s"))
        room = body["rooms"]["join"][self.room_id]
        ids = self.timeline_ids(body, self.room_id)
        self.assertEqual(ids[-2:], [first, second])
        self.assertFalse(room["timeline"]["limited"])
        # The whole room fits the default limit: creation events are in the timeline, so
        # the state section does not repeat them.
        state_types = {e["type"] for e in room["state"]["events"]}
        timeline_types = {e["type"] for e in room["timeline"]["events"]}
        self.assertIn("m.room.create", timeline_types)
        self.assertFalse(state_types & {"m.room.create"})
        self.assertEqual(room["unread_notifications"],
                         {"notification_count": 0, "highlight_count": 0})
        self.assertEqual(room["summary"], {})  # always sent; computed with lazy loading
        self.assertNotIn(self.room_id, body["rooms"]["invite"])
        for key in ("presence", "account_data", "to_device"):
            self.assertIn("events", body[key])

    def test_initial_sync_limited_timeline_has_state_and_prev_batch(self) -> None:
        sent = [self.send_message(self.alice_token, self.room_id, f"m{i}") for i in range(5)]
        body = self.sync(self.alice_token, filter={"room": {"timeline": {"limit": 3}}})
        room = body["rooms"]["join"][self.room_id]
        self.assertEqual(self.timeline_ids(body, self.room_id), sent[-3:])
        self.assertTrue(room["timeline"]["limited"])
        self.assertTrue(room["timeline"]["prev_batch"].startswith("s"))
        state = {(e["type"], e["state_key"]): e for e in room["state"]["events"]}
        self.assertIn(("m.room.create", ""), state)
        self.assertEqual(state[("m.room.name", "")]["content"], {"name": "Sync room"})
        self.assertIn(("m.room.member", self.alice), state)

    def test_non_member_sees_nothing_of_the_room(self) -> None:
        self.send_message(self.alice_token, self.room_id, "secret")
        body = self.sync(self.bob_token)
        self.assertEqual(body["rooms"]["join"], {})

    # -- incremental sync --

    def test_incremental_sync_returns_only_new_events(self) -> None:
        self.send_message(self.alice_token, self.room_id, "old")
        token = self.sync(self.alice_token)["next_batch"]
        new = self.send_message(self.alice_token, self.room_id, "new")
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.timeline_ids(body, self.room_id), [new])
        room = body["rooms"]["join"][self.room_id]
        self.assertFalse(room["timeline"]["limited"])
        self.assertEqual(room["state"]["events"], [])
        # Nothing new: the room is absent and the token does not go backwards.
        again = self.sync(self.alice_token, since=body["next_batch"])
        self.assertEqual(again["rooms"]["join"], {})

    def test_incremental_limited_sync_has_state_changes_from_the_gap(self) -> None:
        token = self.sync(self.alice_token)["next_batch"]
        topic = self.send_state(self.alice_token, self.room_id, "m.room.topic",
                                {"topic": "changed in the gap"})
        sent = [self.send_message(self.alice_token, self.room_id, f"m{i}") for i in range(4)]
        body = self.sync(self.alice_token, since=token,
                         filter={"room": {"timeline": {"limit": 2}}})
        room = body["rooms"]["join"][self.room_id]
        self.assertEqual(self.timeline_ids(body, self.room_id), sent[-2:])
        self.assertTrue(room["timeline"]["limited"])
        state_ids = [e["event_id"] for e in room["state"]["events"]]
        self.assertEqual(state_ids, [topic])

    def test_paging_back_from_prev_batch_fills_the_gap(self) -> None:
        """prev_batch of a limited timeline leads /messages to exactly the skipped events."""
        token = self.sync(self.alice_token)["next_batch"]
        sent = [self.send_message(self.alice_token, self.room_id, f"m{i}") for i in range(6)]
        body = self.sync(self.alice_token, since=token,
                         filter={"room": {"timeline": {"limit": 2}}})
        prev = body["rooms"]["join"][self.room_id]["timeline"]["prev_batch"]
        channel = self.make_request(
            "GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=b&limit=4&from={prev}",
            access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        older = [e["event_id"] for e in channel.json_body["chunk"]]
        self.assertEqual(older, list(reversed(sent[:4])))

    def test_every_event_delivered_exactly_once_across_reconnects(self) -> None:
        token = self.sync(self.alice_token)["next_batch"]
        sent: list[str] = []
        seen: list[str] = []
        for round_ in range(6):
            for i in range(round_ % 3 + 1):
                sent.append(self.send_message(self.alice_token, self.room_id, f"{round_}.{i}"))
            body = self.sync(self.alice_token, since=token,
                             filter={"room": {"timeline": {"limit": 50}}})
            seen.extend(self.timeline_ids(body, self.room_id))
            token = body["next_batch"]
        self.assertEqual(seen, sent)

    def test_transaction_id_only_for_the_sending_device(self) -> None:
        other_device = self.login("alice")
        event_id = self.send_message(self.alice_token, self.room_id, "echo", txn_id="tx-echo")
        mine = self.sync(self.alice_token)["rooms"]["join"][self.room_id]["timeline"]["events"]
        theirs = self.sync(other_device)["rooms"]["join"][self.room_id]["timeline"]["events"]
        by_id = {e["event_id"]: e for e in mine}
        self.assertEqual(by_id[event_id]["unsigned"]["transaction_id"], "tx-echo")
        other = {e["event_id"]: e for e in theirs}[event_id]
        self.assertNotIn("transaction_id", other["unsigned"])

    # -- long-poll --

    def test_long_poll_wakes_on_new_event(self) -> None:
        token = self.sync(self.alice_token)["next_batch"]
        channel = self.sync_request(self.alice_token, since=token, timeout=30000)
        self.assertIsNone(channel.response)
        self.reactor.advance(1)
        self.assertIsNone(channel.response)
        event_id = self.send_message(self.alice_token,
                                     self.room_id, "wake up")
        self.pump()
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.timeline_ids(channel.json_body, self.room_id), [event_id])

    def test_long_poll_wakes_when_invited_to_a_new_room(self) -> None:
        token = self.sync(self.bob_token)["next_batch"]
        channel = self.sync_request(self.bob_token, since=token, timeout=30000)
        self.invite(self.alice, self.room_id, self.bob)
        self.pump()
        self.assertEqual(channel.code, 200, channel.result)
        self.assertIn(self.room_id, channel.json_body["rooms"]["invite"])

    def test_long_poll_times_out_empty(self) -> None:
        token = self.sync(self.alice_token)["next_batch"]
        channel = self.sync_request(self.alice_token, since=token, timeout=5000)
        # An event in a room alice is not in does not wake her.
        other = self.create_room(self.bob_token)
        self.send_message(self.bob_token, other, "elsewhere")
        self.pump()
        self.assertIsNone(channel.response)
        self.reactor.advance(5)
        self.pump()
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["rooms"]["join"], {})

    def test_device_list_changes_of_room_mates(self) -> None:
        """A room-mate's new device wakes a long-poll and lands in device_lists.changed."""
        self.join(self.bob, self.room_id)
        token = self.sync(self.alice_token)["next_batch"]
        channel = self.sync_request(self.alice_token, since=token, timeout=30000)
        self.login("bob", device_id="NEWPHONE")
        self.pump()
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["device_lists"], {"changed": [self.bob], "left": []})
        token = channel.json_body["next_batch"]
        self.leave(self.bob, self.room_id)
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(body["device_lists"]["left"], [self.bob])

    # -- membership sections --

    def test_invite_join_leave_sections(self) -> None:
        token = self.sync(self.bob_token)["next_batch"]
        invite_id = self.invite(self.alice, self.room_id, self.bob)
        body = self.sync(self.bob_token, since=token)
        stripped = body["rooms"]["invite"][self.room_id]["invite_state"]["events"]
        by_type = {e["type"]: e for e in stripped}
        self.assertEqual(by_type["m.room.name"]["content"], {"name": "Sync room"})
        self.assertEqual(by_type["m.room.member"]["content"]["membership"], "invite")
        self.assertEqual(by_type["m.room.member"]["sender"], self.alice)
        self.assertNotIn("event_id", by_type["m.room.name"])
        self.assertNotEqual(invite_id, "")

        token = body["next_batch"]
        join_id = self.join(self.bob, self.room_id)
        body = self.sync(self.bob_token, since=token)
        room = body["rooms"]["join"][self.room_id]
        self.assertIn(join_id, self.timeline_ids(body, self.room_id))
        # A newly joined room comes with its state.
        all_types = {e["type"] for e in room["state"]["events"]} | {
            e["type"] for e in room["timeline"]["events"]}
        self.assertTrue({"m.room.create", "m.room.power_levels", "m.room.name"} <= all_types)
        self.assertEqual(body["rooms"]["invite"], {})

        token = body["next_batch"]
        leave_id = self.leave(self.bob, self.room_id)
        self.send_message(self.alice_token, self.room_id, "after bob left")
        body = self.sync(self.bob_token, since=token)
        left = body["rooms"]["leave"][self.room_id]
        self.assertEqual([e["event_id"] for e in left["timeline"]["events"]], [leave_id])
        self.assertNotIn(self.room_id, body["rooms"]["join"])

    def test_left_rooms_only_with_include_leave_on_initial_sync(self) -> None:
        self.join(self.bob, self.room_id)
        self.leave(self.bob, self.room_id)
        self.assertEqual(self.sync(self.bob_token)["rooms"]["leave"], {})
        body = self.sync(self.bob_token, filter={"room": {"include_leave": True}})
        self.assertIn(self.room_id, body["rooms"]["leave"])

    # -- filters and ignored users --

    def test_lazy_loading_members_sends_only_senders(self) -> None:
        self.join(self.bob, self.room_id)
        carol = self.register_user("carol")
        self.join(carol, self.room_id)
        for i in range(3):
            self.send_message(self.bob_token, self.room_id, f"b{i}")
        flt = {"room": {"timeline": {"limit": 2}, "state": {"lazy_load_members": True}}}
        body = self.sync(self.alice_token, filter=flt)
        room = body["rooms"]["join"][self.room_id]
        members = {e["state_key"] for e in room["state"]["events"]
                   if e["type"] == "m.room.member"}
        self.assertEqual(members, {self.bob, self.alice})
        self.assertEqual(room["summary"]["m.joined_member_count"], 3)

    def test_timeline_type_filter(self) -> None:
        self.send_state(self.alice_token, self.room_id, "m.room.topic", {"topic": "t"})
        msg = self.send_message(self.alice_token, self.room_id, "only me")
        body = self.sync(self.alice_token,
                         filter={"room": {"timeline": {"types": ["m.room.message"]}}})
        self.assertEqual(self.timeline_ids(body, self.room_id), [msg])

    def test_stored_filter_by_id(self) -> None:
        channel = self.make_request("POST", f"{CLIENT}/user/{self.alice}/filter",
                                    {"room": {"timeline": {"limit": 1}}},
                                    access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        filter_id = channel.json_body["filter_id"]
        last = self.send_message(self.alice_token, self.room_id, "last")
        body = self.sync(self.alice_token, filter=filter_id)
        self.assertEqual(self.timeline_ids(body, self.room_id), [last])
        self.assert_error(self.sync_request(self.alice_token, filter="999"), 404,
                          "M_NOT_FOUND")

    def test_ignored_users_are_filtered(self) -> None:
        self.join(self.bob, self.room_id)
        channel = self.make_request(
            "PUT", f"{CLIENT}/user/{self.alice}/account_data/m.ignored_user_list",
            {"ignored_users": {self.bob: {}}}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        token = self.sync(self.alice_token)["next_batch"]
        self.send_message(self.bob_token, self.room_id, "ignored")
        mine = self.send_message(self.alice_token, self.room_id, "mine")
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.timeline_ids(body, self.room_id), [mine])
        # Invites from ignored users are dropped.
        other = self.create_room(self.bob_token)
        self.invite(self.bob, other, self.alice)
        self.assertNotIn(other, self.sync(self.alice_token)["rooms"]["invite"])

    # -- errors --

    def test_bad_parameters(self) -> None:
        for since in ("garbage", "s1_x", "t1-2", "s" + "_1" * 20):
            self.assert_error(self.sync_request(self.alice_token, since=since), 400,
                              "M_INVALID_PARAM")
        self.assert_error(self.sync_request(self.alice_token, timeout="soon"), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.sync_request(self.alice_token, timeout=-5), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.sync_request(self.alice_token, set_presence="away"), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.sync_request(self.alice_token, filter="{not json"), 400,
                          "M_NOT_JSON")
        self.assert_error(self.sync_request(
            self.alice_token, filter={"room": {"timeline": {"limit": "ten"}}}), 400,
            "M_BAD_JSON")
        channel = self.make_request("GET", f"{CLIENT}/sync")
        self.assert_error(channel, 401, "M_MISSING_TOKEN")
