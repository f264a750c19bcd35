"""GET /sync end to end for the per-user and ephemeral streams: typing, receipts, read
markers, unread counts, account data and tags, push rules, presence, to-device; the
filters that apply to them; `full_state`. Each stream is checked on initial and
incremental sync, and for waking (only) the right long-polls.
"""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import CLIENT
from tests.api.test_sync import SyncHelpers
from tests.harness import FakeChannel, HomeserverTestCase

LONG_POLL_MS = 30_000


class StreamSyncHelpers(SyncHelpers):
    """Request helpers for the stream endpoints, each asserting success."""

    def ok(self, method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
        channel = self.make_request(method, f"{CLIENT}{path}", body, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        result: dict[str, Any] = channel.json_body
        return result

    def set_typing(self, token: str, user_id: str, room_id: str, typing: bool,
                   timeout: int | None = 10_000) -> None:
        body: dict[str, Any] = {"typing": typing}
        if typing and timeout is not None:
            body["timeout"] = timeout
        self.ok("PUT", f"/rooms/{room_id}/typing/{user_id}", token, body)

    def receipt(self, token: str, room_id: str, event_id: str,
                receipt_type: str = "m.read", body: Any = None) -> None:
        self.ok("POST", f"/rooms/{room_id}/receipt/{receipt_type}/{event_id}", token,
                body or {})

    def put_global_data(self, token: str, user_id: str, type: str,
                        content: dict[str, Any]) -> None:
        self.ok("PUT", f"/user/{user_id}/account_data/{type}", token, content)

    def put_room_data(self, token: str, user_id: str, room_id: str, type: str,
                      content: dict[str, Any]) -> None:
        self.ok("PUT", f"/user/{user_id}/rooms/{room_id}/account_data/{type}", token, content)

    def set_presence(self, token: str, user_id: str, presence: str,
                     status_msg: str | None = None) -> None:
        body: dict[str, Any] = {"presence": presence}
        if status_msg is not None:
            body["status_msg"] = status_msg
        self.ok("PUT", f"/presence/{user_id}/status", token, body)

    def send_to_device(self, token: str, messages: dict[str, Any], txn: str,
                       event_type: str = "com.example.test") -> None:
        self.ok("PUT", f"/sendToDevice/{event_type}/{txn}", token, {"messages": messages})

    def send_content(self, token: str, room_id: str, content: dict[str, Any]) -> str:
        self._stream_txn = getattr(self, "_stream_txn", 0) + 1
        return str(self.ok("PUT", f"/rooms/{room_id}/send/m.room.message/s{self._stream_txn}",
                           token, content)["event_id"])

    # -- reading sync answers --

    @staticmethod
    def joined(body: dict[str, Any], room_id: str) -> dict[str, Any]:
        room: dict[str, Any] = body["rooms"]["join"][room_id]
        return room

    def ephemeral(self, body: dict[str, Any], room_id: str) -> dict[str, dict[str, Any]]:
        """type -> event of the room's ephemeral section ({} if the room is absent)."""
        room = body["rooms"]["join"].get(room_id)
        if room is None:
            return {}
        events = room["ephemeral"]["events"]
        by_type = {e["type"]: e for e in events}
        self.assertEqual(len(by_type), len(events), "one event per ephemeral type")
        return by_type

    @staticmethod
    def room_data(body: dict[str, Any], room_id: str) -> dict[str, dict[str, Any]]:
        """type -> content of the room's account data ({} if the room is absent)."""
        room = body["rooms"]["join"].get(room_id)
        if room is None:
            return {}
        return {e["type"]: e["content"] for e in room["account_data"]["events"]}

    @staticmethod
    def global_data(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {e["type"]: e["content"] for e in body["account_data"]["events"]}

    @staticmethod
    def presence_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {e["sender"]: e["content"] for e in body["presence"]["events"]}

    # -- long-poll --

    def start_poll(self, token: str, since: str, filter: Any = None) -> FakeChannel:
        channel = self.sync_request(token, since=since, filter=filter, timeout=LONG_POLL_MS)
        self.pump()
        self.assertIsNone(channel.response, "the long-poll answered before any change")
        return channel

    def assert_woken(self, channel: FakeChannel) -> dict[str, Any]:
        self.pump()
        self.assertIsNotNone(channel.response, "the long-poll did not wake")
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body
        return body

    def assert_still_waiting(self, channel: FakeChannel) -> None:
        self.pump()
        if channel.response is not None:
            self.fail(f"the long-poll woke: {channel.json_body}")
        # Let it time out so the test leaves no waiter behind, and check it is empty.
        self.reactor.advance(LONG_POLL_MS / 1000)
        self.pump()
        self.assertEqual(channel.code, 200, channel.result)


class SyncStreamsTestCase(StreamSyncHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice", device_id="ALICE1")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob", device_id="BOB1")
        self.carol = self.register_user("carol")
        self.carol_token = self.login("carol", device_id="CAROL1")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, self.room_id)

    # ---------------------------------------------------------------- typing

    def test_typing_initial_incremental_stop_and_expiry(self) -> None:
        token = self.sync(self.alice_token)["next_batch"]
        self.assertNotIn("m.typing", self.ephemeral(self.sync(self.alice_token), self.room_id))

        self.set_typing(self.bob_token, self.bob, self.room_id, True, timeout=5_000)
        initial = self.sync(self.alice_token)
        self.assertEqual(self.ephemeral(initial, self.room_id)["m.typing"]["content"],
                         {"user_ids": [self.bob]})
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.ephemeral(body, self.room_id)["m.typing"]["content"],
                         {"user_ids": [self.bob]})
        token = body["next_batch"]
        # Nothing changed: no typing event, no room.
        idle = self.sync(self.alice_token, since=token)
        self.assertNotIn(self.room_id, idle["rooms"]["join"])

        # Expiry: the timeout passes, the next sync says nobody is typing.
        self.reactor.advance(6)
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.ephemeral(body, self.room_id)["m.typing"]["content"],
                         {"user_ids": []})
        token = body["next_batch"]

        # Explicit stop.
        self.set_typing(self.bob_token, self.bob, self.room_id, True)
        self.set_typing(self.alice_token, self.alice, self.room_id, True)
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.ephemeral(body, self.room_id)["m.typing"]["content"],
                         {"user_ids": sorted([self.alice, self.bob])})
        token = body["next_batch"]
        self.set_typing(self.bob_token, self.bob, self.room_id, False)
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.ephemeral(body, self.room_id)["m.typing"]["content"],
                         {"user_ids": [self.alice]})
        # An initial sync after everyone stopped shows no typing event.
        self.set_typing(self.alice_token, self.alice, self.room_id, False)
        self.assertNotIn("m.typing", self.ephemeral(self.sync(self.alice_token), self.room_id))

    def test_typing_wakes_room_members_only(self) -> None:
        other = self.create_room(self.carol_token)
        token = self.sync(self.alice_token)["next_batch"]
        poll = self.start_poll(self.alice_token, token)
        # Typing in a room alice is not in does not wake her.
        self.set_typing(self.carol_token, self.carol, other, True)
        self.pump()
        self.assertIsNone(poll.response)
        self.set_typing(self.bob_token, self.bob, self.room_id, True)
        body = self.assert_woken(poll)
        self.assertEqual(self.ephemeral(body, self.room_id)["m.typing"]["content"],
                         {"user_ids": [self.bob]})
        self.assertNotIn(other, body["rooms"]["join"])

        # Expiry also wakes a waiting long-poll.
        poll = self.start_poll(self.alice_token, body["next_batch"])
        self.reactor.advance(11)
        body = self.assert_woken(poll)
        self.assertEqual(self.ephemeral(body, self.room_id)["m.typing"]["content"],
                         {"user_ids": []})

    # ---------------------------------------------------------------- receipts

    def test_receipts_initial_and_incremental(self) -> None:
        first = self.send_message(self.alice_token, self.room_id, "one")
        token = self.sync(self.alice_token)["next_batch"]
        self.receipt(self.bob_token, self.room_id, first)
        body = self.sync(self.alice_token, since=token)
        content = self.ephemeral(body, self.room_id)["m.receipt"]["content"]
        self.assertEqual(list(content), [first])
        self.assertEqual(list(content[first]), ["m.read"])
        self.assertEqual(list(content[first]["m.read"]), [self.bob])
        self.assertIsInstance(content[first]["m.read"][self.bob]["ts"], int)

        # Idle incremental sync: the receipt is not sent again.
        token = body["next_batch"]
        self.assertNotIn("m.receipt",
                         self.ephemeral(self.sync(self.alice_token, since=token), self.room_id))

        # Moving on: the incremental sync has only the new position; initial sync has all.
        second = self.send_message(self.alice_token, self.room_id, "two")
        token = self.sync(self.alice_token, since=token)["next_batch"]
        self.receipt(self.bob_token, self.room_id, second, body={"thread_id": "main"})
        body = self.sync(self.alice_token, since=token)
        content = self.ephemeral(body, self.room_id)["m.receipt"]["content"]
        self.assertEqual(list(content), [second])
        self.assertEqual(content[second]["m.read"][self.bob]["thread_id"], "main")
        initial = self.sync(self.alice_token)
        content = self.ephemeral(initial, self.room_id)["m.receipt"]["content"]
        self.assertIn(self.bob, content[second]["m.read"])

    def test_private_receipt_only_for_its_owner(self) -> None:
        event_id = self.send_message(self.alice_token, self.room_id, "read me")
        # bob syncs first: his coming online must not be what wakes alice below.
        bob_token = self.sync(self.bob_token)["next_batch"]
        alice_token = self.sync(self.alice_token)["next_batch"]
        poll = self.start_poll(self.alice_token, alice_token)
        self.receipt(self.bob_token, self.room_id, event_id, "m.read.private")
        # Nobody else is told: alice's long-poll keeps waiting.
        self.pump()
        self.assertIsNone(poll.response)
        mine = self.sync(self.bob_token, since=bob_token)
        content = self.ephemeral(mine, self.room_id)["m.receipt"]["content"]
        self.assertIn(self.bob, content[event_id]["m.read.private"])
        self.assertNotIn("m.read", content[event_id])
        for body in (self.sync(self.alice_token, since=alice_token),
                     self.sync(self.alice_token)):
            self.assertNotIn("m.receipt", self.ephemeral(body, self.room_id))
        self.assertIn("m.read.private", self.ephemeral(
            self.sync(self.bob_token), self.room_id)["m.receipt"]["content"][event_id])
        self.assert_still_waiting(poll)
        self.assertNotIn(self.room_id, poll.json_body["rooms"]["join"])

    def test_public_receipt_wakes_the_room(self) -> None:
        event_id = self.send_message(self.alice_token, self.room_id, "read me")
        token = self.sync(self.alice_token)["next_batch"]
        poll = self.start_poll(self.alice_token, token)
        self.receipt(self.bob_token, self.room_id, event_id)
        body = self.assert_woken(poll)
        self.assertIn(self.bob, self.ephemeral(body, self.room_id)["m.receipt"]["content"]
                      [event_id]["m.read"])

    def test_fully_read_marker_in_room_account_data(self) -> None:
        first = self.send_message(self.bob_token, self.room_id, "one")
        token = self.sync(self.alice_token)["next_batch"]
        poll = self.start_poll(self.alice_token, token)
        self.ok("POST", f"/rooms/{self.room_id}/read_markers", self.alice_token,
                {"m.fully_read": first, "m.read": first})
        body = self.assert_woken(poll)
        self.assertEqual(self.room_data(body, self.room_id)["m.fully_read"],
                         {"event_id": first})
        # m.read came with it, as a receipt, not as account data.
        self.assertIn(self.alice, self.ephemeral(body, self.room_id)["m.receipt"]["content"]
                      [first]["m.read"])
        self.assertNotIn("m.fully_read", self.global_data(body))
        # Initial sync has it too; the other member never sees it.
        self.assertEqual(self.room_data(self.sync(self.alice_token), self.room_id)
                         ["m.fully_read"], {"event_id": first})
        self.assertNotIn("m.fully_read",
                         self.room_data(self.sync(self.bob_token), self.room_id))
        # The receipt endpoint's m.fully_read moves it too.
        token = body["next_batch"]
        second = self.send_message(self.bob_token, self.room_id, "two")
        self.receipt(self.alice_token, self.room_id, second, "m.fully_read")
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.room_data(body, self.room_id)["m.fully_read"],
                         {"event_id": second})

    # ---------------------------------------------------------------- unread counts

    def counts(self, body: dict[str, Any], room_id: str | None = None) -> tuple[int, int]:
        unread = self.joined(body, room_id or self.room_id)["unread_notifications"]
        return unread["notification_count"], unread["highlight_count"]

    def test_unread_counts_grow_highlight_and_reset_on_read(self) -> None:
        token = self.sync(self.alice_token)["next_batch"]
        # Her own messages never count.
        self.send_message(self.alice_token, self.room_id, "mine")
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.counts(body), (0, 0))

        self.send_message(self.bob_token, self.room_id, "one")
        body = self.sync(self.alice_token, since=body["next_batch"])
        self.assertEqual(self.counts(body), (1, 0))
        mention = self.send_content(self.bob_token, self.room_id, {
            "msgtype": "m.text", "body": "alice: look",
            "m.mentions": {"user_ids": [self.alice]}})
        last = self.send_message(self.bob_token, self.room_id, "three")
        body = self.sync(self.alice_token, since=body["next_batch"])
        self.assertEqual(self.counts(body), (3, 1))
        self.assertEqual(self.counts(self.sync(self.alice_token)), (3, 1))
        # bob's own messages do not count for him: only alice's one does.
        self.assertEqual(self.counts(self.sync(self.bob_token)), (1, 0))

        # A receipt on the mention: what comes after it still counts.
        token = body["next_batch"]
        self.receipt(self.alice_token, self.room_id, mention)
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.counts(body), (1, 0))
        # Reading the last event resets; the room is sent although only the receipt moved.
        self.receipt(self.alice_token, self.room_id, last)
        body = self.sync(self.alice_token, since=body["next_batch"])
        self.assertEqual(self.counts(body), (0, 0))
        self.assertEqual(self.counts(self.sync(self.alice_token)), (0, 0))

    def test_private_receipt_also_resets_counts(self) -> None:
        last = self.send_message(self.bob_token, self.room_id, "one")
        self.assertEqual(self.counts(self.sync(self.alice_token)), (1, 0))
        self.receipt(self.alice_token, self.room_id, last, "m.read.private")
        self.assertEqual(self.counts(self.sync(self.alice_token)), (0, 0))

    def send_in_thread(self, token: str, root: str, body: str, **extra: Any) -> str:
        return self.send_content(token, self.room_id, {
            "msgtype": "m.text", "body": body, **extra,
            "m.relates_to": {"rel_type": "m.thread", "event_id": root}})

    def thread_counts(self, body: dict[str, Any], root: str) -> tuple[int, int]:
        threads = self.joined(body, self.room_id)["unread_thread_notifications"]
        counts = threads.get(root, {"notification_count": 0, "highlight_count": 0})
        return counts["notification_count"], counts["highlight_count"]

    THREADED = {"room": {"timeline": {"unread_thread_notifications": True}}}

    def test_unread_thread_notifications_with_filter_flag(self) -> None:
        root = self.send_message(self.bob_token, self.room_id, "root")
        for i in range(2):
            self.send_in_thread(self.bob_token, root, f"in thread {i}")
        self.send_in_thread(self.bob_token, root, "hey alice",
                            **{"m.mentions": {"user_ids": [self.alice]}})
        # Without the flag: one count for the whole room, no per-thread section.
        plain = self.sync(self.alice_token)
        self.assertEqual(self.counts(plain), (4, 1))
        self.assertNotIn("unread_thread_notifications", self.joined(plain, self.room_id))
        # With it: the room count is the main timeline only, threads apart.
        threaded = self.sync(self.alice_token, filter=self.THREADED)
        self.assertEqual(self.counts(threaded), (1, 0))
        self.assertEqual(self.joined(threaded, self.room_id)["unread_thread_notifications"],
                         {root: {"notification_count": 3, "highlight_count": 1}})
        # Incremental: a new thread message shows up in the thread's count.
        token = threaded["next_batch"]
        self.send_in_thread(self.bob_token, root, "more")
        body = self.sync(self.alice_token, since=token, filter=self.THREADED)
        self.assertEqual(self.thread_counts(body, root), (4, 1))
        self.assertEqual(self.counts(body), (1, 0))
        # An unthreaded receipt on the newest event clears everything.
        last = self.send_message(self.bob_token, self.room_id, "main again")
        self.receipt(self.alice_token, self.room_id, last)
        body = self.sync(self.alice_token, since=body["next_batch"], filter=self.THREADED)
        self.assertEqual(self.counts(body), (0, 0))
        self.assertEqual(self.thread_counts(body, root), (0, 0))

    def test_threaded_receipt_clears_only_its_thread(self) -> None:
        """A threaded receipt marks only its thread read (spec, threaded receipts)."""
        root = self.send_message(self.bob_token, self.room_id, "root")
        self.send_in_thread(self.bob_token, root, "one")
        self.send_in_thread(self.bob_token, root, "hey alice",
                            **{"m.mentions": {"user_ids": [self.alice]}})
        last_in_thread = self.send_in_thread(self.bob_token, root, "three")
        token = self.sync(self.alice_token, filter=self.THREADED)["next_batch"]
        self.receipt(self.alice_token, self.room_id, last_in_thread, body={"thread_id": root})
        body = self.sync(self.alice_token, since=token, filter=self.THREADED)
        self.assertEqual(self.counts(body), (1, 0))  # the root, in the main timeline
        self.assertEqual(self.thread_counts(body, root), (0, 0))

    def test_main_receipt_leaves_thread_counts(self) -> None:
        """A "main" receipt marks only the main timeline read, not the threads."""
        root = self.send_message(self.bob_token, self.room_id, "root")
        self.send_in_thread(self.bob_token, root, "one")
        self.send_in_thread(self.bob_token, root, "two")
        last_main = self.send_message(self.bob_token, self.room_id, "main")
        self.receipt(self.alice_token, self.room_id, last_main, body={"thread_id": "main"})
        body = self.sync(self.alice_token, filter=self.THREADED)
        self.assertEqual(self.counts(body), (0, 0))
        self.assertEqual(self.thread_counts(body, root), (2, 0))

    # ---------------------------------------------------------------- account data

    def test_account_data_initial_and_incremental(self) -> None:
        other = self.create_room(self.alice_token)
        self.put_global_data(self.alice_token, self.alice, "com.example.a", {"a": 1})
        self.put_room_data(self.alice_token, self.alice, self.room_id, "com.example.r",
                           {"r": 1})
        self.ok("PUT", f"/user/{self.alice}/rooms/{self.room_id}/tags/u.work",
                self.alice_token, {"order": 0.5})
        body = self.sync(self.alice_token)
        self.assertEqual(self.global_data(body)["com.example.a"], {"a": 1})
        self.assertNotIn("com.example.r", self.global_data(body))
        self.assertEqual(self.room_data(body, self.room_id)["com.example.r"], {"r": 1})
        self.assertEqual(self.room_data(body, self.room_id)["m.tag"],
                         {"tags": {"u.work": {"order": 0.5}}})
        self.assertEqual(self.room_data(body, other), {})
        # bob sees none of it.
        bob = self.sync(self.bob_token)
        self.assertNotIn("com.example.a", self.global_data(bob))
        self.assertEqual(self.room_data(bob, self.room_id), {})

        # Idle incremental: nothing is resent, the room is absent.
        token = body["next_batch"]
        idle = self.sync(self.alice_token, since=token)
        self.assertEqual(idle["account_data"]["events"], [])
        self.assertNotIn(self.room_id, idle["rooms"]["join"])

        # Only what changed, and only in the room it changed in.
        self.put_global_data(self.alice_token, self.alice, "com.example.b", {"b": 2})
        self.put_room_data(self.alice_token, self.alice, other, "com.example.r", {"r": 2})
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.global_data(body), {"com.example.b": {"b": 2}})
        self.assertNotIn(self.room_id, body["rooms"]["join"])
        self.assertEqual(self.room_data(body, other), {"com.example.r": {"r": 2}})

        # Overwriting sends the new content; a tag change sends all the room's tags.
        token = body["next_batch"]
        self.put_global_data(self.alice_token, self.alice, "com.example.a", {"a": 3})
        self.ok("PUT", f"/user/{self.alice}/rooms/{self.room_id}/tags/m.favourite",
                self.alice_token, {})
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.global_data(body), {"com.example.a": {"a": 3}})
        self.assertEqual(self.room_data(body, self.room_id),
                         {"m.tag": {"tags": {"u.work": {"order": 0.5}, "m.favourite": {}}}})

        # Removing the last tags: an empty m.tag tells the client.
        token = body["next_batch"]
        for tag in ("u.work", "m.favourite"):
            self.ok("DELETE", f"/user/{self.alice}/rooms/{self.room_id}/tags/{tag}",
                    self.alice_token)
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.room_data(body, self.room_id), {"m.tag": {"tags": {}}})

    def test_account_data_wakes_only_its_owner(self) -> None:
        token = self.sync(self.alice_token)["next_batch"]
        poll = self.start_poll(self.alice_token, token)
        self.put_global_data(self.bob_token, self.bob, "com.example.bob", {"x": 1})
        self.put_room_data(self.bob_token, self.bob, self.room_id, "com.example.bob", {})
        self.ok("PUT", f"/user/{self.bob}/rooms/{self.room_id}/tags/u.bob", self.bob_token, {})
        self.pump()
        self.assertIsNone(poll.response)
        self.put_global_data(self.alice_token, self.alice, "com.example.mine", {"y": 2})
        body = self.assert_woken(poll)
        self.assertEqual(self.global_data(body), {"com.example.mine": {"y": 2}})
        self.assertEqual(body["rooms"]["join"], {})

        # Room account data and tags wake too.
        poll = self.start_poll(self.alice_token, body["next_batch"])
        self.ok("PUT", f"/user/{self.alice}/rooms/{self.room_id}/tags/u.t", self.alice_token, {})
        body = self.assert_woken(poll)
        self.assertEqual(self.room_data(body, self.room_id), {"m.tag": {"tags": {"u.t": {}}}})

    def test_push_rules_on_initial_and_after_change_only(self) -> None:
        body = self.sync(self.alice_token)
        rules = self.global_data(body)["m.push_rules"]
        self.assertIn("global", rules)
        master = [r for r in rules["global"]["override"] if r["rule_id"] == ".m.rule.master"]
        self.assertEqual([r["enabled"] for r in master], [False])

        # Idle incremental sync (even with other changes): no m.push_rules.
        token = body["next_batch"]
        self.put_global_data(self.alice_token, self.alice, "com.example.a", {})
        body = self.sync(self.alice_token, since=token)
        self.assertNotIn("m.push_rules", self.global_data(body))
        token = body["next_batch"]
        # Another user's rule change does not wake alice nor reach her.
        poll = self.start_poll(self.alice_token, token)
        self.ok("PUT", "/pushrules/global/override/.m.rule.master/enabled", self.bob_token,
                {"enabled": True})
        self.pump()
        self.assertIsNone(poll.response)
        self.ok("PUT", "/pushrules/global/override/.m.rule.master/enabled", self.alice_token,
                {"enabled": True})
        body = self.assert_woken(poll)
        rules = self.global_data(body)["m.push_rules"]
        master = [r for r in rules["global"]["override"] if r["rule_id"] == ".m.rule.master"]
        self.assertEqual([r["enabled"] for r in master], [True])
        # Exactly one m.push_rules event.
        self.assertEqual([e["type"] for e in body["account_data"]["events"]],
                         ["m.push_rules"])
        again = self.sync(self.alice_token, since=body["next_batch"])
        self.assertNotIn("m.push_rules", self.global_data(again))

    # ---------------------------------------------------------------- presence

    def test_presence_of_room_mates_not_strangers(self) -> None:
        token = self.sync(self.alice_token)["next_batch"]
        poll = self.start_poll(self.alice_token, token)
        # carol shares no room with alice: no wake, nothing in the answer.
        self.set_presence(self.carol_token, self.carol, "online", "stranger")
        self.pump()
        self.assertIsNone(poll.response)
        self.set_presence(self.bob_token, self.bob, "online", "here")
        body = self.assert_woken(poll)
        presence = self.presence_of(body)
        self.assertEqual(presence[self.bob]["presence"], "online")
        self.assertEqual(presence[self.bob]["status_msg"], "here")
        self.assertNotIn(self.carol, presence)
        self.assertTrue(all(e["type"] == "m.presence" for e in body["presence"]["events"]))

        # Initial sync: the room-mate's current presence, never the stranger's.
        initial = self.presence_of(self.sync(self.alice_token))
        self.assertEqual(initial[self.bob]["status_msg"], "here")
        self.assertNotIn(self.carol, initial)

        # Incremental: a change is sent once.
        token = body["next_batch"]
        self.set_presence(self.bob_token, self.bob, "unavailable", "away")
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.presence_of(body)[self.bob]["presence"], "unavailable")
        again = self.sync(self.alice_token, since=body["next_batch"])
        self.assertNotIn(self.bob, self.presence_of(again))

    # ---------------------------------------------------------------- to-device

    def test_to_device_target_device_only_until_acknowledged(self) -> None:
        other_device = self.login("alice", device_id="ALICE2")
        a1 = self.sync(self.alice_token)["next_batch"]
        a2 = self.sync(other_device)["next_batch"]
        poll = self.start_poll(other_device, a2)
        self.send_to_device(self.bob_token, {self.alice: {"ALICE1": {"n": 1}}}, "t1")
        # The other device's long-poll is for the same user: it may look, but it has
        # nothing to answer and keeps waiting.
        self.pump()
        self.assertIsNone(poll.response)

        body = self.sync(self.alice_token, since=a1)
        self.assertEqual(body["to_device"]["events"],
                         [{"type": "com.example.test", "sender": self.bob,
                           "content": {"n": 1}}])
        # Not acknowledged yet: the same `since` gets it again.
        again = self.sync(self.alice_token, since=a1)
        self.assertEqual(again["to_device"]["events"], body["to_device"]["events"])
        # Syncing from the next token acknowledges it: gone, even for the old token.
        self.assertEqual(self.sync(self.alice_token, since=again["next_batch"])
                         ["to_device"]["events"], [])
        self.assertEqual(self.sync(self.alice_token, since=a1)["to_device"]["events"], [])
        self.assertEqual(self.sync(self.alice_token)["to_device"]["events"], [])
        self.assert_still_waiting(poll)
        self.assertEqual(poll.json_body["to_device"]["events"], [])

    def test_to_device_wakes_target_not_others(self) -> None:
        token = self.sync(self.alice_token)["next_batch"]
        poll = self.start_poll(self.alice_token, token)
        self.send_to_device(self.bob_token, {self.carol: {"*": {"for": "carol"}}}, "t1")
        self.pump()
        self.assertIsNone(poll.response)
        self.send_to_device(self.bob_token, {self.alice: {"*": {"for": "alice"}}}, "t2")
        body = self.assert_woken(poll)
        self.assertEqual([e["content"] for e in body["to_device"]["events"]],
                         [{"for": "alice"}])
        self.assertEqual(body["rooms"]["join"], {})
        carol = self.sync(self.carol_token)
        self.assertEqual([e["content"] for e in carol["to_device"]["events"]],
                         [{"for": "carol"}])

    def test_to_device_initial_sync_delivers_queued_messages(self) -> None:
        self.send_to_device(self.bob_token, {self.alice: {"ALICE1": {"n": 1}}}, "t1")
        body = self.sync(self.alice_token)
        self.assertEqual([e["content"] for e in body["to_device"]["events"]], [{"n": 1}])

    def test_more_than_a_batch_of_to_device_messages(self) -> None:
        total = 230
        for i in range(total):
            self.send_to_device(self.bob_token, {self.alice: {"ALICE1": {"n": i}}}, f"t{i}")
        received: list[int] = []
        since: str | None = None
        for _ in range(10):
            body = self.sync(self.alice_token, since=since)
            events = body["to_device"]["events"]
            self.assertLessEqual(len(events), 100)
            if not events:
                break
            received.extend(e["content"]["n"] for e in events)
            since = body["next_batch"]
        self.assertEqual(received, list(range(total)))
        # A message sent after the backlog arrives exactly once as well.
        self.send_to_device(self.bob_token, {self.alice: {"ALICE1": {"n": "late"}}}, "late")
        body = self.sync(self.alice_token, since=since)
        self.assertEqual([e["content"]["n"] for e in body["to_device"]["events"]], ["late"])
        body = self.sync(self.alice_token, since=body["next_batch"])
        self.assertEqual(body["to_device"]["events"], [])

    def test_to_device_backlog_repeated_for_a_reused_token(self) -> None:
        """A client that lost an answer retries with its old token: the same batch, none
        lost."""
        for i in range(150):
            self.send_to_device(self.bob_token, {self.alice: {"ALICE1": {"n": i}}}, f"t{i}")
        first = self.sync(self.alice_token)
        self.assertEqual(len(first["to_device"]["events"]), 100)
        second = self.sync(self.alice_token, since=first["next_batch"])
        retried = self.sync(self.alice_token, since=first["next_batch"])
        self.assertEqual(retried["to_device"]["events"], second["to_device"]["events"])
        self.assertEqual([e["content"]["n"] for e in second["to_device"]["events"]],
                         list(range(100, 150)))

    # ---------------------------------------------------------------- filters

    def test_presence_filter_excludes(self) -> None:
        self.set_presence(self.bob_token, self.bob, "online", "here")
        self.assertIn(self.bob, self.presence_of(self.sync(self.alice_token)))
        for flt in ({"presence": {"types": []}},
                    {"presence": {"not_types": ["m.presence"]}},
                    {"presence": {"not_senders": [self.bob, self.alice]}}):
            self.assertEqual(self.sync(self.alice_token, filter=flt)["presence"]["events"], [],
                             flt)
        only_bob = self.sync(self.alice_token, filter={"presence": {"senders": [self.bob]}})
        self.assertEqual(list(self.presence_of(only_bob)), [self.bob])

    def test_presence_filtered_out_does_not_end_long_poll(self) -> None:
        flt = {"presence": {"types": []}}
        token = self.sync(self.alice_token, filter=flt)["next_batch"]
        poll = self.start_poll(self.alice_token, token, filter=flt)
        self.set_presence(self.bob_token, self.bob, "online", "filtered")
        self.assert_still_waiting(poll)
        self.assertEqual(poll.json_body["presence"]["events"], [])

    def test_global_account_data_filter(self) -> None:
        self.put_global_data(self.alice_token, self.alice, "com.example.keep", {"k": 1})
        self.put_global_data(self.alice_token, self.alice, "org.other.drop", {"d": 1})
        body = self.sync(self.alice_token,
                         filter={"account_data": {"types": ["com.example.*"]}})
        self.assertEqual(self.global_data(body), {"com.example.keep": {"k": 1}})
        body = self.sync(self.alice_token,
                         filter={"account_data": {"not_types": ["m.push_rules"]}})
        self.assertEqual(set(self.global_data(body)), {"com.example.keep", "org.other.drop"})
        body = self.sync(self.alice_token, filter={"account_data": {"types": []}})
        self.assertEqual(body["account_data"]["events"], [])
        # The global filter does not touch room account data.
        self.put_room_data(self.alice_token, self.alice, self.room_id, "org.other.drop", {})
        body = self.sync(self.alice_token, filter={"account_data": {"types": []}})
        self.assertIn("org.other.drop", self.room_data(body, self.room_id))

    def test_room_account_data_filter(self) -> None:
        self.put_room_data(self.alice_token, self.alice, self.room_id, "com.example.r", {})
        self.ok("PUT", f"/user/{self.alice}/rooms/{self.room_id}/tags/u.t", self.alice_token, {})
        self.put_global_data(self.alice_token, self.alice, "com.example.g", {})
        body = self.sync(self.alice_token, filter={"room": {"account_data": {
            "types": ["m.tag"]}}})
        self.assertEqual(set(self.room_data(body, self.room_id)), {"m.tag"})
        self.assertIn("com.example.g", self.global_data(body))
        body = self.sync(self.alice_token, filter={"room": {"account_data": {
            "not_types": ["m.tag"]}}})
        self.assertEqual(set(self.room_data(body, self.room_id)), {"com.example.r"})

    def test_room_ephemeral_filter(self) -> None:
        event_id = self.send_message(self.alice_token, self.room_id, "hi")
        self.receipt(self.bob_token, self.room_id, event_id)
        self.set_typing(self.bob_token, self.bob, self.room_id, True)
        body = self.sync(self.alice_token)
        self.assertEqual(set(self.ephemeral(body, self.room_id)), {"m.typing", "m.receipt"})
        body = self.sync(self.alice_token, filter={"room": {"ephemeral": {
            "not_types": ["m.typing"]}}})
        self.assertEqual(set(self.ephemeral(body, self.room_id)), {"m.receipt"})
        body = self.sync(self.alice_token, filter={"room": {"ephemeral": {"types": []}}})
        self.assertEqual(self.ephemeral(body, self.room_id), {})
        # The timeline is not affected by the ephemeral filter.
        self.assertIn(event_id, self.timeline_ids(body, self.room_id))

    def test_filtered_out_ephemeral_does_not_end_long_poll(self) -> None:
        """Ephemeral changes the filter hides do not end a long-poll (as Synapse)."""
        flt = {"room": {"ephemeral": {"not_types": ["m.typing"]}}}
        token = self.sync(self.alice_token, filter=flt)["next_batch"]
        poll = self.start_poll(self.alice_token, token, filter=flt)
        self.set_typing(self.bob_token, self.bob, self.room_id, True)
        self.pump()
        self.assertIsNone(poll.response)
        self.reactor.advance(LONG_POLL_MS / 1000)
        self.pump()
        self.assertNotIn(self.room_id, poll.json_body["rooms"]["join"])

    def test_rooms_and_not_rooms_apply_to_streams(self) -> None:
        other = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, other)
        token = self.sync(self.alice_token)["next_batch"]
        for room_id in (self.room_id, other):
            # (long enough not to expire during the long-poll below)
            self.set_typing(self.bob_token, self.bob, room_id, True, timeout=100_000)
            self.ok("PUT", f"/user/{self.alice}/rooms/{room_id}/tags/u.t", self.alice_token,
                    {})
            self.send_message(self.bob_token, room_id, "hello")
        for flt in ({"room": {"rooms": [other]}}, {"room": {"not_rooms": [self.room_id]}}):
            for since in (None, token):
                body = self.sync(self.alice_token, since=since, filter=flt)
                self.assertEqual(list(body["rooms"]["join"]), [other], (flt, since))
                self.assertIn("m.typing", self.ephemeral(body, other))
                self.assertIn("m.tag", self.room_data(body, other))
                self.assertEqual(self.counts(body, other), (1, 0))
        # A change in the excluded room does not end a long-poll filtered to the other.
        flt = {"room": {"rooms": [other]}}
        token = self.sync(self.alice_token, filter=flt)["next_batch"]
        poll = self.start_poll(self.alice_token, token, filter=flt)
        self.set_typing(self.bob_token, self.bob, self.room_id, False)
        self.send_message(self.bob_token, self.room_id, "excluded")
        self.assert_still_waiting(poll)
        self.assertEqual(poll.json_body["rooms"]["join"], {})

    def test_event_fields(self) -> None:
        event_id = self.send_message(self.bob_token, self.room_id, "fields")
        flt = {"event_fields": ["type", "content.body", "event_id"],
               "room": {"timeline": {"limit": 1}}}
        body = self.sync(self.alice_token, filter=flt)
        room = self.joined(body, self.room_id)
        self.assertEqual(room["timeline"]["events"],
                         [{"type": "m.room.message", "content": {"body": "fields"},
                           "event_id": event_id}])
        # State events are cut down the same way.
        self.assertTrue(room["state"]["events"])
        for event in room["state"]["events"]:
            self.assertLessEqual(set(event), {"type", "content", "event_id"})
            self.assertNotIn("sender", event)

    def test_event_format_federation(self) -> None:
        event_id = self.send_message(self.alice_token, self.room_id, "pdu", txn_id="txfed")
        body = self.sync(self.alice_token, filter={"event_format": "federation",
                                                   "room": {"timeline": {"limit": 1}}})
        [event] = self.joined(body, self.room_id)["timeline"]["events"]
        # The federation format: the PDU as signed, with its graph and hashes.
        for key in ("prev_events", "auth_events", "hashes", "signatures", "depth"):
            self.assertIn(key, event)
        self.assertEqual(event["content"]["body"], "pdu")
        self.assertEqual(event["room_id"], self.room_id)
        client = self.sync(self.alice_token, filter={"room": {"timeline": {"limit": 1}}})
        [client_event] = self.joined(client, self.room_id)["timeline"]["events"]
        self.assertEqual(client_event["event_id"], event_id)
        self.assertNotIn("prev_events", client_event)
        self.assertNotIn("hashes", client_event)

    # ---------------------------------------------------------------- full_state

    def test_full_state_resends_state_on_incremental_sync(self) -> None:
        self.send_state(self.alice_token, self.room_id, "m.room.topic", {"topic": "t"})
        # Enough messages that the room's state events are not in the timeline.
        for i in range(12):
            self.send_message(self.bob_token, self.room_id, f"m{i}")
        token = self.sync(self.alice_token)["next_batch"]
        idle = self.sync(self.alice_token, since=token)
        self.assertNotIn(self.room_id, idle["rooms"]["join"])
        body = self.sync(self.alice_token, since=token, full_state="true")
        room = self.joined(body, self.room_id)
        state = {(e["type"], e["state_key"]) for e in room["state"]["events"]}
        self.assertTrue({("m.room.create", ""), ("m.room.power_levels", ""),
                         ("m.room.join_rules", ""), ("m.room.topic", ""),
                         ("m.room.member", self.alice), ("m.room.member", self.bob)}
                        <= state, state)
        # Without it, a new message comes with no state.
        self.send_message(self.bob_token, self.room_id, "new")
        body = self.sync(self.alice_token, since=token)
        self.assertEqual(self.joined(body, self.room_id)["state"]["events"], [])
        body = self.sync(self.alice_token, since=token, full_state="true")
        state = {(e["type"], e["state_key"])
                 for e in self.joined(body, self.room_id)["state"]["events"]}
        self.assertIn(("m.room.topic", ""), state)

    def test_full_state_timeline_still_limited_by_since(self) -> None:
        """full_state resends state; the timeline is still limited by `since` (spec)."""
        self.send_message(self.alice_token, self.room_id, "old")
        token = self.sync(self.alice_token)["next_batch"]
        new = self.send_message(self.bob_token, self.room_id, "new")
        body = self.sync(self.alice_token, since=token, full_state="true")
        room = self.joined(body, self.room_id)
        self.assertEqual(self.timeline_ids(body, self.room_id), [new])
        state = {(e["type"], e["state_key"]) for e in room["state"]["events"]}
        self.assertIn(("m.room.create", ""), state)
