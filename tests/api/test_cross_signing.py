"""Cross-signing: `/keys/device_signing/upload` and `/keys/signatures/upload`, and the keys
and signatures `/keys/query` serves."""

from __future__ import annotations

from typing import Any

from tests.api.e2e_helpers import (
    CLIENT,
    E2eHelpers,
    cross_signing_key,
    device_keys,
    public_key,
    sign,
)
from tests.harness import HomeserverTestCase

UPLOAD = f"{CLIENT}/keys/device_signing/upload"
SIGNATURES = f"{CLIENT}/keys/signatures/upload"


class CrossSigningTestCase(E2eHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice", device_id="ALICE1")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob", device_id="BOB1")
        self.alice_keys, self.alice_device_key = device_keys(self.alice, "ALICE1")
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})

    def test_first_upload_needs_no_auth_and_is_served(self) -> None:
        """The first upload goes without UIA; the owner sees all three keys, another
        user the master and self-signing keys only."""
        keys = self.setup_cross_signing(self.alice, self.alice_token)
        own = self.query(self.alice_token, {self.alice: []})
        self.assertEqual(own["master_keys"][self.alice], keys["master"][0])
        self.assertEqual(own["self_signing_keys"][self.alice], keys["self_signing"][0])
        self.assertEqual(own["user_signing_keys"][self.alice], keys["user_signing"][0])
        other = self.query(self.bob_token, {self.alice: []})
        self.assertIn(self.alice, other["master_keys"])
        self.assertIn(self.alice, other["self_signing_keys"])
        self.assertEqual(other["user_signing_keys"], {})

    def test_replacing_keys_needs_auth(self) -> None:
        """With a master key stored, new keys need UIA (401, then the password); the
        same keys again need none."""
        keys = self.setup_cross_signing(self.alice, self.alice_token)
        same = {"master_key": keys["master"][0], "self_signing_key": keys["self_signing"][0]}
        channel = self.make_request("POST", UPLOAD, same, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        master, _ = cross_signing_key(self.alice, "master")
        channel = self.make_request("POST", UPLOAD, {"master_key": master},
                                    access_token=self.alice_token)
        self.assertEqual(channel.code, 401, channel.result)
        session = channel.json_body["session"]
        self.assertEqual(self.query(self.alice_token, {self.alice: []})["master_keys"]
                         [self.alice], keys["master"][0])
        channel = self.make_request("POST", UPLOAD, {"master_key": master, "auth": {
            "type": "m.login.password", "session": session, "password": "password",
            "identifier": {"type": "m.id.user", "user": "alice"}}},
            access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.query(self.alice_token, {self.alice: []})["master_keys"]
                         [self.alice], master)

    def test_bad_uploads(self) -> None:
        """Sub-keys not signed by the master key, keys of another user, wrong usage and
        a missing master key are refused with the spec's codes; nothing is stored."""
        master, master_key = cross_signing_key(self.alice, "master")
        ssk, _ = cross_signing_key(self.alice, "self_signing")
        self.assert_error(self.make_request(
            "POST", UPLOAD, {"master_key": master, "self_signing_key": ssk},
            access_token=self.alice_token), 400, "M_INVALID_SIGNATURE")
        bobs, _ = cross_signing_key(self.bob, "master")
        self.assert_error(self.make_request("POST", UPLOAD, {"master_key": bobs},
                                            access_token=self.alice_token),
                          400, "M_INVALID_PARAM")
        wrong_usage = {**master, "usage": ["self_signing"]}
        self.assert_error(self.make_request("POST", UPLOAD, {"master_key": wrong_usage},
                                            access_token=self.alice_token),
                          400, "M_INVALID_PARAM")
        self.assert_error(self.make_request(
            "POST", UPLOAD, {"self_signing_key": sign(ssk, self.alice, master_key)},
            access_token=self.alice_token), 400, "M_MISSING_PARAM")
        self.assert_error(self.make_request(
            "POST", UPLOAD, {"master_key": {**master, "keys": {"bad": "x"}}},
            access_token=self.alice_token), 400, "M_BAD_JSON")
        self.assertEqual(self.query(self.alice_token, {self.alice: []})["master_keys"], {})

    def test_device_signed_by_self_signing_key(self) -> None:
        """A device signature by the self-signing key is stored and merged into the
        device keys that /keys/query serves."""
        keys = self.setup_cross_signing(self.alice, self.alice_token)
        ssk_key = keys["self_signing"][1]
        signed = sign(self.alice_keys, self.alice, ssk_key)
        channel = self.make_request("POST", SIGNATURES, {self.alice: {"ALICE1": signed}},
                                    access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"failures": {}})
        served = self.query(self.bob_token, {self.alice: []})["device_keys"][self.alice]
        ssk_id = f"ed25519:{public_key(ssk_key)}"
        self.assertIn(ssk_id, served["ALICE1"]["signatures"][self.alice])
        self.assertIn("ed25519:ALICE1", served["ALICE1"]["signatures"][self.alice])

    def test_master_key_signed_by_device(self) -> None:
        """A device's signature over the master key appears on the served master key."""
        keys = self.setup_cross_signing(self.alice, self.alice_token)
        master = keys["master"][0]
        signed = sign(master, self.alice, self.alice_device_key)
        pub = public_key(keys["master"][1])
        channel = self.make_request("POST", SIGNATURES, {self.alice: {pub: signed}},
                                    access_token=self.alice_token)
        self.assertEqual(channel.json_body, {"failures": {}})
        served = self.query(self.bob_token, {self.alice: []})["master_keys"][self.alice]
        self.assertIn("ed25519:ALICE1", served["signatures"][self.alice])

    def test_other_users_master_signed_by_user_signing_key(self) -> None:
        """Bob's user-signing signature of alice's master key is shown to bob only."""
        alice_keys = self.setup_cross_signing(self.alice, self.alice_token)
        bob_keys = self.setup_cross_signing(self.bob, self.bob_token)
        master = alice_keys["master"][0]
        pub = public_key(alice_keys["master"][1])
        signed = sign(master, self.bob, bob_keys["user_signing"][1])
        channel = self.make_request("POST", SIGNATURES, {self.alice: {pub: signed}},
                                    access_token=self.bob_token)
        self.assertEqual(channel.json_body, {"failures": {}})
        usk_id = f"ed25519:{public_key(bob_keys['user_signing'][1])}"
        as_bob = self.query(self.bob_token, {self.alice: []})["master_keys"][self.alice]
        self.assertEqual(as_bob["signatures"][self.bob], {usk_id: signed["signatures"]
                                                          [self.bob][usk_id]})
        as_alice = self.query(self.alice_token, {self.alice: []})["master_keys"][self.alice]
        self.assertNotIn(self.bob, as_alice.get("signatures", {}))

    def test_bad_signatures_are_listed_in_failures(self) -> None:
        """A wrong signature, an unknown device and a changed object each get a failure
        entry; a good one in the same upload is still stored."""
        token2 = self.login("alice", device_id="ALICE2")
        keys2, _ = device_keys(self.alice, "ALICE2")
        self.upload_ok(token2, {"device_keys": keys2})
        keys = self.setup_cross_signing(self.alice, self.alice_token)
        ssk_key = keys["self_signing"][1]
        _, stranger = cross_signing_key(self.alice, "self_signing")
        stranger.version = public_key(ssk_key)  # claims the real key ID
        forged = sign(self.alice_keys, self.alice, stranger)
        changed = sign({**keys2, "algorithms": ["x"]}, self.alice, ssk_key)
        unknown = sign({**keys2, "device_id": "NOPE"}, self.alice, ssk_key)
        good = sign(keys2, self.alice, ssk_key)
        channel = self.make_request("POST", SIGNATURES, {self.alice: {
            "ALICE1": forged, "NOPE": unknown}}, access_token=self.alice_token)
        failures = channel.json_body["failures"][self.alice]
        self.assertEqual(failures["ALICE1"]["errcode"], "M_INVALID_SIGNATURE")
        self.assertEqual(failures["NOPE"]["errcode"], "M_NOT_FOUND")
        channel = self.make_request("POST", SIGNATURES, {self.alice: {"ALICE2": changed}},
                                    access_token=self.alice_token)
        self.assertEqual(channel.json_body["failures"][self.alice]["ALICE2"]["errcode"],
                         "M_INVALID_PARAM")
        channel = self.make_request("POST", SIGNATURES, {self.alice: {"ALICE2": good}},
                                    access_token=self.alice_token)
        self.assertEqual(channel.json_body, {"failures": {}})
        served = self.query(self.bob_token, {self.alice: []})["device_keys"][self.alice]
        ssk_id = f"ed25519:{public_key(ssk_key)}"
        self.assertIn(ssk_id, served["ALICE2"]["signatures"][self.alice])
        self.assertNotIn(ssk_id, served["ALICE1"]["signatures"][self.alice])

    def test_signature_without_cross_signing_keys(self) -> None:
        """Signing a device before uploading a self-signing key is a failure entry."""
        channel = self.make_request("POST", SIGNATURES, {self.alice: {
            "ALICE1": self.alice_keys}}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertIn("ALICE1", channel.json_body["failures"][self.alice])
