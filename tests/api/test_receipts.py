"""Receipts (`/receipt`), read markers (`/read_markers`) and the receipt stream for /sync."""

from __future__ import annotations

from typing import Any

from storage.stores.receipts import ReceiptsStore
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


class ReceiptsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.carol = self.register_user("carol")
        self.carol_token = self.login("carol")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, self.room_id)
        self.e1 = self.send_message(self.alice_token, self.room_id, "one")
        self.e2 = self.send_message(self.alice_token, self.room_id, "two")
        self.e3 = self.send_message(self.alice_token, self.room_id, "three")
        self.handler = hs.get_receipts_handler()
        self.events = hs.get_datastores().events
        self._txn = 0

    # -- helpers --

    def receipt(self, event_id: str, receipt_type: str = "m.read",
                body: Any = None, token: str | None = None, room_id: str | None = None) -> Any:
        return self.make_request(
            "POST", f"{CLIENT}/rooms/{room_id or self.room_id}/receipt/{receipt_type}/"
            f"{event_id}", {} if body is None else body, access_token=token or self.alice_token)

    def ok_receipt(self, event_id: str, receipt_type: str = "m.read",
                   body: Any = None, token: str | None = None) -> None:
        channel = self.receipt(event_id, receipt_type, body, token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})

    def sync_receipts(self, user_id: str, from_key: int | None = None,
                      room_ids: list[str] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.get_success(self.handler.get_receipts_for_sync(
            user_id, room_ids or [self.room_id], from_key, self.handler.get_current_key()))
        return result

    def content(self, user_id: str, from_key: int | None = None) -> dict[str, Any]:
        event = self.sync_receipts(user_id, from_key).get(self.room_id)
        if event is None:
            return {}
        self.assertEqual(event["type"], "m.receipt")
        content: dict[str, Any] = event["content"]
        return content

    def ordering(self, event_id: str) -> int:
        so: int = self.get_success(self.events.get_stream_ordering(event_id))
        return so

    def send_related(self, rel_type: str, parent: str) -> str:
        self._txn += 1
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/send/m.room.message/rel{self._txn}",
            {"msgtype": "m.text", "body": "reply",
             "m.relates_to": {"rel_type": rel_type, "event_id": parent}},
            access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        event_id: str = channel.json_body["event_id"]
        return event_id

    # -- storing and syncing --

    def test_receipt_is_synced_to_members(self) -> None:
        """An m.read receipt shows up for other members with the server's `ts`."""
        before = self.handler.get_current_key()
        self.ok_receipt(self.e2)
        self.assertGreater(self.handler.get_current_key(), before)
        now = self.hs.get_clock().time_msec()
        self.assertEqual(self.content(self.bob),
                         {self.e2: {"m.read": {self.alice: {"ts": now}}}})
        self.assertEqual(self.content(self.alice),
                         {self.e2: {"m.read": {self.alice: {"ts": now}}}})

    def test_incremental_only_changes(self) -> None:
        """A sync from a key sees only receipts changed after it; none at the same key."""
        self.ok_receipt(self.e1, token=self.bob_token)
        key = self.handler.get_current_key()
        self.assertEqual(self.sync_receipts(self.alice, key), {})
        self.ok_receipt(self.e2)
        content = self.content(self.bob, key)
        self.assertEqual(list(content), [self.e2])
        self.assertEqual(list(content[self.e2]["m.read"]), [self.alice])
        # From None: every current receipt.
        self.assertEqual(set(self.content(self.bob)), {self.e1, self.e2})
        # Rooms without changes are absent; rooms not asked about are not looked at.
        other = self.create_room(self.alice_token)
        self.assertNotIn(other, self.sync_receipts(self.alice, None, [self.room_id, other]))

    def test_receipts_move_forward_only(self) -> None:
        """A receipt for an older (or the same) event is accepted but not stored."""
        self.ok_receipt(self.e3)
        key = self.handler.get_current_key()
        notifier = self.hs.get_notifier()
        version = notifier.current_version()
        self.ok_receipt(self.e1)
        self.ok_receipt(self.e3)
        self.assertEqual(self.handler.get_current_key(), key)
        self.assertEqual(notifier.current_version(), version)
        self.assertEqual(list(self.content(self.bob)), [self.e3])
        # Another type keeps its own position.
        self.ok_receipt(self.e1, "m.read.private")
        self.assertEqual(self.content(self.alice)[self.e1]["m.read.private"][self.alice]
                         ["ts"], self.hs.get_clock().time_msec())

    def test_new_receipt_replaces_old(self) -> None:
        """A later receipt moves the user's receipt: the old event no longer lists them."""
        self.ok_receipt(self.e1)
        self.reactor.advance(3)
        self.ok_receipt(self.e2)
        content = self.content(self.bob)
        self.assertEqual(list(content), [self.e2])
        self.assertEqual(content[self.e2]["m.read"][self.alice]["ts"],
                         self.hs.get_clock().time_msec())

    def test_private_receipts_only_for_owner(self) -> None:
        """m.read.private is synced to its owner only, and wakes only the owner."""
        notifier = self.hs.get_notifier()
        version = notifier.current_version()
        self.ok_receipt(self.e2, "m.read.private")
        self.assertFalse(self.get_success(
            notifier.wait_for_events(self.bob, [self.room_id], version, 0)))
        self.assertTrue(self.get_success(
            notifier.wait_for_events(self.alice, [], version, 0)))
        self.assertEqual(self.sync_receipts(self.bob), {})
        self.assertIn(self.alice, self.content(self.alice)[self.e2]["m.read.private"])
        # Bob's public and private receipts on the same event: Alice sees only the public.
        self.ok_receipt(self.e2, "m.read", token=self.bob_token)
        self.ok_receipt(self.e3, "m.read.private", token=self.bob_token)
        alice_view = self.content(self.alice)
        self.assertEqual(set(alice_view[self.e2]["m.read"]), {self.bob})
        self.assertEqual(alice_view[self.e2]["m.read.private"], {
            self.alice: alice_view[self.e2]["m.read.private"][self.alice]})
        self.assertNotIn(self.e3, alice_view)
        self.assertIn(self.e3, self.content(self.bob))

    def test_public_receipt_wakes_room(self) -> None:
        """A public receipt announces the receipt stream to the room."""
        notifier = self.hs.get_notifier()
        version = notifier.current_version()
        self.ok_receipt(self.e1)
        self.assertTrue(self.get_success(
            notifier.wait_for_events(self.bob, [self.room_id], version, 0)))
        self.assertEqual(notifier.positions["receipt"], self.handler.get_current_key())

    def test_many_rooms_in_one_call(self) -> None:
        """More rooms than one IN (...) batch: every room with a receipt is returned."""
        store = self.hs.get_datastores().receipts
        rooms = [f"!r{i}:test" for i in range(520)]
        for i, room in enumerate(rooms):
            self.get_success(store.insert_receipt(room, "m.read", self.bob, None, "$e", i + 1,
                                                  {"ts": 1}))
        got = self.sync_receipts(self.alice, None, rooms)
        self.assertEqual(set(got), set(rooms))
        positions = self.get_success(self.handler.get_read_positions(self.bob, rooms))
        self.assertEqual(positions[rooms[519]], 520)
        self.assertEqual(len(positions), 520)

    def test_lost_race_keeps_later_receipt(self) -> None:
        """An older receipt that passed the check but commits after a later one does not
        move the receipt back, and still uses its stream id (the table max stays the
        stream position across restarts)."""
        store = self.hs.get_datastores().receipts
        self.get_success(store.insert_receipt(self.room_id, "m.read", self.bob, None, "$new",
                                              10, {"ts": 1}))
        key = (self.room_id, "m.read", self.bob, "")
        with store._stream_ids.get_next() as stream_id:
            self.get_success(store.db.run_interaction(
                "race", store._insert_receipt_txn, stream_id, key, "$old", 5, '{"ts": 2}'))
        rows = self.get_success(store.get_user_receipts(self.bob, self.room_id))
        self.assertEqual([(r.event_id, r.stream_id) for r in rows], [("$new", stream_id)])
        self.assertEqual(ReceiptsStore(store.db).get_max_receipt_stream_id(), stream_id)

    # -- read positions and threads --

    def test_read_positions(self) -> None:
        """The furthest of m.read and m.read.private counts; rooms without one are absent."""
        other = self.create_room(self.alice_token)
        self.ok_receipt(self.e1)
        self.assertEqual(self.get_success(self.handler.get_read_positions(
            self.alice, [self.room_id, other])), {self.room_id: self.ordering(self.e1)})
        self.ok_receipt(self.e3, "m.read.private")
        self.ok_receipt(self.e2)
        self.assertEqual(self.get_success(self.handler.get_read_positions(
            self.alice, [self.room_id])), {self.room_id: self.ordering(self.e3)})
        # Another user's receipts do not count.
        self.assertEqual(self.get_success(self.handler.get_read_positions(
            self.bob, [self.room_id])), {})

    def test_threaded_receipts(self) -> None:
        """Threaded receipts carry thread_id, keep one per thread, and feed read positions."""
        root = self.e1
        t1 = self.send_related("m.thread", root)
        t2 = self.send_related("m.thread", root)
        self.ok_receipt(t1, body={"thread_id": root})
        self.ok_receipt(self.e2, body={"thread_id": "main"})
        self.ok_receipt(self.e1)
        content = self.content(self.bob)
        self.assertEqual(content[t1]["m.read"][self.alice]["thread_id"], root)
        self.assertEqual(content[self.e2]["m.read"][self.alice]["thread_id"], "main")
        self.assertNotIn("thread_id", content[self.e1]["m.read"][self.alice])
        # A later receipt in the thread replaces t1 but leaves the others.
        self.ok_receipt(t2, body={"thread_id": root})
        content = self.content(self.bob)
        self.assertEqual(set(content), {t2, self.e2, self.e1})
        self.assertEqual(self.get_success(self.handler.get_thread_read_positions(
            self.alice, self.room_id)), {root: self.ordering(t2), "main": self.ordering(self.e2)})
        # Room read position: the unthreaded receipt only ("main" and threads are kept
        # per thread).
        self.assertEqual(self.get_success(self.handler.get_read_positions(
            self.alice, [self.room_id])), {self.room_id: self.ordering(self.e1)})

    def test_thread_membership_checked(self) -> None:
        """thread_id must fit the event: 400 M_INVALID_PARAM otherwise."""
        root = self.e1
        t1 = self.send_related("m.thread", root)
        reaction_in_thread = self.send_related("m.annotation", t1)
        reference_to_root = self.send_related("m.reference", root)
        # Fitting: the root and events related to it; events in the thread (any hop).
        self.ok_receipt(root, body={"thread_id": root})
        self.ok_receipt(reference_to_root, body={"thread_id": root})
        self.ok_receipt(reaction_in_thread, body={"thread_id": root})
        self.ok_receipt(root, body={"thread_id": "main"})
        # Not fitting.
        self.assert_error(self.receipt(self.e2, body={"thread_id": root}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.receipt(t1, body={"thread_id": "main"}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.receipt(reaction_in_thread, body={"thread_id": "main"}), 400,
                          "M_INVALID_PARAM")

    # -- errors --

    def test_bad_thread_id(self) -> None:
        """Empty or non-string thread_id, or one with m.fully_read: 400 M_INVALID_PARAM."""
        for bad in ("", 5, None, ["main"]):
            self.assert_error(self.receipt(self.e1, body={"thread_id": bad}), 400,
                              "M_INVALID_PARAM")
        self.assert_error(self.receipt(self.e1, "m.fully_read", body={"thread_id": "main"}),
                          400, "M_INVALID_PARAM")
        self.assertEqual(self.sync_receipts(self.bob), {})

    def test_unknown_receipt_type(self) -> None:
        """A receipt type outside m.read / m.read.private / m.fully_read: 400."""
        for bad in ("m.unknown", "read", "m.read.privat"):
            self.assert_error(self.receipt(self.e1, bad), 400, "M_INVALID_PARAM")

    def test_bad_ids(self) -> None:
        """A malformed event or room ID: 400 M_INVALID_PARAM."""
        self.assert_error(self.receipt("not-an-event"), 400, "M_INVALID_PARAM")
        self.assert_error(self.receipt(self.e1, room_id="not-a-room"), 400, "M_INVALID_PARAM")

    def test_not_joined(self) -> None:
        """Non-members, left members and unknown rooms: 403 M_FORBIDDEN."""
        self.assert_error(self.receipt(self.e1, token=self.carol_token), 403, "M_FORBIDDEN")
        self.assert_error(self.receipt(self.e1, room_id="!nope:test"), 403, "M_FORBIDDEN")
        self.leave(self.bob, self.room_id)
        self.assert_error(self.receipt(self.e1, token=self.bob_token), 403, "M_FORBIDDEN")
        self.assertEqual(self.sync_receipts(self.alice), {})

    def test_unknown_or_foreign_event_ignored(self) -> None:
        """Unknown events and events of another room: 200 but nothing stored (Synapse)."""
        other = self.create_room(self.alice_token)
        foreign = self.send_message(self.alice_token, other)
        key = self.handler.get_current_key()
        self.ok_receipt("$unknown:test")
        self.ok_receipt(foreign)
        self.assertEqual(self.handler.get_current_key(), key)
        self.assertEqual(self.sync_receipts(self.bob, None, [self.room_id, other]), {})

    def test_bad_body(self) -> None:
        """A body that is not JSON (400 M_NOT_JSON) or not an object (400 M_BAD_JSON)."""
        self.assert_error(self.receipt(self.e1, body=b"{nope"), 400, "M_NOT_JSON")
        self.assert_error(self.receipt(self.e1, body=[1]), 400, "M_BAD_JSON")
        # An empty body is taken as {} (clients differ).
        self.ok_receipt(self.e1, body=b"")

    def test_needs_token(self) -> None:
        """Without an access token: 401 M_MISSING_TOKEN."""
        channel = self.make_request(
            "POST", f"{CLIENT}/rooms/{self.room_id}/receipt/m.read/{self.e1}", {})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    # -- read markers --

    def read_markers(self, body: Any, token: str | None = None,
                     room_id: str | None = None) -> Any:
        return self.make_request(
            "POST", f"{CLIENT}/rooms/{room_id or self.room_id}/read_markers", body,
            access_token=token or self.alice_token)

    def test_read_markers_receipts(self) -> None:
        """m.read and m.read.private in /read_markers act as /receipt calls."""
        channel = self.read_markers({"m.read": self.e1, "m.read.private": self.e2})
        self.assertEqual(channel.code, 200, channel.result)
        content = self.content(self.alice)
        self.assertIn(self.alice, content[self.e1]["m.read"])
        self.assertIn(self.alice, content[self.e2]["m.read.private"])
        self.assertNotIn(self.e2, self.content(self.bob))
        # An empty object is allowed (every field is optional).
        self.assertEqual(self.read_markers({}).code, 200)

    def fully_read(self) -> Any:
        channel = self.make_request(
            "GET", f"{CLIENT}/user/{self.alice}/rooms/{self.room_id}/account_data/"
            "m.fully_read", access_token=self.alice_token)
        return channel.json_body if channel.code == 200 else None

    def test_read_marker(self) -> None:
        """m.fully_read (from /read_markers or /receipt) is room account data, synced on
        the account-data stream, moving forward only, never an m.receipt."""
        account_data = self.hs.get_account_data_handler()
        key = account_data.get_current_key()
        channel = self.read_markers({"m.fully_read": self.e2, "m.read": self.e2})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.fully_read(), {"event_id": self.e2})
        self.assertEqual(list(self.content(self.bob)[self.e2]), ["m.read"])
        _, rooms = self.get_success(account_data.get_account_data_for_sync(
            self.alice, key, account_data.get_current_key()))
        self.assertIn({"type": "m.fully_read", "content": {"event_id": self.e2}},
                      rooms[self.room_id])
        # /receipt/m.fully_read moves it too, and not into m.receipt.
        self.ok_receipt(self.e3, "m.fully_read")
        self.assertEqual(self.fully_read(), {"event_id": self.e3})
        self.assertNotIn(self.e3, self.content(self.alice))
        # Backwards: accepted, not moved.
        key = account_data.get_current_key()
        self.ok_receipt(self.e1, "m.fully_read")
        self.assertEqual(self.read_markers({"m.fully_read": self.e1}).code, 200)
        self.assertEqual(self.fully_read(), {"event_id": self.e3})
        self.assertEqual(account_data.get_current_key(), key)

    def test_read_markers_errors(self) -> None:
        """Bad types (400 M_BAD_JSON), bad IDs (400), non-members (403), unknown fully-read
        events (404)."""
        for field in ("m.fully_read", "m.read", "m.read.private"):
            self.assert_error(self.read_markers({field: 5}), 400, "M_BAD_JSON")
            self.assert_error(self.read_markers({field: "nope"}), 400, "M_INVALID_PARAM")
        self.assert_error(self.read_markers([]), 400, "M_BAD_JSON")
        self.assert_error(self.read_markers({"m.read": self.e1}, self.carol_token), 403,
                          "M_FORBIDDEN")
        self.assert_error(self.read_markers({"m.fully_read": "$unknown:test"}), 404,
                          "M_NOT_FOUND")
        other = self.create_room(self.alice_token)
        foreign = self.send_message(self.alice_token, other)
        self.assert_error(self.read_markers({"m.fully_read": foreign}), 404, "M_NOT_FOUND")
        self.assert_error(self.receipt(foreign, "m.fully_read"), 404, "M_NOT_FOUND")
        self.assert_error(self.receipt(self.e1, "m.fully_read", token=self.carol_token), 403,
                          "M_FORBIDDEN")
        self.assertEqual(self.sync_receipts(self.alice), {})
