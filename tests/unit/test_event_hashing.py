"""Canonical JSON, hashes, event IDs and signatures, against the spec's test vectors.

Vectors: appendices.md "Canonical JSON" examples and "Cryptographic Test Vectors".
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import unittest
from typing import Any

import signedjson.key
import signedjson.sign

from homeserver.event_hashing import (
    SignatureVerifyException,
    add_content_hash,
    canonical_json,
    check_canonical_json,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
    decode_base64,
    encode_base64,
    sign_event,
    verify_event_signature,
)
from homeserver.events import Event
from homeserver.keys import SigningKey as ServerSigningKey
from homeserver.room_versions import KNOWN_ROOM_VERSIONS

V = KNOWN_ROOM_VERSIONS
SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
KEY = signedjson.key.decode_signing_key_base64("ed25519", "1", SEED)
VERIFY_KEY = KEY.verify_key
OTHER_KEY = signedjson.key.decode_signing_key_base64("ed25519", "2", "A" * 43)

# appendices.md, "Event Signing": the minimally-sized event and its signed form.
MINIMAL_EVENT: dict[str, Any] = {
    "room_id": "!x:domain", "sender": "@a:domain", "origin": "domain",
    "origin_server_ts": 1000000, "signatures": {}, "hashes": {}, "type": "X", "content": {},
    "prev_events": [], "auth_events": [], "depth": 3, "unsigned": {"age_ts": 1000000},
}
MINIMAL_EVENT_SIGNED: dict[str, Any] = {
    "auth_events": [], "content": {}, "depth": 3,
    "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
    "origin": "domain", "origin_server_ts": 1000000, "prev_events": [],
    "room_id": "!x:domain", "sender": "@a:domain",
    "signatures": {"domain": {"ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16Aq"
                                           "LAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},
    "type": "X", "unsigned": {"age_ts": 1000000},
}
# appendices.md, "Event Signing": the event with redactable content.
MESSAGE_EVENT: dict[str, Any] = {
    "content": {"body": "Here is the message content"}, "event_id": "$0:domain",
    "origin": "domain", "origin_server_ts": 1000000, "type": "m.room.message",
    "room_id": "!r:domain", "sender": "@u:domain", "signatures": {},
    "unsigned": {"age_ts": 1000000},
}
MESSAGE_EVENT_SIGNED: dict[str, Any] = {
    **MESSAGE_EVENT,
    "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
    "signatures": {"domain": {"ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC7"
                                           "8FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"}},
}


def hash_and_sign(pdu: dict[str, Any], version: str = "1") -> dict[str, Any]:
    return sign_event(add_content_hash(pdu), "domain", KEY, V[version])


def message_pdu(**overrides: Any) -> dict[str, Any]:
    """A v4+-style message event (no event_id, list-of-IDs prev/auth events)."""
    pdu: dict[str, Any] = {
        "type": "m.room.message", "room_id": "!room:example.org", "sender": "@u:example.org",
        "content": {"msgtype": "m.text", "body": "hello"}, "depth": 5,
        "origin_server_ts": 1700000000000, "prev_events": ["$prev"], "auth_events": ["$auth"],
        "hashes": {}, "signatures": {}, "unsigned": {"age": 3},
    }
    pdu.update(overrides)
    return add_content_hash(pdu)


class CanonicalJsonTestCase(unittest.TestCase):
    VECTORS: list[tuple[Any, bytes]] = [
        ({}, b"{}"),
        ({"one": 1, "two": "Two"}, b'{"one":1,"two":"Two"}'),
        ({"b": "2", "a": "1"}, b'{"a":"1","b":"2"}'),
        ({"auth": {"success": True, "mxid": "@john.doe:example.com", "profile": {
            "display_name": "John Doe", "three_pids": [
                {"medium": "email", "address": "john.doe@example.org"},
                {"medium": "msisdn", "address": "123456789"}]}}},
         b'{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
         b'"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
         b'{"address":"123456789","medium":"msisdn"}]},"success":true}}'),
        ({"a": "日本語"}, '{"a":"日本語"}'.encode()),
        ({"本": 2, "日": 1}, '{"日":1,"本":2}'.encode()),
        ({"a": "\u65E5"}, '{"a":"日"}'.encode()),
        ({"a": None}, b'{"a":null}'),
    ]

    def test_spec_examples(self) -> None:
        """Every canonical JSON example in the appendix encodes byte for byte."""
        for value, expected in self.VECTORS:
            with self.subTest(value=value):
                self.assertEqual(canonical_json(value), expected)

    def test_spec_example_numbers(self) -> None:
        """`{"a": -0, "b": 1e10}` is `{"a":0,"b":10000000000}` once read as integers."""

        def integral(text: str) -> int | float:
            value = float(text)
            return int(value) if value.is_integer() else value

        parsed = json.loads('{"a": -0, "b": 1e10}', parse_float=integral)
        self.assertEqual(canonical_json(parsed), b'{"a":0,"b":10000000000}')

    def test_control_characters_escaped_lowercase(self) -> None:
        """Control characters use the grammar's escapes (`\\n`, `\\u001f`); others stay raw."""
        self.assertEqual(canonical_json({"a": "\n\x1f\x7f\u2028\"\\"}),
                         '{"a":"\\n\\u001f\x7f\u2028\\"\\\\"}'.encode())

    def test_strict_check_only_v6_plus(self) -> None:
        """Floats and out-of-range ints are refused in v6+ rooms and tolerated in v1–v5."""
        bad_values: list[Any] = [
            {"a": 1.5}, {"a": 1.0}, {"a": {"b": [1, 2, 2**53]}}, {"a": -(2**53)},
            [{"deep": [[[float("nan")]]]}], {"a": float("inf")},
        ]
        for value in bad_values:
            for version in ("1", "2", "3", "4", "5"):
                check_canonical_json(value, V[version])  # no error
            for version in ("6", "7", "8", "9", "10", "11", "12"):
                with self.subTest(value=value, version=version), self.assertRaises(ValueError):
                    check_canonical_json(value, V[version])

    def test_strict_check_accepts_boundaries(self) -> None:
        """The range ends ±(2**53-1), booleans, null and strings pass the v6+ check."""
        check_canonical_json({"max": 2**53 - 1, "min": -(2**53) + 1, "t": True, "n": None,
                              "s": "1.5", "l": [0, -1]}, V["12"])

    def test_strict_check_deep_nesting(self) -> None:
        """A very deeply nested value is walked without hitting Python's recursion limit."""
        value: Any = 2**60
        for _ in range(50000):
            value = [value]
        with self.assertRaises(ValueError):
            check_canonical_json(value, V["6"])

    def test_unpadded_base64_examples(self) -> None:
        """The appendix's UNPADDED_BASE64 examples encode and decode back."""
        for raw, encoded in [(b"", ""), (b"f", "Zg"), (b"fo", "Zm8"), (b"foo", "Zm9v"),
                             (b"foob", "Zm9vYg"), (b"fooba", "Zm9vYmE"),
                             (b"foobar", "Zm9vYmFy")]:
            self.assertEqual(encode_base64(raw), encoded)
            self.assertEqual(decode_base64(encoded), raw)
            self.assertEqual(decode_base64(encoded + "=" * (-len(encoded) % 4)), raw)

    def test_decode_base64_rejects_garbage(self) -> None:
        """Non-base64 text raises ValueError rather than decoding partially."""
        for bad in ("!!!!", "Zm9v$", "Zé"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                decode_base64(bad)


class JsonSigningVectorsTestCase(unittest.TestCase):
    def test_signing_key_seed(self) -> None:
        """The test seed yields a signing key whose ID is `ed25519:1`."""
        self.assertEqual(f"{KEY.alg}:{KEY.version}", "ed25519:1")

    def test_minimal_signed_json(self) -> None:
        """`{}` signed as `domain` carries exactly the appendix's signature."""
        signed = signedjson.sign.sign_json({}, "domain", KEY)
        self.assertEqual(signed, {"signatures": {"domain": {"ed25519:1": (
            "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
        )}}})

    def test_signed_json_with_data(self) -> None:
        """`{"one": 1, "two": "Two"}` signed as `domain` matches the appendix byte for byte."""
        signed = signedjson.sign.sign_json({"one": 1, "two": "Two"}, "domain", KEY)
        self.assertEqual(canonical_json(signed), canonical_json({
            "one": 1,
            "signatures": {"domain": {"ed25519:1": (
                "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
            )}},
            "two": "Two",
        }))


class EventSigningVectorsTestCase(unittest.TestCase):
    def test_minimal_event(self) -> None:
        """The minimal event hashes and signs to the appendix's output in every v1–v10 room."""
        for version in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"):
            with self.subTest(version=version):
                signed = hash_and_sign(copy.deepcopy(MINIMAL_EVENT), version)
                self.assertEqual(canonical_json(signed), canonical_json(MINIMAL_EVENT_SIGNED))

    def test_event_with_redactable_content(self) -> None:
        """The message event's hash covers its body and its signature matches the appendix."""
        signed = hash_and_sign(copy.deepcopy(MESSAGE_EVENT))
        self.assertEqual(canonical_json(signed), canonical_json(MESSAGE_EVENT_SIGNED))

    def test_v11_signature_differs_because_origin_is_redacted(self) -> None:
        """v11 drops `origin` from the redacted form, so the same event signs differently."""
        signed = hash_and_sign(copy.deepcopy(MINIMAL_EVENT), "11")
        self.assertEqual(signed["hashes"], MINIMAL_EVENT_SIGNED["hashes"])
        self.assertNotEqual(signed["signatures"], MINIMAL_EVENT_SIGNED["signatures"])
        verify_event_signature(signed, "domain", VERIFY_KEY, "ed25519:1", V["11"])
        with self.assertRaises(SignatureVerifyException):
            verify_event_signature(signed, "domain", VERIFY_KEY, "ed25519:1", V["1"])

    def test_input_not_mutated(self) -> None:
        """Hashing and signing return new dicts and leave the caller's event alone."""
        event = copy.deepcopy(MINIMAL_EVENT)
        hash_and_sign(event)
        self.assertEqual(event, MINIMAL_EVENT)

    def test_signing_requires_content_hash(self) -> None:
        """Signing an event without `hashes.sha256` is refused (it would verify as redacted)."""
        with self.assertRaises(ValueError):
            sign_event(copy.deepcopy(MINIMAL_EVENT), "domain", KEY, V["1"])

    def test_server_signing_key_wrapper_accepted(self) -> None:
        """The server's `SigningKey` wrapper signs exactly like the bare signedjson key."""
        wrapped = ServerSigningKey(key=KEY, version="1")
        signed = sign_event(add_content_hash(MESSAGE_EVENT), "domain", wrapped, V["1"])
        self.assertEqual(signed["signatures"], MESSAGE_EVENT_SIGNED["signatures"])

    def test_existing_signatures_kept(self) -> None:
        """A second signature (another key, another server) is merged, not overwritten."""
        first = hash_and_sign(copy.deepcopy(MESSAGE_EVENT))
        second = sign_event(first, "domain", OTHER_KEY, V["1"])
        third = sign_event(second, "other.example", KEY, V["1"])
        self.assertEqual(set(third["signatures"]), {"domain", "other.example"})
        self.assertEqual(set(third["signatures"]["domain"]), {"ed25519:1", "ed25519:2"})
        self.assertEqual(third["signatures"]["domain"]["ed25519:1"],
                         MESSAGE_EVENT_SIGNED["signatures"]["domain"]["ed25519:1"])
        verify_event_signature(third, "domain", OTHER_KEY.verify_key, "ed25519:2", V["1"])
        verify_event_signature(third, "other.example", VERIFY_KEY, "ed25519:1", V["1"])


class ContentHashTestCase(unittest.TestCase):
    def test_content_hash_ignores_unsigned_signatures_hashes(self) -> None:
        """`unsigned`, `signatures` and `hashes` do not change the content hash."""
        base = compute_content_hash(MESSAGE_EVENT)
        changed = {**MESSAGE_EVENT, "unsigned": {"age": 99}, "signatures": {"x": {}},
                   "hashes": {"sha256": "abc"}}
        self.assertEqual(compute_content_hash(changed), base)
        self.assertEqual(base, hashlib.sha256(canonical_json(
            {k: v for k, v in MESSAGE_EVENT.items()
             if k not in ("unsigned", "signatures")})).digest())

    def test_check_content_hash(self) -> None:
        """A correct hash checks; edited content, a missing or undecodable hash do not."""
        signed = hash_and_sign(copy.deepcopy(MESSAGE_EVENT))
        self.assertTrue(check_content_hash(signed))
        self.assertTrue(check_content_hash(MESSAGE_EVENT_SIGNED))
        tampered = {**signed, "content": {"body": "something else"}}
        self.assertFalse(check_content_hash(tampered))
        self.assertFalse(check_content_hash({**signed, "hashes": {}}))
        self.assertFalse(check_content_hash({**signed, "hashes": {"sha256": "!!"}}))
        self.assertFalse(check_content_hash({**signed, "hashes": "nope"}))

    def test_add_content_hash_keeps_other_algorithms(self) -> None:
        """Adding the sha256 hash keeps hashes of other algorithms already present."""
        hashed = add_content_hash({**MESSAGE_EVENT, "hashes": {"sha512": "x"}})
        self.assertEqual(hashed["hashes"], {
            "sha512": "x", "sha256": MESSAGE_EVENT_SIGNED["hashes"]["sha256"]})


class SignatureVerificationTestCase(unittest.TestCase):
    def test_verifies_full_and_redacted_copy(self) -> None:
        """A signed event verifies, and so does its redacted copy (body removed)."""
        signed = hash_and_sign(copy.deepcopy(MESSAGE_EVENT))
        verify_event_signature(signed, "domain", VERIFY_KEY, "ed25519:1", V["1"])
        redacted = {**signed, "content": {}, "unsigned": {"redacted_because": {}}}
        verify_event_signature(redacted, "domain", VERIFY_KEY, "ed25519:1", V["1"])

    def test_tampering_fails(self) -> None:
        """Changing a protected key, the hash, or the signature breaks verification."""
        signed = hash_and_sign(copy.deepcopy(MESSAGE_EVENT))
        sig = signed["signatures"]["domain"]["ed25519:1"]
        tampered = [
            {**signed, "sender": "@mallory:domain"},
            {**signed, "origin_server_ts": 1000001},
            {**signed, "hashes": {"sha256": encode_base64(b"\0" * 32)}},
            {**signed, "signatures": {"domain": {"ed25519:1": "A" + sig[1:]}}},
        ]
        for event in tampered:
            with self.subTest(event=event), self.assertRaises(SignatureVerifyException):
                verify_event_signature(event, "domain", VERIFY_KEY, "ed25519:1", V["1"])

    def test_content_change_caught_by_hash_not_signature(self) -> None:
        """Editing the body keeps the signature valid but fails the content hash check."""
        signed = hash_and_sign(copy.deepcopy(MESSAGE_EVENT))
        edited = {**signed, "content": {"body": "edited"}}
        verify_event_signature(edited, "domain", VERIFY_KEY, "ed25519:1", V["1"])
        self.assertFalse(check_content_hash(edited))

    def test_missing_or_wrong_key(self) -> None:
        """No signature for the server, another key, an unknown key ID or bad base64 fail."""
        signed = hash_and_sign(copy.deepcopy(MESSAGE_EVENT))
        cases = [
            (signed, "other.example", VERIFY_KEY, "ed25519:1"),
            (signed, "domain", OTHER_KEY.verify_key, "ed25519:1"),
            (signed, "domain", VERIFY_KEY, "ed25519:2"),
            (signed, "domain", VERIFY_KEY, "curve25519:1"),
            ({**signed, "signatures": {"domain": {"ed25519:1": "@@@"}}}, "domain", VERIFY_KEY,
             "ed25519:1"),
            ({**signed, "signatures": {"domain": "x"}}, "domain", VERIFY_KEY, "ed25519:1"),
            ({k: v for k, v in signed.items() if k != "signatures"}, "domain", VERIFY_KEY,
             "ed25519:1"),
        ]
        for event, server, key, key_id in cases:
            with self.subTest(server=server, key_id=key_id), \
                    self.assertRaises(SignatureVerifyException):
                verify_event_signature(event, server, key, key_id, V["1"])


class EventIdTestCase(unittest.TestCase):
    URLSAFE_ID = re.compile(r"\$[A-Za-z0-9_\-]{43}")
    STANDARD_ID = re.compile(r"\$[A-Za-z0-9+/]{43}")

    def test_v1_v2_take_event_id_from_pdu(self) -> None:
        """In v1 and v2 the event ID is the `event_id` the origin put in the PDU."""
        for version in ("1", "2"):
            self.assertEqual(compute_event_id(MESSAGE_EVENT, V[version]), "$0:domain")
            with self.assertRaises(ValueError):
                compute_event_id({k: v for k, v in MESSAGE_EVENT.items() if k != "event_id"},
                                 V[version])

    def test_v4_plus_url_safe_reference_hash(self) -> None:
        """v4+ IDs are `$` + the URL-safe unpadded base64 of the reference hash."""
        pdu = message_pdu()
        for version in ("4", "5", "6", "7", "8", "9", "10", "11", "12"):
            with self.subTest(version=version):
                event_id = compute_event_id(pdu, V[version])
                self.assertRegex(event_id, self.URLSAFE_ID)
                digest = compute_reference_hash(pdu, V[version])
                self.assertEqual(event_id, "$" + encode_base64(digest, urlsafe=True))

    def test_v3_standard_base64(self) -> None:
        """v3 IDs use the standard alphabet; the same hash differs from v4 only there."""
        for n in range(200):  # find a hash whose base64 contains + or /
            pdu = message_pdu(depth=n)
            v3_id = compute_event_id(pdu, V["3"])
            if "+" in v3_id or "/" in v3_id:
                break
        self.assertRegex(v3_id, self.STANDARD_ID)
        v4_id = compute_event_id(pdu, V["4"])
        self.assertNotEqual(v3_id, v4_id)
        self.assertEqual(v3_id.replace("+", "-").replace("/", "_"), v4_id)

    def test_reference_hash_definition(self) -> None:
        """The reference hash is SHA-256 over the redacted event without signatures/unsigned."""
        pdu = message_pdu()
        redacted = {k: v for k, v in pdu.items() if k not in ("signatures", "unsigned")}
        redacted["content"] = {}
        self.assertEqual(compute_reference_hash(pdu, V["10"]),
                         hashlib.sha256(canonical_json(redacted)).digest())

    def test_redacted_away_keys_do_not_change_id(self) -> None:
        """Changing body, unsigned or signatures leaves the ID; it follows via the hash only."""
        pdu = message_pdu()
        base = compute_event_id(pdu, V["10"])
        # Same hashes, different body: a redacted copy has the same ID.
        self.assertEqual(compute_event_id({**pdu, "content": {"body": "other"}}, V["10"]), base)
        self.assertEqual(compute_event_id({**pdu, "unsigned": {"age": 1}}, V["10"]), base)
        self.assertEqual(compute_event_id({**pdu, "signatures": {"a": {"b": "c"}}}, V["10"]),
                         base)
        self.assertEqual(compute_event_id({**pdu, "extra_key": 1}, V["10"]), base)
        # Re-hashing the changed body changes `hashes`, which is kept: a new ID.
        rehashed = add_content_hash({**pdu, "content": {"body": "other"}})
        self.assertNotEqual(compute_event_id(rehashed, V["10"]), base)

    def test_kept_keys_change_id(self) -> None:
        """Changing a protected key (sender, depth, prev_events, membership) changes the ID."""
        pdu = message_pdu()
        base = compute_event_id(pdu, V["10"])
        for change in ({"sender": "@v:example.org"}, {"depth": 6}, {"prev_events": ["$x"]},
                       {"origin_server_ts": 1}, {"room_id": "!other:example.org"}):
            with self.subTest(change=change):
                self.assertNotEqual(compute_event_id({**pdu, **change}, V["10"]), base)

    def test_version_specific_kept_keys(self) -> None:
        """`origin` counts for the ID in v10 but not in v11 (redacted away there)."""
        pdu = message_pdu(origin="example.org")
        other = {**pdu, "origin": "elsewhere.example"}
        self.assertNotEqual(compute_event_id(pdu, V["10"]), compute_event_id(other, V["10"]))
        self.assertEqual(compute_event_id(pdu, V["11"]), compute_event_id(other, V["11"]))

    def test_v12_create_event_id_is_room_id(self) -> None:
        """A v12 create event (no room_id) gets an ID; `Event.from_pdu` derives `!` + hash."""
        create = add_content_hash({
            "type": "m.room.create", "state_key": "", "sender": "@u:example.org",
            "content": {"room_version": "12"}, "depth": 1, "origin_server_ts": 1,
            "prev_events": [], "auth_events": [], "hashes": {}, "signatures": {},
        })
        event_id = compute_event_id(create, V["12"])
        self.assertRegex(event_id, self.URLSAFE_ID)
        event = Event.from_pdu(create, V["12"])
        self.assertEqual(event.event_id, event_id)
        self.assertEqual(event.room_id, "!" + event_id[1:])


if __name__ == "__main__":
    unittest.main()
