"""End-to-end keys over federation: `/user/keys/query`, `/user/keys/claim`,
`/user/devices` with keys, device-list and signing-key EDUs both ways, the remote
device-list cache (resync on a prev_id gap, pruning), and remote client queries."""

from __future__ import annotations

from typing import Any

from federation.client import FederationRequestError
from tests.api.e2e_helpers import SIG, E2eHelpers, device_keys, public_key
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.federation.fed_helpers import RemoteServer, join_remote_user, signed_request
from tests.federation.test_sender import FakeFederationClient
from tests.harness import HomeserverTestCase

FED = "/_matrix/federation/v1"
RITA_DEVICES = f"{FED}/user/devices/%40rita%3Aremote.test"


class FakeKeysClient(FakeFederationClient):
    """Also answers GET/POST from `answers[(destination, path)]` (an exception is
    raised); records each call in `calls`."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, str, str, Any]] = []

    def _answer(self, method: str, destination: str, path: str, content: Any) -> Any:
        self.calls.append((method, destination, path, content))
        answer = self.answers.get((destination, path))
        if answer is None:
            raise FederationRequestError(destination, "connection refused")
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def get_json(self, destination: str, path: str, query: Any = None,
                       timeout: float = 60.0) -> Any:
        return self._answer("GET", destination, path, None)

    async def post_json(self, destination: str, path: str, content: Any,
                        timeout: float = 60.0) -> Any:
        return self._answer("POST", destination, path, content)


class E2eFederationTestCase(E2eHelpers, RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.client = FakeKeysClient()
        hs._parts["federation_client"] = self.client
        self.remote = RemoteServer("remote.test")
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice", device_id="ALICE1")
        self.alice_keys, self.alice_key = device_keys(self.alice, "ALICE1")
        self.rita = "@rita:remote.test"
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        join_remote_user(self, self.room_id, self.rita)
        self.pump()
        self.client.sent.clear()
        self.txn = 0

    def fed(self, method: str, path: str, body: Any = None) -> Any:
        return signed_request(self, self.remote, method, f"{FED}{path}", body)

    def edus(self, edu_type: str) -> list[dict[str, Any]]:
        return [e["content"] for t in self.client.to("remote.test") for e in t.body["edus"]
                if e["edu_type"] == edu_type]

    def send_edus(self, edus: list[Any]) -> None:
        self.txn += 1
        body = {"origin": "remote.test", "origin_server_ts": 0, "pdus": [], "edus": edus}
        channel = signed_request(self, self.remote, "PUT", f"{FED}/send/{self.txn}", body)
        self.assertEqual(channel.code, 200, channel.result)


class ServingKeysTests(E2eFederationTestCase):
    def test_keys_query_serves_keys_and_cross_signing(self) -> None:
        """Device keys, master and self-signing keys of local users; no user-signing
        key, and other servers' users are left out."""
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        keys = self.setup_cross_signing(self.alice, self.alice_token)
        channel = self.fed("POST", "/user/keys/query", {"device_keys": {
            self.alice: [], "@rita:remote.test": []}})
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["device_keys"][self.alice]["ALICE1"]["keys"],
                         self.alice_keys["keys"])
        self.assertNotIn(self.rita, body["device_keys"])
        self.assertEqual(body["master_keys"][self.alice], keys["master"][0])
        self.assertEqual(body["self_signing_keys"][self.alice], keys["self_signing"][0])
        self.assertNotIn("user_signing_keys", body)

    def test_keys_claim(self) -> None:
        """A claim hands out a one-time key, then the fallback key."""
        self.upload_ok(self.alice_token, {
            "one_time_keys": {"signed_curve25519:A": {"signatures": SIG, "key": "a"}},
            "fallback_keys": {"signed_curve25519:F": {"signatures": SIG, "key": "f", "fallback": True}}})
        query = {"one_time_keys": {self.alice: {"ALICE1": "signed_curve25519"},
                                   self.rita: {"X": "signed_curve25519"}}}
        first = self.fed("POST", "/user/keys/claim", query).json_body
        self.assertEqual(first, {"one_time_keys": {self.alice: {"ALICE1": {
            "signed_curve25519:A": {"signatures": SIG, "key": "a"}}}}})
        second = self.fed("POST", "/user/keys/claim", query).json_body
        self.assertEqual(list(second["one_time_keys"][self.alice]["ALICE1"]),
                         ["signed_curve25519:F"])

    def test_oversized_query_is_refused(self) -> None:
        """A federation key query for more than 1,000 users is 400."""
        users = {f"@u{i}:test": [] for i in range(1001)}
        self.assert_error(self.fed("POST", "/user/keys/query", {"device_keys": users}),
                          400, "M_BAD_JSON")

    def test_user_devices_with_keys(self) -> None:
        """`/user/devices` lists keys and the master and self-signing keys."""
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        keys = self.setup_cross_signing(self.alice, self.alice_token)
        body = self.fed("GET", f"/user/devices/{self.alice}").json_body
        self.assertEqual(body["devices"][0]["keys"]["keys"], self.alice_keys["keys"])
        self.assertEqual(body["master_key"], keys["master"][0])
        self.assertEqual(body["self_signing_key"], keys["self_signing"][0])
        self.assertNotIn("user_signing_key", body)


class OutboundEduTests(E2eFederationTestCase):
    def test_key_upload_sends_device_list_update_with_keys(self) -> None:
        """New device keys go out in an m.device_list_update chained by prev_id."""
        lists = self.hs.get_datastores().device_lists
        prev = self.get_success(lists.get_last_position_for_user(self.alice))
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        self.pump()
        (edu,) = self.edus("m.device_list_update")
        self.assertEqual(edu["keys"]["keys"], self.alice_keys["keys"])
        self.assertEqual(edu["prev_id"], [prev])
        self.assertEqual(edu["stream_id"], lists.get_current_position())

    def test_cross_signing_upload_sends_signing_key_update(self) -> None:
        """Cross-signing keys go out as m.signing_key_update, without the user-signing
        key."""
        keys = self.setup_cross_signing(self.alice, self.alice_token)
        self.pump()
        (edu,) = self.edus("m.signing_key_update")
        self.assertEqual(edu, {"user_id": self.alice, "master_key": keys["master"][0],
                               "self_signing_key": keys["self_signing"][0]})

    def test_signed_device_goes_out_with_the_signature(self) -> None:
        """Signing one's device with the self-signing key sends the device's keys again,
        now carrying that signature."""
        from tests.api.e2e_helpers import sign

        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        keys = self.setup_cross_signing(self.alice, self.alice_token)
        self.pump()
        self.client.sent.clear()
        signed = sign(self.alice_keys, self.alice, keys["self_signing"][1])
        channel = self.make_request("POST", f"{CLIENT}/keys/signatures/upload",
                                    {self.alice: {"ALICE1": signed}},
                                    access_token=self.alice_token)
        self.assertEqual(channel.json_body, {"failures": {}})
        self.pump()
        (edu,) = self.edus("m.device_list_update")
        ssk_id = f"ed25519:{public_key(keys['self_signing'][1])}"
        self.assertIn(ssk_id, edu["keys"]["signatures"][self.alice])
        self.assertEqual(self.edus("m.signing_key_update"), [])

    def test_device_deletion_sends_deleted(self) -> None:
        """Deleting a device sends `deleted: true`."""
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        self.get_success(self.hs.get_device_handler().delete_devices(self.alice, ["ALICE1"]))
        self.pump()
        last = self.edus("m.device_list_update")[-1]
        self.assertTrue(last["deleted"])
        self.assertNotIn("keys", last)


    def test_several_devices_get_chained_positions(self) -> None:
        """Devices changed together get one position each, each EDU's prev_id the one
        before, the first the position /user/devices reported."""
        self.login("alice", device_id="D2")
        self.login("alice", device_id="D3")
        before = self.fed("GET", f"/user/devices/{self.alice}").json_body["stream_id"]
        self.setup_cross_signing(self.alice, self.alice_token)  # not in the chain
        self.pump()
        self.client.sent.clear()
        self.get_success(self.hs.get_device_handler().delete_devices(
            self.alice, ["D2", "D3"]))
        self.pump()
        chain = [(e["device_id"], e["stream_id"], e["prev_id"])
                 for e in self.edus("m.device_list_update")]
        self.assertEqual([c[0] for c in chain], ["D2", "D3"])
        self.assertEqual(chain[0][2], [before])
        self.assertEqual(chain[1][2], [chain[0][1]])
        self.assertGreater(chain[1][1], chain[0][1])
        after = self.fed("GET", f"/user/devices/{self.alice}").json_body["stream_id"]
        self.assertEqual(after, chain[1][1])


class RemoteCacheTests(E2eFederationTestCase):
    def rita_devices(self, stream_id: int, *device_ids: str) -> dict[str, Any]:
        return {"user_id": self.rita, "stream_id": stream_id, "devices": [
            {"device_id": d, "keys": device_keys(self.rita, d)[0]} for d in device_ids]}

    def resyncs(self) -> int:
        return sum(1 for c in self.client.calls
                   if c[:3] == ("GET", "remote.test", RITA_DEVICES))

    def edu(self, device_id: str, stream_id: int, prev_id: list[int],
            **extra: Any) -> dict[str, Any]:
        return {"edu_type": "m.device_list_update", "content": {
            "user_id": self.rita, "device_id": device_id, "stream_id": stream_id,
            "prev_id": prev_id, **extra}}

    def test_first_update_resyncs_then_follows(self) -> None:
        """An update for an uncached user resyncs; one whose prev_id we know is applied
        as is; one after a gap resyncs again. /keys/query then answers from the cache."""
        self.client.answers[("remote.test", RITA_DEVICES)] = \
            self.rita_devices(5, "R1")
        self.send_edus([self.edu("R1", 5, [4])])
        self.assertEqual(self.resyncs(), 1)
        r2, _ = device_keys(self.rita, "R2")
        self.send_edus([self.edu("R2", 6, [5], keys=r2)])
        self.assertEqual(self.resyncs(), 1)
        body = self.query(self.alice_token, {self.rita: []})
        self.assertEqual(set(body["device_keys"][self.rita]), {"R1", "R2"})
        self.assertEqual(body["device_keys"][self.rita]["R2"]["keys"], r2["keys"])
        self.assertFalse(any(c[0] == "POST" for c in self.client.calls))
        self.client.answers[("remote.test", RITA_DEVICES)] = \
            self.rita_devices(9, "R3")
        self.send_edus([self.edu("R3", 9, [8])])  # 7 and 8 were missed
        self.assertEqual(self.resyncs(), 2)
        body = self.query(self.alice_token, {self.rita: []})
        self.assertEqual(set(body["device_keys"][self.rita]), {"R3"})

    def test_deleted_device_and_signing_key_update(self) -> None:
        """`deleted` removes the device from the cache; m.signing_key_update replaces
        the cached master key."""
        self.client.answers[("remote.test", RITA_DEVICES)] = \
            self.rita_devices(5, "R1", "R2")
        self.send_edus([self.edu("R1", 5, [])])
        self.send_edus([self.edu("R2", 6, [5], deleted=True)])
        master = {"user_id": self.rita, "usage": ["master"], "keys": {"ed25519:M": "M"}}
        self.send_edus([{"edu_type": "m.signing_key_update", "content": {
            "user_id": self.rita, "master_key": master}}])
        body = self.query(self.alice_token, {self.rita: []})
        self.assertEqual(set(body["device_keys"][self.rita]), {"R1"})
        self.assertEqual(body["master_keys"][self.rita], master)

    def test_cache_dropped_when_no_room_is_shared(self) -> None:
        """Once rita shares no room with a local user, the prune drops her cache."""
        self.client.answers[("remote.test", RITA_DEVICES)] = \
            self.rita_devices(5, "R1")
        self.send_edus([self.edu("R1", 5, [])])
        store = self.hs.get_datastores().e2e_keys
        self.assertIsNotNone(self.get_success(store.get_remote_device_list(self.rita)))
        self.leave(self.alice, self.room_id)
        self.get_success(self.hs.get_device_list_handler().prune())
        self.assertIsNone(self.get_success(store.get_remote_device_list(self.rita)))


class RemoteClientQueryTests(E2eFederationTestCase):
    def test_query_and_claim_go_to_the_remote_server(self) -> None:
        """Uncached remote users are asked over federation; only the asked users' own
        keys are kept; an unreachable server is listed in `failures`."""
        r1, _ = device_keys(self.rita, "R1")
        forged, _ = device_keys("@mallory:remote.test", "M1")
        self.client.answers[("remote.test", f"{FED}/user/keys/query")] = {
            "device_keys": {self.rita: {"R1": r1, "BAD": r1},
                            "@mallory:remote.test": {"M1": forged}},
            "master_keys": {self.rita: {"user_id": self.rita, "usage": ["master"],
                                        "keys": {"ed25519:K": "K"}}}}
        channel = self.make_request("POST", f"{CLIENT}/keys/query", {"device_keys": {
            self.rita: [], "@zed:down.test": []}}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["device_keys"], {self.rita: {"R1": r1}})
        self.assertIn(self.rita, body["master_keys"])
        self.assertEqual(list(body["failures"]), ["down.test"])
        self.client.answers[("remote.test", f"{FED}/user/keys/claim")] = {
            "one_time_keys": {self.rita: {"R1": {"signed_curve25519:A": {"signatures": SIG, "key": "a"}}}}}
        channel = self.make_request("POST", f"{CLIENT}/keys/claim", {"one_time_keys": {
            self.rita: {"R1": "signed_curve25519"}}}, access_token=self.alice_token)
        self.assertEqual(channel.json_body, {"one_time_keys": {self.rita: {"R1": {
            "signed_curve25519:A": {"signatures": SIG, "key": "a"}}}}, "failures": {}})
        posted = [c for c in self.client.calls if c[0] == "POST"]
        self.assertEqual(posted[-1][3], {"one_time_keys": {
            self.rita: {"R1": "signed_curve25519"}}})

    def test_signing_a_remote_master_key(self) -> None:
        """A user-signing signature over a remote user's master key is checked against
        the key fetched from her server."""
        from tests.api.e2e_helpers import cross_signing_key, sign

        master, _ = cross_signing_key(self.rita, "master")
        pub = next(iter(master["keys"].values()))
        self.client.answers[("remote.test", f"{FED}/user/keys/query")] = {
            "device_keys": {self.rita: {}}, "master_keys": {self.rita: master}}
        mine = self.setup_cross_signing(self.alice, self.alice_token)
        since = self.make_request("GET", f"{CLIENT}/sync",
                                  access_token=self.alice_token).json_body["next_batch"]
        signed = sign(master, self.alice, mine["user_signing"][1])
        channel = self.make_request("POST", f"{CLIENT}/keys/signatures/upload",
                                    {self.rita: {pub: signed}}, access_token=self.alice_token)
        self.assertEqual(channel.json_body, {"failures": {}})
        # Alice's clients learn that Rita's keys (as Alice sees them) changed.
        changed = self.make_request(
            "GET", f"{CLIENT}/sync?since={since}&timeout=0",
            access_token=self.alice_token).json_body.get("device_lists", {}).get("changed", [])
        self.assertIn(self.rita, changed)
        self.assertTrue(public_key(mine["user_signing"][1]))
        # Her server does not know of Alice's signature: Alice's own query shows it
        # (that is how her client learns whom she has verified); Bob's does not.
        usk_id = next(iter(mine["user_signing"][0]["keys"]))
        channel = self.make_request("POST", f"{CLIENT}/keys/query",
                                    {"device_keys": {self.rita: []}},
                                    access_token=self.alice_token)
        sigs = channel.json_body["master_keys"][self.rita]["signatures"]
        self.assertEqual(sigs[self.alice][usk_id], signed["signatures"][self.alice][usk_id])
        self.register_user("bobby")
        bob_token = self.login("bobby")
        channel = self.make_request("POST", f"{CLIENT}/keys/query",
                                    {"device_keys": {self.rita: []}}, access_token=bob_token)
        self.assertNotIn(self.alice,
                         channel.json_body["master_keys"][self.rita].get("signatures", {}))
