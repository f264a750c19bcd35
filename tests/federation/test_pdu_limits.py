"""The spec's limits on received PDUs and transactions: just under a limit is accepted,
just over is refused in the /send answer and nothing is stored."""

from __future__ import annotations

import unittest
from typing import Any

from federation.pdu_limits import (
    MAX_AUTH_EVENTS,
    MAX_PDU_SIZE,
    MAX_PREV_EVENTS,
    check_pdu_limits,
)
from homeserver.event_hashing import CANONICALJSON_MAX_INT
from tests.api.room_helpers import CLIENT
from tests.federation.txn_helpers import RemoteRoomHelpers
from tests.harness import HomeserverTestCase


def _envelope(**fields: Any) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "room_id": "!room:remote.test", "sender": "@rita:remote.test", "type": "m.room.message",
        "content": {}, "depth": 5, "origin_server_ts": 1, "prev_events": ["$a"],
        "auth_events": ["$b"],
    }
    pdu.update(fields)
    return pdu


def _refusal(pdu: Any) -> str | None:
    try:
        check_pdu_limits(pdu, ValueError)
    except ValueError as e:
        return str(e)
    return None


class EnvelopeLimitsTestCase(unittest.TestCase):
    def test_identifiers_are_limited_to_255_bytes(self) -> None:
        """room_id, sender, type, state_key and event_id: 255 bytes pass, 256 do not;
        bytes, not characters, count."""
        for name in ("room_id", "sender", "type", "state_key", "event_id"):
            self.assertIsNone(_refusal(_envelope(**{name: "a" * 255})), name)
            self.assertIn(name, _refusal(_envelope(**{name: "a" * 256})) or "", name)
            # 128 two-byte characters: 256 bytes.
            self.assertIn(name, _refusal(_envelope(**{name: "é" * 128})) or "", name)

    def test_prev_and_auth_event_counts(self) -> None:
        """At most 20 prev_events and 10 auth_events."""
        self.assertIsNone(_refusal(_envelope(prev_events=["$p"] * MAX_PREV_EVENTS,
                                             auth_events=["$a"] * MAX_AUTH_EVENTS)))
        self.assertIn("prev_events",
                      _refusal(_envelope(prev_events=["$p"] * (MAX_PREV_EVENTS + 1))) or "")
        self.assertIn("auth_events",
                      _refusal(_envelope(auth_events=["$a"] * (MAX_AUTH_EVENTS + 1))) or "")

    def test_depth_and_timestamp_ranges(self) -> None:
        """depth in [0, 2**53-1], origin_server_ts in canonical JSON's range; no booleans."""
        self.assertIsNone(_refusal(_envelope(depth=CANONICALJSON_MAX_INT)))
        self.assertIsNone(_refusal(_envelope(depth=0)))
        for bad in (CANONICALJSON_MAX_INT + 1, -1, True, "5", 1.5):
            self.assertIn("depth", _refusal(_envelope(depth=bad)) or "", bad)
        self.assertIn("origin_server_ts",
                      _refusal(_envelope(origin_server_ts=CANONICALJSON_MAX_INT + 1)) or "")

    def test_whole_pdu_size(self) -> None:
        """65,536 bytes of canonical JSON pass, 65,537 do not."""
        base = len(b'{"auth_events":["$b"],"content":{"p":""},"depth":5,'
                   b'"origin_server_ts":1,"prev_events":["$a"],"room_id":"!room:remote.test",'
                   b'"sender":"@rita:remote.test","type":"m.room.message"}')
        pad = MAX_PDU_SIZE - base
        self.assertIsNone(_refusal(_envelope(content={"p": "x" * pad})))
        self.assertIn("65537 bytes", _refusal(_envelope(content={"p": "x" * (pad + 1)})) or "")

    def test_non_objects_and_missing_fields(self) -> None:
        """A PDU that is not an object, or lacks a limited field, is refused."""
        for bad in ([], "pdu", 5, None):
            self.assertEqual(_refusal(bad), "PDU is not an object")
        pdu = _envelope()
        del pdu["prev_events"]
        self.assertIn("prev_events", _refusal(pdu) or "")


class ReceivedPduLimitsTestCase(RemoteRoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.prepare_remote_room()

    def assert_refused(self, pdu: dict[str, Any], reason: str) -> None:
        channel = self.send_txn([pdu])
        self.assertEqual(channel.code, 200, channel.result)
        result = channel.json_body["pdus"][self.event_id_of(pdu)]
        self.assertIn(reason, result.get("error", ""))
        self.assertFalse(self.is_stored(pdu))

    def assert_accepted(self, pdu: dict[str, Any]) -> None:
        channel = self.send_txn([pdu])
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["pdus"], {self.event_id_of(pdu): {}})
        self.assertTrue(self.is_stored(pdu))

    def test_pdu_size(self) -> None:
        """A PDU of exactly 64 KiB joins the room; one byte more is refused."""
        self.assert_refused(self.pdu_of_size(MAX_PDU_SIZE + 1), "more than 65536")
        self.assert_accepted(self.pdu_of_size(MAX_PDU_SIZE))

    def test_prev_events_count(self) -> None:
        """20 known prev events are accepted; 21 are refused."""
        for i in range(MAX_PREV_EVENTS):
            self.send_message(self.alice_token, self.room_id, f"m{i}")
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=b"
                                    "&limit=30", access_token=self.alice_token)
        known = [e["event_id"] for e in channel.json_body["chunk"]]
        self.assertGreater(len(known), MAX_PREV_EVENTS)
        self.assert_refused(self.pdu({"msgtype": "m.text", "body": "x"},
                                     prev_events=known[:MAX_PREV_EVENTS + 1]), "prev_events")
        self.assert_accepted(self.pdu({"msgtype": "m.text", "body": "y"},
                                      prev_events=known[:MAX_PREV_EVENTS]))

    def test_auth_events_count(self) -> None:
        """11 auth events are refused by the limit, not by the auth rules."""
        pdu = self.pdu({"msgtype": "m.text", "body": "x"})
        pdu = self.pdu({"msgtype": "m.text", "body": "x"},
                       auth_events=(pdu["auth_events"] * MAX_AUTH_EVENTS)[:MAX_AUTH_EVENTS + 1])
        self.assert_refused(pdu, "auth_events: List should have at most 10")

    def test_type_length_in_bytes(self) -> None:
        """An event type of 255 bytes is accepted, 256 bytes (128 × é) refused."""
        self.assert_refused(self.pdu({"body": "x"}, event_type="é" * 128), "type")
        self.assert_accepted(self.pdu({"body": "x"}, event_type="a" * 255))

    def test_state_key_and_sender_length(self) -> None:
        """A state_key or sender over 255 bytes is refused."""
        self.assert_refused(self.pdu({}, event_type="org.example.state", state_key="k" * 256),
                            "state_key")
        self.assert_refused(self.pdu({"body": "x"}, sender="@" + "r" * 250 + ":remote.test"),
                            "sender")

    def test_depth_range(self) -> None:
        """depth 2**53-1 is accepted; 2**53 is refused."""
        self.assert_refused(self.pdu({"body": "x"}, depth=CANONICALJSON_MAX_INT + 1), "depth")
        self.assert_accepted(self.pdu({"body": "x"}, depth=CANONICALJSON_MAX_INT))

    def test_integer_in_content(self) -> None:
        """An integer beyond 2**53-1 anywhere in the event is refused (room v6+)."""
        self.assert_refused(self.pdu({"body": "x", "n": {"deep": [CANONICALJSON_MAX_INT + 1]}}),
                            "out of range")
        self.assert_accepted(self.pdu({"body": "x", "n": {"deep": [CANONICALJSON_MAX_INT]}}))

    def test_transaction_counts(self) -> None:
        """50 PDUs and 100 EDUs are processed; 51 or 101 are 400 M_BAD_JSON, none stored."""
        pdus = [self.pdu({"msgtype": "m.text", "body": f"p{i}"}) for i in range(51)]
        self.assert_error(self.send_txn(pdus), 400, "M_BAD_JSON")
        self.assertFalse(any(self.is_stored(p) for p in pdus))
        self.assert_error(self.send_txn([], edus=[{"edu_type": "org.example", "content": {}}]
                                        * 101), 400, "M_BAD_JSON")
        channel = self.send_txn(pdus[:50], edus=[{"edu_type": "org.example", "content": {}}]
                                * 100)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(len(channel.json_body["pdus"]), 50)
        self.assertTrue(all(self.is_stored(p) for p in pdus[:50]))
