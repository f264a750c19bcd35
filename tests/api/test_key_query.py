"""Notary endpoints: POST /_matrix/key/v2/query and GET /_matrix/key/v2/query/{serverName}."""

from __future__ import annotations

from typing import Any

import signedjson.key
from signedjson.sign import verify_signed_json

from federation.keyring import KEY_SERVER_PATH
from tests.federation.key_helpers import DAY_MS, FakeServer, ScriptedFetcher
from tests.harness import DEFAULT_CONFIG, HomeserverTestCase

REMOTE = "remote.example"
OTHER = "other.example"


class KeyQueryTestCase(HomeserverTestCase):
    def make_config(self) -> dict[str, Any]:
        return {**DEFAULT_CONFIG, "trusted_key_servers": []}

    def prepare(self, reactor: Any, hs: Any) -> None:
        self.remote = FakeServer(REMOTE)
        self.other = FakeServer(OTHER, version="o1")
        self.fetcher = ScriptedFetcher()
        hs.get_keyring().set_fetcher(self.fetcher)
        self.now = hs.get_clock().time_msec()
        self.our_key = signedjson.key.get_verify_key(hs.get_signing_key().key)

    def serve(self, server: FakeServer, valid_for_ms: int = DAY_MS) -> dict[str, Any]:
        now = self.hs.get_clock().time_msec()
        response = server.key_response(now + valid_for_ms)
        self.fetcher.routes[(server.name, KEY_SERVER_PATH)] = response
        return response

    def assert_cosigned(self, entry: dict[str, Any], server: FakeServer) -> None:
        """Signed by the origin and by us, notary `test`."""
        verify_signed_json(entry, server.name, signedjson.key.get_verify_key(server.key))
        verify_signed_json(entry, "test", self.our_key)

    def query(self, server_name: str, qs: str = "") -> Any:
        channel = self.make_request("GET", f"/_matrix/key/v2/query/{server_name}{qs}")
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body["server_keys"]

    # -- GET --

    def test_get_fetches_caches_and_cosigns(self) -> None:
        sent = self.serve(self.remote)
        keys = self.query(REMOTE)
        self.assertEqual(len(keys), 1)
        entry = keys[0]
        self.assert_cosigned(entry, self.remote)
        self.assertEqual(entry["verify_keys"], sent["verify_keys"])
        self.assertEqual(entry["valid_until_ts"], sent["valid_until_ts"])
        self.assertEqual(len(self.fetcher.calls), 1)
        # Within half the lifetime: answered from the cache.
        self.reactor.advance(3600)
        self.assertEqual(len(self.query(REMOTE)), 1)
        self.assertEqual(len(self.fetcher.calls), 1)

    def test_refetch_after_half_life_and_stale_cache_when_down(self) -> None:
        self.serve(self.remote)
        first = self.query(REMOTE)[0]
        self.reactor.advance(13 * 3600)  # past half of the one-day lifetime
        refreshed = self.serve(self.remote)
        entry = self.query(REMOTE)[0]
        self.assertEqual(len(self.fetcher.calls), 2)
        self.assertEqual(entry["valid_until_ts"], refreshed["valid_until_ts"])
        self.assertGreater(entry["valid_until_ts"], first["valid_until_ts"])
        # The server goes down, its keys expire: we still serve what we last saw.
        self.fetcher.routes.clear()
        self.reactor.advance(3 * 24 * 3600)
        entry = self.query(REMOTE)[0]
        self.assertEqual(entry["valid_until_ts"], refreshed["valid_until_ts"])
        self.assert_cosigned(entry, self.remote)

    def test_minimum_valid_until_ts_forces_refetch(self) -> None:
        self.serve(self.remote)
        self.query(REMOTE)
        self.query(REMOTE, f"?minimum_valid_until_ts={self.now + 2 * DAY_MS}")
        self.assertEqual(len(self.fetcher.calls), 2)

    def test_unreachable_unknown_server_is_empty(self) -> None:
        self.assertEqual(self.query("nowhere.example"), [])

    def test_bad_remote_response_not_served(self) -> None:
        response = self.remote.key_response(self.now + DAY_MS)
        response["valid_until_ts"] += 1  # breaks the self-signature
        self.fetcher.routes[(REMOTE, KEY_SERVER_PATH)] = response
        self.assertEqual(self.query(REMOTE), [])

    def test_our_own_keys(self) -> None:
        keys = self.query("test")
        self.assertEqual(len(keys), 1)
        key = self.hs.get_signing_key()
        self.assertEqual(keys[0]["server_name"], "test")
        self.assertEqual(keys[0]["verify_keys"], {key.key_id: {"key": key.verify_key_base64}})
        verify_signed_json(keys[0], "test", self.our_key)
        self.assertEqual(self.fetcher.calls, [])

    def test_get_bad_input(self) -> None:
        channel = self.make_request("GET", "/_matrix/key/v2/query/bad%20name!")
        self.assert_error(channel, 400, "M_INVALID_PARAM")
        channel = self.make_request(
            "GET", f"/_matrix/key/v2/query/{REMOTE}?minimum_valid_until_ts=soon")
        self.assert_error(channel, 400, "M_INVALID_PARAM")
        self.assertEqual(self.fetcher.calls, [])

    # -- POST --

    def test_post_several_servers(self) -> None:
        self.serve(self.remote)
        self.serve(self.other)
        channel = self.make_request("POST", "/_matrix/key/v2/query", {"server_keys": {
            REMOTE: {self.remote.key_id: {"minimum_valid_until_ts": self.now}},
            OTHER: {},
            "test": {},
            "nowhere.example": {},
        }})
        self.assertEqual(channel.code, 200, channel.result)
        by_name = {e["server_name"]: e for e in channel.json_body["server_keys"]}
        self.assertEqual(set(by_name), {REMOTE, OTHER, "test"})
        self.assert_cosigned(by_name[REMOTE], self.remote)
        self.assert_cosigned(by_name[OTHER], self.other)

    def test_post_empty_query(self) -> None:
        channel = self.make_request("POST", "/_matrix/key/v2/query", {"server_keys": {}})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"server_keys": []})

    def test_post_unknown_key_id_triggers_fetch(self) -> None:
        self.serve(self.remote)
        self.query(REMOTE)
        channel = self.make_request("POST", "/_matrix/key/v2/query", {"server_keys": {
            REMOTE: {"ed25519:new": {}}}})
        self.assertEqual(channel.code, 200, channel.result)
        # Asked again for the missing key; the server does not have it: nothing matches.
        self.assertEqual(len(self.fetcher.calls), 2)
        self.assertEqual(channel.json_body["server_keys"], [])

    def test_post_bad_bodies(self) -> None:
        path = "/_matrix/key/v2/query"
        self.assert_error(self.make_request("POST", path, b"{not json"), 400, "M_NOT_JSON")
        self.assert_error(self.make_request("POST", path, b""), 400, "M_NOT_JSON")
        for body in ([], {}, {"server_keys": []}, {"server_keys": {REMOTE: []}},
                     {"server_keys": {REMOTE: {"ed25519:a": []}}},
                     {"server_keys": {REMOTE: {"ed25519:a": {"minimum_valid_until_ts": "1"}}}},
                     {"server_keys": {REMOTE: {"ed25519:a": {"minimum_valid_until_ts": True}}}},
                     {"server_keys": {"bad name!": {}}},
                     {"server_keys": {f"s{i}.example": {} for i in range(101)}}):
            self.assert_error(self.make_request("POST", path, body), 400, "M_BAD_JSON")
        self.assertEqual(self.fetcher.calls, [])

    def test_wrong_methods(self) -> None:
        channel = self.make_request("GET", "/_matrix/key/v2/query")
        self.assertEqual(channel.code, 405, channel.result)
        channel = self.make_request("POST", f"/_matrix/key/v2/query/{REMOTE}", {})
        self.assertEqual(channel.code, 405, channel.result)
