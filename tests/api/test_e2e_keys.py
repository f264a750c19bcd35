"""`/keys/upload`, `/keys/query`, `/keys/claim`, `/keys/changes` and the key fields of
/sync."""

from __future__ import annotations

from typing import Any

from handlers.e2e_keys import MAX_ONE_TIME_KEYS
from tests.api.e2e_helpers import CLIENT, SIG, E2eHelpers, device_keys, sign
from tests.api.room_helpers import RoomHelpers
from tests.harness import HomeserverTestCase


class E2eKeysTestCase(E2eHelpers, RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice", device_id="ALICE1")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob", device_id="BOB1")
        self.alice_keys, self.alice_key = device_keys(self.alice, "ALICE1")

    # -- upload --

    def test_upload_and_query_device_keys(self) -> None:
        """Uploaded device keys are served by /keys/query with the device's display name."""
        self.make_request("PUT", f"{CLIENT}/devices/ALICE1", {"display_name": "Phone"},
                          access_token=self.alice_token)
        self.assertEqual(self.upload_ok(self.alice_token, {"device_keys": self.alice_keys}),
                         {"signed_curve25519": 0})
        body = self.query(self.bob_token, {self.alice: []})
        served = body["device_keys"][self.alice]["ALICE1"]
        self.assertEqual({k: v for k, v in served.items() if k != "unsigned"},
                         self.alice_keys)
        self.assertEqual(served["unsigned"], {"device_display_name": "Phone"})
        self.assertEqual(body["failures"], {})

    def test_devices_without_keys_are_left_out(self) -> None:
        """A device that never uploaded keys is not in the answer; the user still is."""
        body = self.query(self.alice_token, {self.bob: []})
        self.assertEqual(body["device_keys"], {self.bob: {}})

    def test_query_named_devices_only(self) -> None:
        """A non-empty device list restricts the answer to those devices."""
        token2 = self.login("alice", device_id="ALICE2")
        keys2, _ = device_keys(self.alice, "ALICE2")
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        self.upload_ok(token2, {"device_keys": keys2})
        self.assertEqual(set(self.query(self.bob_token, {self.alice: []})
                             ["device_keys"][self.alice]), {"ALICE1", "ALICE2"})
        self.assertEqual(set(self.query(self.bob_token, {self.alice: ["ALICE2"]})
                             ["device_keys"][self.alice]), {"ALICE2"})

    def test_identical_reupload_is_fine_different_is_refused(self) -> None:
        """Re-uploading the same device keys (also with other signatures) succeeds;
        different keys get 400 and the stored keys stay."""
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        _, extra_key = device_keys(self.alice, "OTHER")
        self.upload_ok(self.alice_token, {"device_keys": sign(self.alice_keys, "@x:test",
                                                              extra_key)})
        other, _ = device_keys(self.alice, "ALICE1")
        self.assert_error(self.upload(self.alice_token, {"device_keys": other}),
                          400, "M_INVALID_PARAM")
        served = self.query(self.bob_token, {self.alice: []})["device_keys"][self.alice]
        self.assertEqual(served["ALICE1"]["keys"], self.alice_keys["keys"])

    def test_unsigned_or_badly_signed_keys_are_refused(self) -> None:
        """Device keys without the device's signature, or with a wrong one, get 400
        M_INVALID_SIGNATURE and nothing is stored."""
        unsigned = {k: v for k, v in self.alice_keys.items() if k != "signatures"}
        unsigned["signatures"] = {}
        self.assert_error(self.upload(self.alice_token, {"device_keys": unsigned}),
                          400, "M_INVALID_SIGNATURE")
        tampered = {**self.alice_keys, "algorithms": ["m.megolm.v1.aes-sha2"]}
        self.assert_error(self.upload(self.alice_token, {"device_keys": tampered}),
                          400, "M_INVALID_SIGNATURE")
        _, stranger = device_keys(self.alice, "ALICE1")
        forged = sign({k: v for k, v in self.alice_keys.items() if k != "signatures"},
                      self.alice, stranger)
        self.assert_error(self.upload(self.alice_token, {"device_keys": forged}),
                          400, "M_INVALID_SIGNATURE")
        self.assertEqual(self.query(self.bob_token, {self.alice: []})["device_keys"],
                         {self.alice: {}})

    def test_keys_of_another_user_or_device_are_refused(self) -> None:
        """Device keys naming another user or another device get 400 M_INVALID_PARAM."""
        bobs, _ = device_keys(self.bob, "BOB1")
        self.assert_error(self.upload(self.alice_token, {"device_keys": bobs}),
                          400, "M_INVALID_PARAM")
        other_device, _ = device_keys(self.alice, "ALICE9")
        self.assert_error(self.upload(self.alice_token, {"device_keys": other_device}),
                          400, "M_INVALID_PARAM")

    def test_malformed_bodies(self) -> None:
        """Malformed key IDs, algorithms and types get 400 M_BAD_JSON."""
        for body in ({"one_time_keys": {"nocolon": "abc"}},
                     {"one_time_keys": {":AAAA": "abc"}},
                     {"one_time_keys": {"signed_curve25519:AAAA": 5}},
                     {"one_time_keys": {"signed_curve25519:AAAA": {"signatures": {}}}},
                     {"device_keys": {**self.alice_keys, "keys": []}},
                     {"device_keys": {**self.alice_keys, "algorithms": ["bad alg"]}},
                     {"fallback_keys": []}):
            self.assert_error(self.upload(self.alice_token, body), 400, "M_BAD_JSON")

    def test_oversized_upload_is_refused(self) -> None:
        """More than 1,000 one-time keys in one request is 400, nothing stored."""
        keys = {f"signed_curve25519:K{i}": "x" for i in range(1001)}
        self.assert_error(self.upload(self.alice_token, {"one_time_keys": keys}),
                          400, "M_BAD_JSON")
        self.assertEqual(self.upload_ok(self.alice_token, {}), {"signed_curve25519": 0})

    def test_one_time_key_counts_and_conflicts(self) -> None:
        """Counts per algorithm; a retried key is fine, a reused ID with another key is
        400 and stores nothing of that upload."""
        keys = {f"signed_curve25519:K{i}": {"key": f"key{i}", "signatures": {
            self.alice: {"ed25519:ALICE1": "sig"}}} for i in range(3)}
        self.assertEqual(self.upload_ok(self.alice_token, {"one_time_keys": keys}),
                         {"signed_curve25519": 3})
        self.assertEqual(self.upload_ok(self.alice_token, {"one_time_keys": keys}),
                         {"signed_curve25519": 3})
        self.assertEqual(self.upload_ok(self.alice_token,
                                        {"one_time_keys": {"curve25519:U1": "plain"}}),
                         {"signed_curve25519": 3, "curve25519": 1})
        clash = {"signed_curve25519:K0": {"signatures": SIG, "key": "other"}, "signed_curve25519:K9": "x"}
        self.assert_error(self.upload(self.alice_token, {"one_time_keys": clash}),
                          400, "M_INVALID_PARAM")
        self.assertEqual(self.upload_ok(self.alice_token, {}),
                         {"signed_curve25519": 3, "curve25519": 1})

    def test_one_time_key_cap_refuses(self) -> None:
        """An upload that would leave more than 500 unclaimed keys of an algorithm is
        refused with M_TOO_LARGE (as Synapse), and nothing of it is stored."""
        first = {f"signed_curve25519:A{i}": f"k{i}" for i in range(MAX_ONE_TIME_KEYS - 1)}
        self.upload_ok(self.alice_token, {"one_time_keys": first})
        more = {"signed_curve25519:B1": "x", "signed_curve25519:B2": "y"}
        self.assert_error(self.upload(self.alice_token, {"one_time_keys": more}),
                          400, "M_TOO_LARGE")
        self.assertEqual(self.upload_ok(self.alice_token, {}),
                         {"signed_curve25519": MAX_ONE_TIME_KEYS - 1})
        self.assertEqual(self.upload_ok(self.alice_token, {"one_time_keys": {
            "signed_curve25519:B1": "x"}}), {"signed_curve25519": MAX_ONE_TIME_KEYS})

    def test_token_without_device(self) -> None:
        """/keys/upload needs a device: a deleted device's token is refused."""
        self.get_success(self.hs.get_device_handler().delete_devices(self.alice, ["ALICE1"]))
        channel = self.upload(self.alice_token, {"device_keys": self.alice_keys})
        self.assertEqual(channel.code, 401, channel.result)

    # -- claim --

    def test_claim_one_time_then_fallback(self) -> None:
        """A claim takes a one-time key (gone afterwards), then the fallback key, which
        stays claimable and is reported used in /sync."""
        self.upload_ok(self.alice_token, {
            "one_time_keys": {"signed_curve25519:OTK1": {"signatures": SIG, "key": "one"}},
            "fallback_keys": {"signed_curve25519:FB1": {"signatures": SIG, "key": "fb", "fallback": True}}})
        self.assertEqual(self.sync_field("device_unused_fallback_key_types"),
                         ["signed_curve25519"])
        want = {self.alice: {"ALICE1": "signed_curve25519"}}
        self.assertEqual(self.claim(self.bob_token, want)["one_time_keys"],
                         {self.alice: {"ALICE1": {"signed_curve25519:OTK1": {"signatures": SIG, "key": "one"}}}})
        fallback = {self.alice: {"ALICE1": {"signed_curve25519:FB1": {
            "signatures": SIG, "key": "fb", "fallback": True}}}}
        self.assertEqual(self.claim(self.bob_token, want)["one_time_keys"], fallback)
        self.assertEqual(self.claim(self.bob_token, want)["one_time_keys"], fallback)
        self.assertEqual(self.sync_field("device_unused_fallback_key_types"), [])
        self.assertEqual(self.sync_field("device_one_time_keys_count"),
                         {"signed_curve25519": 0})

    def test_unstable_fallback_name_and_reupload(self) -> None:
        """`org.matrix.msc2732.fallback_keys` is accepted; a new fallback key is unused."""
        self.upload_ok(self.alice_token, {"org.matrix.msc2732.fallback_keys": {
            "signed_curve25519:F1": {"signatures": SIG, "key": "a", "fallback": True}}})
        self.claim(self.bob_token, {self.alice: {"ALICE1": "signed_curve25519"}})
        self.assertEqual(
            self.sync_field("org.matrix.msc2732.device_unused_fallback_key_types"), [])
        self.upload_ok(self.alice_token, {"fallback_keys": {
            "signed_curve25519:F2": {"signatures": SIG, "key": "b", "fallback": True}}})
        self.assertEqual(self.sync_field("device_unused_fallback_key_types"),
                         ["signed_curve25519"])

    def test_claim_unknown_gives_nothing(self) -> None:
        """Devices without keys and unknown users give an empty answer, not an error."""
        body = self.claim(self.bob_token, {self.alice: {"ALICE1": "signed_curve25519"},
                                           "@nobody:test": {"X": "signed_curve25519"}})
        self.assertEqual(body, {"one_time_keys": {}, "failures": {}})

    def test_sync_counts(self) -> None:
        """/sync reports the device's own unclaimed one-time keys."""
        self.upload_ok(self.alice_token, {"one_time_keys": {
            "signed_curve25519:A": "x", "signed_curve25519:B": "y"}})
        self.assertEqual(self.sync_field("device_one_time_keys_count"),
                         {"signed_curve25519": 2})

    # -- deletion and device lists --

    def test_deleted_device_loses_keys(self) -> None:
        """Deleting a device deletes its device keys and one-time keys."""
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys,
                                          "one_time_keys": {"signed_curve25519:A": "x"}})
        self.get_success(self.hs.get_device_handler().delete_devices(self.alice, ["ALICE1"]))
        self.assertEqual(self.query(self.bob_token, {self.alice: []})["device_keys"],
                         {self.alice: {}})
        self.assertEqual(self.claim(self.bob_token, {self.alice: {
            "ALICE1": "signed_curve25519"}})["one_time_keys"], {})
        store = self.hs.get_datastores().e2e_keys
        self.assertEqual(self.get_success(store.count_one_time_keys(self.alice, "ALICE1")),
                         {})

    def test_key_upload_marks_device_list_changed(self) -> None:
        """New device keys put the uploader in a room-mate's /keys/changes and /sync
        `device_lists.changed`; an identical re-upload does not."""
        room = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, room)
        since = self.sync(self.bob_token)["next_batch"]
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        now = self.sync(self.bob_token, since)
        self.assertEqual(now["device_lists"]["changed"], [self.alice])
        channel = self.make_request(
            "GET", f"{CLIENT}/keys/changes?from={since}&to={now['next_batch']}",
            access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"changed": [self.alice], "left": []})
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        again = self.make_request(
            "GET", f"{CLIENT}/keys/changes?from={now['next_batch']}"
            f"&to={self.sync(self.bob_token)['next_batch']}", access_token=self.bob_token)
        self.assertEqual(again.json_body["changed"], [])

    def test_key_upload_wakes_room_mate_long_poll(self) -> None:
        """A room-mate's waiting /sync returns when new device keys are uploaded."""
        room = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, room)
        since = self.sync(self.bob_token)["next_batch"]
        channel = self.make_request("GET", f"{CLIENT}/sync?since={since}&timeout=30000",
                                    access_token=self.bob_token, await_result=False)
        self.assertIsNone(channel.response)
        self.upload_ok(self.alice_token, {"device_keys": self.alice_keys})
        self.pump()
        self.reactor.advance(0)
        self.pump()
        self.assertIsNotNone(channel.response)
        self.assertEqual(channel.json_body["device_lists"]["changed"], [self.alice])

    def test_changes_bad_tokens(self) -> None:
        """/keys/changes needs both tokens, and tokens of ours."""
        self.assert_error(self.make_request("GET", f"{CLIENT}/keys/changes?from=s1",
                                            access_token=self.bob_token),
                          400, "M_MISSING_PARAM")
        self.assert_error(self.make_request("GET", f"{CLIENT}/keys/changes?from=x&to=y",
                                            access_token=self.bob_token),
                          400, "M_INVALID_PARAM")

    # -- helpers --

    def sync(self, token: str, since: str | None = None) -> dict[str, Any]:
        path = f"{CLIENT}/sync?timeout=0" + (f"&since={since}" if since else "")
        channel = self.make_request("GET", path, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body
        return body

    def sync_field(self, field: str) -> Any:
        return self.sync(self.alice_token)[field]


class DeviceListPruneTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice", device_id="ALICE1")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob", device_id="BOB1")
        room = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, room)

    def rows(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.get_success(self.hs.get_datastores().db.execute(
            "rows", "SELECT user_id, device_id FROM device_lists_stream"))
        return rows

    def test_prune_keeps_newest_row_per_device(self) -> None:
        """Superseded rows go; each device keeps its newest, so "changed since" answers
        and the stream position are unchanged."""
        handler = self.hs.get_device_list_handler()
        old = (handler.get_current_key(),
               self.hs.get_datastores().events.get_room_max_stream_ordering())
        for name in ("a", "b", "c"):
            self.make_request("PUT", f"{CLIENT}/devices/ALICE1", {"display_name": name},
                              access_token=self.alice_token)
        position = handler.get_current_key()
        self.assertEqual(self.rows().count((self.alice, "ALICE1")), 4)
        self.get_success(handler.prune())
        self.assertEqual(self.rows().count((self.alice, "ALICE1")), 1)
        self.assertEqual(self.rows().count((self.bob, "BOB1")), 1)
        self.assertEqual(handler.get_current_key(), position)
        changed, _ = self.get_success(handler.get_changes_for_sync(
            self.bob, old[0], old[1], position, old[1]))
        self.assertEqual(changed, [self.alice])
