"""Send-to-device: PUT /sendToDevice/{eventType}/{txnId} and the inbox read by /sync."""

from __future__ import annotations

from typing import Any

from storage.stores.to_device import ToDeviceStore
from tests.api.room_helpers import CLIENT
from tests.harness import HomeserverTestCase


class ToDeviceTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice", device_id="A1")
        self.bob = self.register_user("bob")
        self.bob_d1 = self.login("bob", device_id="D1")
        self.bob_d2 = self.login("bob", device_id="D2")
        self.handler = hs.get_to_device_handler()
        self._txn = 0

    def send(self, messages: Any, event_type: str = "m.test", txn_id: str | None = None,
             token: str | None = None) -> Any:
        self._txn += 1
        return self.make_request(
            "PUT", f"{CLIENT}/sendToDevice/{event_type}/{txn_id or f't{self._txn}'}",
            {"messages": messages} if not isinstance(messages, bytes) else messages,
            access_token=token or self.alice_token)

    def inbox(self, device_id: str, user_id: str | None = None, from_key: int = 0,
              limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        result: tuple[list[dict[str, Any]], int] = self.get_success(
            self.handler.get_to_device_for_sync(user_id or self.bob, device_id, from_key,
                                                self.handler.get_current_key(), limit))
        return result

    def test_send_to_one_device(self) -> None:
        """A message reaches the named device only, with type, sender and content."""
        channel = self.send({self.bob: {"D1": {"k": "v"}}})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        messages, upto = self.inbox("D1")
        self.assertEqual(messages, [{"type": "m.test", "sender": self.alice,
                                     "content": {"k": "v"}}])
        self.assertEqual(upto, self.handler.get_current_key())
        self.assertEqual(self.inbox("D2")[0], [])

    def test_star_fans_out(self) -> None:
        """`*` sends to every device of the user; an explicit device ID wins over it."""
        self.assertEqual(self.send({self.bob: {"*": {"n": 1}}}).code, 200)
        self.assertEqual([m["content"] for m in self.inbox("D1")[0]], [{"n": 1}])
        self.assertEqual([m["content"] for m in self.inbox("D2")[0]], [{"n": 1}])
        start = self.handler.get_current_key()
        self.send({self.bob: {"*": {"n": 2}, "D2": {"n": 3}}})
        self.assertEqual([m["content"] for m in self.inbox("D1", from_key=start)[0]],
                         [{"n": 2}])
        self.assertEqual([m["content"] for m in self.inbox("D2", from_key=start)[0]],
                         [{"n": 3}])

    def test_unknown_targets_dropped(self) -> None:
        """Unknown devices, unknown local users and remote users are skipped silently."""
        key = self.handler.get_current_key()
        channel = self.send({self.bob: {"NOPE": {}}, "@ghost:test": {"*": {}},
                             "@carol:elsewhere.org": {"X": {}}})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.handler.get_current_key(), key)
        self.assertEqual(self.inbox("D1")[0], [])

    def test_txn_idempotent(self) -> None:
        """The same txn ID from the same device delivers once; from another device, again."""
        self.assertEqual(self.send({self.bob: {"D1": {"n": 1}}}, txn_id="same").code, 200)
        self.assertEqual(self.send({self.bob: {"D1": {"n": 1}}}, txn_id="same").code, 200)
        self.assertEqual(len(self.inbox("D1")[0]), 1)
        other = self.login("alice", device_id="A2")
        self.assertEqual(
            self.send({self.bob: {"D1": {"n": 1}}}, txn_id="same", token=other).code, 200)
        self.assertEqual(len(self.inbox("D1")[0]), 2)

    def test_limit_and_position(self) -> None:
        """At most `limit` messages, oldest first, with the position they are complete to."""
        for n in range(3):
            self.send({self.bob: {"D1": {"n": n}}})
        messages, upto = self.inbox("D1", limit=2)
        self.assertEqual([m["content"]["n"] for m in messages], [0, 1])
        self.assertLess(upto, self.handler.get_current_key())
        messages, upto2 = self.inbox("D1", from_key=upto, limit=2)
        self.assertEqual([m["content"]["n"] for m in messages], [2])
        self.assertEqual(upto2, self.handler.get_current_key())
        # Exactly `limit` left: complete up to the last one returned.
        messages, upto3 = self.inbox("D1", from_key=upto, limit=1)
        self.assertEqual(len(messages), 1)
        self.assertEqual(upto3, self.handler.get_current_key())
        self.assertEqual(self.inbox("D1", from_key=upto2), ([], upto2))

    def test_delete_up_to(self) -> None:
        """Acknowledged messages are deleted, later ones and other devices' are kept."""
        self.send({self.bob: {"*": {"n": 0}}})
        first = self.handler.get_current_key()
        self.send({self.bob: {"*": {"n": 1}}})
        self.get_success(self.handler.delete_to_device_up_to(self.bob, "D1", first))
        self.assertEqual([m["content"]["n"] for m in self.inbox("D1")[0]], [1])
        self.assertEqual([m["content"]["n"] for m in self.inbox("D2")[0]], [0, 1])
        self.get_success(self.handler.delete_to_device_up_to(
            self.bob, "D1", self.handler.get_current_key()))
        self.assertEqual(self.inbox("D1")[0], [])

    def test_position_survives_restart(self) -> None:
        """The stream position does not go back when every message was acknowledged."""
        self.send({self.bob: {"D1": {}}})
        key = self.handler.get_current_key()
        self.get_success(self.handler.delete_to_device_up_to(self.bob, "D1", key))
        store = ToDeviceStore(self.hs.get_datastores().db)
        self.assertEqual(store.get_current_position(), key)

    def test_deleting_device_drops_inbox(self) -> None:
        """Deleting a device deletes its pending messages."""
        self.send({self.bob: {"*": {}}})
        self.get_success(self.hs.get_device_handler().delete_devices(self.bob, ["D1"]))
        self.assertEqual(self.inbox("D1")[0], [])
        self.assertEqual(len(self.inbox("D2")[0]), 1)

    def test_notifier_wakes_target(self) -> None:
        """Sending wakes the target user's syncs, not the sender's."""
        notifier = self.hs.get_notifier()
        version = notifier.current_version()
        self.send({self.bob: {"D1": {}}})
        self.assertEqual(notifier.positions["to_device"], self.handler.get_current_key())
        self.assertTrue(self.get_success(notifier.wait_for_events(self.bob, [], version, 0)))
        self.assertFalse(
            self.get_success(notifier.wait_for_events(self.alice, [], version, 0)))

    def test_send_to_self(self) -> None:
        """A user may send to their own other devices."""
        self.login("alice", device_id="A2")
        self.send({self.alice: {"A2": {"x": 1}}})
        self.assertEqual(len(self.inbox("A2", user_id=self.alice)[0]), 1)

    def test_bad_input(self) -> None:
        """Bad bodies and IDs give 400 with the matching errcode; nothing is stored."""
        key = self.handler.get_current_key()
        self.assert_error(self.send(b"nope"), 400, "M_NOT_JSON")
        self.assert_error(self.send(b"[1]"), 400, "M_BAD_JSON")
        self.assert_error(self.send(b"{}"), 400, "M_MISSING_PARAM")
        self.assert_error(self.send([]), 400, "M_BAD_JSON")
        self.assert_error(self.send({self.bob: []}), 400, "M_BAD_JSON")
        self.assert_error(self.send({self.bob: {"D1": "text"}}), 400, "M_BAD_JSON")
        self.assert_error(self.send({"bob": {"D1": {}}}), 400, "M_INVALID_PARAM")
        self.assert_error(self.send({self.bob: {"D1": {}}}, event_type="x" * 300),
                          400, "M_INVALID_PARAM")
        self.assertEqual(self.handler.get_current_key(), key)
        self.assertEqual(self.inbox("D1")[0], [])

    def test_needs_token(self) -> None:
        """Without an access token: 401 M_MISSING_TOKEN."""
        channel = self.make_request("PUT", f"{CLIENT}/sendToDevice/m.test/t1",
                                    {"messages": {}})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")
