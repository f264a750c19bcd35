"""End-to-end keys across two real server processes: a user on A queries and claims the
keys of a user on B (and back), and B's device-list change reaches A's /sync."""

from __future__ import annotations

import time
import unittest
from typing import Any

from tests.api.e2e_helpers import SIG, cross_signing_key, device_keys, sign
from tests.integration.federation_pair import Client, ServerPairScenarios, q


def upload_keys(client: Client, tag: str) -> str:
    """Upload signed device keys and two one-time keys for the client's device; returns
    the device ID."""
    device_id = str(client.ok("GET", "/account/whoami")["device_id"])
    keys, _ = device_keys(client.user_id, device_id)
    answer = client.ok("POST", "/keys/upload", {
        "device_keys": keys,
        "one_time_keys": {f"signed_curve25519:{tag}{i}": {"signatures": SIG, "key": f"otk-{tag}-{i}"}
                          for i in range(2)}})
    assert answer["one_time_key_counts"]["signed_curve25519"] == 2, answer
    return device_id


class TwoServerKeyScenarios(ServerPairScenarios):
    """Run by a TestCase whose `make_b()` gives the second server (Axon here, Synapse in
    tests/interop/test_synapse_e2e.py)."""


    def test_query_and_claim_across(self) -> None:
        """Each side reads the other's device keys and claims its one-time keys."""
        alice_device = upload_keys(self.alice, "a")
        bob_device = upload_keys(self.bob, "b")
        for me, other, device, tag in ((self.alice, self.bob, bob_device, "b"),
                                       (self.bob, self.alice, alice_device, "a")):
            # A server that already tracks the user (they shared a room in an earlier
            # test) answers from its cache, which the device-list EDU updates a moment
            # after the upload: wait for it, as a client waits for device_lists.changed.
            deadline = time.monotonic() + 20
            while True:
                answer = me.ok("POST", "/keys/query", {"device_keys": {other.user_id: []},
                                                       "timeout": 15000})
                self.assertEqual(answer.get("failures"), {}, f"{answer}\n{self.logs()}")
                if device in answer["device_keys"].get(other.user_id, {}) \
                        or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            served = answer["device_keys"][other.user_id][device]
            self.assertEqual(served["device_id"], device)
            claimed = me.ok("POST", "/keys/claim", {
                "one_time_keys": {other.user_id: {device: "signed_curve25519"}},
                "timeout": 15000})
            keys = claimed["one_time_keys"][other.user_id][device]
            (key_id,) = keys
            self.assertTrue(key_id.startswith(f"signed_curve25519:{tag}"), claimed)
        counts = self.alice.ok("POST", "/keys/upload", {})["one_time_key_counts"]
        self.assertEqual(counts["signed_curve25519"], 1)

    def test_cross_signing_keys_across(self) -> None:
        """Each side's master key is served to the other (directly, or from the cache
        once the m.signing_key_update arrived)."""
        masters = {self.alice.user_id: upload_cross_signing(self.alice),
                   self.bob.user_id: upload_cross_signing(self.bob)}
        for me, other in ((self.alice, self.bob), (self.bob, self.alice)):
            deadline = time.monotonic() + 20
            while True:
                answer = me.ok("POST", "/keys/query", {"device_keys": {other.user_id: []}})
                if answer.get("master_keys", {}).get(other.user_id) \
                        == masters[other.user_id] or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            self.assertEqual(answer["master_keys"][other.user_id], masters[other.user_id],
                             self.logs())
            self.assertNotIn(other.user_id, answer.get("user_signing_keys", {}))

    def test_device_change_reaches_room_mate(self) -> None:
        """B's user uploads keys for a new device; A's room-mate sees them changed and
        gets the new device from /keys/query."""
        room_id = self.alice.ok("POST", "/createRoom", {"preset": "public_chat"})["room_id"]
        code, body = self.bob.call(
            "POST", f"/join/{q(room_id)}?server_name={q(self.a.server_name)}", {})
        self.assertEqual(code, 200, f"{body}\n{self.logs()}")
        self.alice.sync()
        phone = Client.__new__(Client)
        phone.server, phone.user_id, phone.since = self.b, self.bob.user_id, None
        phone.token = self.b.login("bob", "bob-password-1")
        device = upload_keys(phone, "p")
        self.alice.wait_for(lambda a: self.bob.user_id in a.get("device_lists", {})
                            .get("changed", []), timeout=30)
        answer = self.alice.ok("POST", "/keys/query", {"device_keys": {self.bob.user_id: []}})
        self.assertIn(device, answer["device_keys"][self.bob.user_id], self.logs())


def upload_cross_signing(client: Client) -> dict[str, Any]:
    """Upload a master and a self-signing key (the first upload needs no UIA)."""
    master, master_key = cross_signing_key(client.user_id, "master")
    ssk, _ = cross_signing_key(client.user_id, "self_signing")
    ssk = sign(ssk, client.user_id, master_key)
    client.ok("POST", "/keys/device_signing/upload",
              {"master_key": master, "self_signing_key": ssk})
    return master


class TwoAxonKeysTestCase(TwoServerKeyScenarios, unittest.TestCase):
    pass
