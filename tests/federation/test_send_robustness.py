"""`PUT /send/{txnId}` under hostile or unlucky input: transactions of one origin are
processed one at a time, a repeat shares the answer of the one in flight, and no body
(deep, invalid JSON, odd PDUs or EDUs) gets a 500."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from tests.federation.fed_helpers import RemoteServer, install_remote, signed_request
from tests.federation.txn_helpers import SEND, RemoteRoomHelpers
from tests.harness import HomeserverTestCase


class SendRobustnessTestCase(RemoteRoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.prepare_remote_room()

    def block_pdus(self) -> tuple[defer.Deferred[None], list[str]]:
        """Make PDU processing wait for the returned Deferred; also returns the IDs of the
        PDUs processed so far."""
        handler = self.hs.get_federation_event_handler()
        original = handler.on_receive_pdu
        gate: defer.Deferred[None] = defer.Deferred()
        processed: list[str] = []

        async def blocked(origin: str, event: Any) -> None:
            processed.append(event.event_id)
            await gate
            await original(origin, event)

        handler.on_receive_pdu = blocked  # type: ignore[method-assign]
        return gate, processed

    def test_same_transaction_twice_in_flight_is_processed_once(self) -> None:
        """A repeat of a transaction still being processed waits for it and gets its
        answer; the PDU is processed once and stored once (no IntegrityError, no 500)."""
        gate, processed = self.block_pdus()
        pdu = self.pdu({"msgtype": "m.text", "body": "once"})
        first = self.send_txn([pdu], txn_id="t1", await_result=False)
        second = self.send_txn([pdu], txn_id="t1", await_result=False)
        self.assertIsNone(first.response)
        self.assertIsNone(second.response)
        gate.callback(None)
        self.pump()
        self.assertEqual(first.code, 200, first.result)
        self.assertEqual(second.code, 200, second.result)
        self.assertEqual(first.json_body, {"pdus": {self.event_id_of(pdu): {}}})
        self.assertEqual(second.json_body, first.json_body)
        self.assertEqual(processed, [self.event_id_of(pdu)])
        self.assertTrue(self.is_stored(pdu))
        # Once done, a replay is answered from the cache, without processing.
        third = self.send_txn([], txn_id="t1")
        self.assertEqual(third.json_body, first.json_body)
        self.assertEqual(len(processed), 1)

    def test_second_transaction_of_a_busy_origin_gets_429(self) -> None:
        """Another transaction from an origin with one in flight is 429 M_LIMIT_EXCEEDED
        and not remembered: sent again after the first finished, it is processed."""
        gate, processed = self.block_pdus()
        first_pdu = self.pdu({"msgtype": "m.text", "body": "first"})
        second_pdu = self.pdu({"msgtype": "m.text", "body": "second"})
        first = self.send_txn([first_pdu], txn_id="a", await_result=False)
        busy = self.send_txn([second_pdu], txn_id="b")
        self.assert_error(busy, 429, "M_LIMIT_EXCEEDED")
        self.assertIn("retry_after_ms", busy.json_body)
        self.assertFalse(self.is_stored(second_pdu))
        # Another origin is not held up by this one.
        other = RemoteServer("other.test")
        channel = signed_request(self, other, "PUT", f"{SEND}/a",
                                 {"origin": "other.test", "origin_server_ts": 0, "pdus": []})
        self.assertEqual(channel.code, 200, channel.result)
        gate.callback(None)
        self.pump()
        self.assertEqual(first.code, 200, first.result)
        retried = self.send_txn([second_pdu], txn_id="b")
        self.assertEqual(retried.json_body, {"pdus": {self.event_id_of(second_pdu): {}}})
        self.assertEqual(processed, [self.event_id_of(first_pdu), self.event_id_of(second_pdu)])

    def test_failed_transaction_frees_the_origin(self) -> None:
        """A transaction that fails outside any one PDU (here the store) is a 500 the
        sender retries, and does not leave its origin marked busy."""
        events = self.hs.get_datastores().events
        original = events.get_room_version

        async def broken(room_id: str) -> Any:
            raise RuntimeError("database down")

        events.get_room_version = broken  # type: ignore[method-assign]
        first = self.send_txn([{"room_id": self.room_id}], txn_id="x")
        self.assertEqual(first.code, 500)
        events.get_room_version = original  # type: ignore[method-assign]
        second = self.send_txn([], txn_id="y")
        self.assertEqual(second.code, 200, second.result)

    def test_pdu_whose_processing_raises_gets_an_error(self) -> None:
        """An unexpected failure on one PDU is an error for that PDU; the next one of the
        transaction is still processed."""
        handler = self.hs.get_federation_event_handler()
        original = handler.check_pdu
        bad = self.pdu({"msgtype": "m.text", "body": "bad"})
        good = self.pdu({"msgtype": "m.text", "body": "good"})

        async def flaky(pdu: Any, room_version: Any) -> Any:
            if pdu["content"]["body"] == "bad":
                raise RuntimeError("boom")
            return await original(pdu, room_version)

        handler.check_pdu = flaky  # type: ignore[method-assign]
        channel = self.send_txn([bad, good])
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["pdus"], {
            self.event_id_of(bad): {"error": "Internal error while processing the PDU"},
            self.event_id_of(good): {},
        })
        self.assertFalse(self.is_stored(bad))
        self.assertTrue(self.is_stored(good))

    def raw_send(self, body: bytes, txn_id: str) -> Any:
        """A /send whose body is `body` as is; signed over an empty object (the body is
        refused before the signature is looked at)."""
        install_remote(self, self.remote)
        path = f"{SEND}/{txn_id}"
        auth = self.remote.auth_header("PUT", path, {}, self.hs.hostname)
        return self.make_request("PUT", path, body, headers={"Authorization": auth})

    def test_bodies_that_are_not_json_we_accept(self) -> None:
        """20,000-deep nesting, a lone surrogate, 1e400, NaN and bad UTF-8: 400 M_NOT_JSON."""
        bodies = [
            b'{"pdus": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
            b'{"pdus": [], "edus": [{"edu_type": "m.typing", "content": {"x": "\\ud800"}}]}',
            b'{"pdus": [], "origin_server_ts": 1e400}',
            b'{"pdus": [NaN]}',
            b'{"pdus": ["\xff"]}',
        ]
        for i, body in enumerate(bodies):
            self.assert_error(self.raw_send(body, f"bad{i}"), 400, "M_NOT_JSON")

    def test_odd_pdus_and_edus_never_fail_the_transaction(self) -> None:
        """Non-object PDUs and EDUs, EDUs of the wrong shape or whose handler raises are
        skipped; the valid PDU of the same transaction is still stored."""
        pdu = self.pdu({"msgtype": "m.text", "body": "fine"})
        edus: list[Any] = [
            1, "edu", None, [], {}, {"edu_type": 5, "content": {}},
            {"edu_type": "m.typing", "content": "not an object"},
            {"edu_type": "m.typing", "content": {"room_id": 5, "user_id": [], "typing": "y"}},
            {"edu_type": "m.receipt", "content": {self.room_id: "x"}},
            {"edu_type": "m.receipt", "content": {self.room_id: {"m.read": {"@a": 5}}}},
            {"edu_type": "m.direct_to_device", "content": {"messages": 5}},
            {"edu_type": "m.presence", "content": {"push": [1, None]}},
            {"edu_type": "m.device_list_update", "content": {"user_id": None}},
            {"edu_type": "m.signing_key_update", "content": {"user_id": 7}},
        ]
        odd_pdus: list[Any] = [1, "pdu", None, [], {"room_id": 5}, {"room_id": self.room_id}]
        channel = self.send_txn([*odd_pdus, pdu], edus=edus)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["pdus"][self.event_id_of(pdu)], {})
        self.assertTrue(self.is_stored(pdu))

    def test_bad_transaction_envelopes(self) -> None:
        """pdus/edus that are not lists, or an origin_server_ts that is not an integer,
        are 400 M_BAD_JSON; a body that is not an object too."""
        for i, body in enumerate([{"pdus": {}}, {"pdus": [], "edus": "x"},
                                  {"pdus": [], "origin_server_ts": "now"}, [], "txn"]):
            channel = signed_request(self, self.remote, "PUT", f"{SEND}/env{i}", body)
            self.assert_error(channel, 400, "M_BAD_JSON")
