"""X-Matrix request signing: round trips, tampering, wrong keys, header parsing."""

from __future__ import annotations

import unittest

import signedjson.key
import signedjson.sign

from federation.auth import (
    SignatureVerifyException,
    XMatrixAuth,
    parse_x_matrix,
    sign_request,
    verify_request,
)
from homeserver.keys import SigningKey

URI = "/_matrix/federation/v1/send/txn1?foo=bar"
CONTENT = {"pdus": [], "edus": [{"edu_type": "m.typing", "content": {"x": "é"}}]}


def make_key(version: str = "k1") -> SigningKey:
    return SigningKey(key=signedjson.key.generate_signing_key(version), version=version)


class SignAndVerifyTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.key = make_key()
        self.verify_key = self.key.key.verify_key

    def sign(self, method: str = "PUT", uri: str = URI, content: object = CONTENT) -> XMatrixAuth:
        header = sign_request("origin.example", "dest.example:8448", method, uri, content,
                              self.key)
        return parse_x_matrix(header)

    def test_header_shape(self) -> None:
        """The sender follows the compatibility rules: one space, lower-case, no spaces."""
        header = sign_request("origin.example", "dest.example", "GET", URI, None, self.key)
        self.assertRegex(
            header,
            r'^X-Matrix origin="origin\.example",destination="dest\.example",'
            r'key="ed25519:k1",sig="[A-Za-z0-9+/]{86}"$')

    def test_round_trip(self) -> None:
        auth = self.sign()
        self.assertEqual(auth.origin, "origin.example")
        self.assertEqual(auth.destination, "dest.example:8448")
        self.assertEqual(auth.key, "ed25519:k1")
        verify_request(auth, "PUT", URI, CONTENT, self.verify_key)

    def test_round_trip_without_body(self) -> None:
        """A GET signs no `content`; verifying with a body (even `{}`) fails."""
        auth = self.sign("GET", URI, None)
        verify_request(auth, "GET", URI, None, self.verify_key)
        with self.assertRaises(SignatureVerifyException):
            verify_request(auth, "GET", URI, {}, self.verify_key)

    def test_signing_key_from_signedjson(self) -> None:
        """A bare signedjson key works as well as the server's SigningKey."""
        header = sign_request("o.example", "d.example", "GET", URI, None, self.key.key)
        verify_request(parse_x_matrix(header), "GET", URI, None, self.verify_key)

    def test_matches_spec_algorithm(self) -> None:
        """The signature is the JSON signature of {method, uri, origin, destination,
        content}, so signedjson verifies it independently."""
        auth = self.sign()
        signed = {"method": "PUT", "uri": URI, "origin": "origin.example",
                  "destination": "dest.example:8448", "content": CONTENT,
                  "signatures": {"origin.example": {auth.key: auth.sig}}}
        signedjson.sign.verify_signed_json(
            signed, "origin.example", signedjson.key.get_verify_key(self.key.key))

    def test_tampering_is_detected(self) -> None:
        auth = self.sign()
        cases = {
            "content": ("PUT", URI, {**CONTENT, "pdus": [{"x": 1}]}),
            "uri": ("PUT", "/_matrix/federation/v1/send/txn2?foo=bar", CONTENT),
            "query": ("PUT", "/_matrix/federation/v1/send/txn1", CONTENT),
            "method": ("POST", URI, CONTENT),
        }
        for what, (method, uri, content) in cases.items():
            with self.subTest(what), self.assertRaises(SignatureVerifyException):
                verify_request(auth, method, uri, content, self.verify_key)

    def test_tampered_header_fields(self) -> None:
        """origin and destination are covered by the signature."""
        auth = self.sign()
        for changed in (XMatrixAuth("evil.example", auth.key, auth.sig, auth.destination),
                        XMatrixAuth(auth.origin, auth.key, auth.sig, "other.example"),
                        XMatrixAuth(auth.origin, auth.key, auth.sig, None)):
            with self.subTest(changed), self.assertRaises(SignatureVerifyException):
                verify_request(changed, "PUT", URI, CONTENT, self.verify_key)

    def test_missing_destination_is_accepted_if_unsigned(self) -> None:
        """Older servers sign and send no destination; that still verifies."""
        signed = signedjson.sign.sign_json(
            {"method": "GET", "uri": URI, "origin": "old.example"}, "old.example", self.key.key)
        sig = signed["signatures"]["old.example"]["ed25519:k1"]
        auth = parse_x_matrix(f'X-Matrix origin=old.example,key="ed25519:k1",sig="{sig}"')
        self.assertIsNone(auth.destination)
        verify_request(auth, "GET", URI, None, self.verify_key)

    def test_wrong_key(self) -> None:
        auth = self.sign()
        with self.assertRaises(SignatureVerifyException):
            verify_request(auth, "PUT", URI, CONTENT, make_key("k2").key.verify_key)

    def test_bad_signature_values(self) -> None:
        auth = self.sign()
        for sig in ("not base64!", "AAAA", auth.sig[:-2]):
            with self.subTest(sig), self.assertRaises(SignatureVerifyException):
                verify_request(XMatrixAuth(auth.origin, auth.key, sig, auth.destination),
                               "PUT", URI, CONTENT, self.verify_key)

    def test_unsupported_algorithm(self) -> None:
        auth = self.sign()
        with self.assertRaises(SignatureVerifyException):
            verify_request(XMatrixAuth(auth.origin, "curve25519:k1", auth.sig,
                                       auth.destination), "PUT", URI, CONTENT, self.verify_key)


class ParseXMatrixTestCase(unittest.TestCase):
    EXPECTED = XMatrixAuth(origin="origin.example", key="ed25519:key1", sig="ABC+/def",
                           destination="dest.example:8448")

    def test_tolerated_forms(self) -> None:
        forms = [
            'X-Matrix origin="origin.example",destination="dest.example:8448",'
            'key="ed25519:key1",sig="ABC+/def"',
            # several spaces after the scheme, spaces/tabs around commas and '='
            'X-Matrix   origin="origin.example" ,\tdestination = "dest.example:8448" , '
            'key="ed25519:key1",  sig="ABC+/def"',
            # case-insensitive scheme and names, any order
            'x-matrix SIG="ABC+/def",Key="ed25519:key1",DESTINATION="dest.example:8448",'
            'Origin="origin.example"',
            # bare values, including colons (older servers)
            'X-Matrix origin=origin.example,destination=dest.example:8448,key=ed25519:key1,'
            'sig=ABC+/def',
            # backslash escapes are unescaped; unknown parameters ignored
            'X-Matrix origin="origin\\.example",destination="dest.example:8448",'
            'key="ed25519:key1",sig="ABC+/def",extra="a, \\"quoted\\" thing"',
        ]
        for form in forms:
            with self.subTest(form):
                self.assertEqual(parse_x_matrix(form), self.EXPECTED)
                self.assertEqual(parse_x_matrix(form.encode()), self.EXPECTED)

    def test_ipv6_origin(self) -> None:
        auth = parse_x_matrix('X-Matrix origin="[::1]:8448",key="ed25519:a",sig="x"')
        self.assertEqual(auth.origin, "[::1]:8448")
        self.assertIsNone(auth.destination)

    def test_malformed(self) -> None:
        bad = [
            "",
            "X-Matrix",
            "X-Matrix ",
            'Bearer origin="o.example",key="ed25519:a",sig="x"',
            'X-Matrixorigin="o.example",key="ed25519:a",sig="x"',
            'X-Matrix origin="o.example" key="ed25519:a",sig="x"',  # no comma
            'X-Matrix origin="o.example",key="ed25519:a",sig="x",',  # trailing comma
            'X-Matrix origin="o.example,key="ed25519:a",sig="x"',  # unbalanced quote
            'X-Matrix origin,key="ed25519:a",sig="x"',
            'X-Matrix key="ed25519:a",sig="x"',  # no origin
            'X-Matrix origin="o.example",sig="x"',  # no key
            'X-Matrix origin="o.example",key="ed25519:a"',  # no sig
            'X-Matrix origin="o.example",key="ed25519:a",sig=""',  # empty sig
            'X-Matrix origin="o.example",origin="p.example",key="ed25519:a",sig="x"',
            'X-Matrix origin="not a server",key="ed25519:a",sig="x"',
            'X-Matrix origin="o.example",destination="bad/dest",key="ed25519:a",sig="x"',
            'X-Matrix origin="o.example",key="nocolon",sig="x"',
        ]
        for header in bad:
            with self.subTest(header), self.assertRaises(ValueError):
                parse_x_matrix(header)
        with self.assertRaises(ValueError):
            parse_x_matrix(b'X-Matrix origin="\xff",key="ed25519:a",sig="x"')
