"""The key ring: direct fetch, notaries, validity, memory and database caches."""

from __future__ import annotations

from typing import Any

import signedjson.key

from federation.keyring import (
    KEY_QUERY_PATH,
    KEY_SERVER_PATH,
    MAX_KEY_VALIDITY_MS,
    KeyLookupError,
    KeyRing,
    SignatureVerifyError,
)
from tests.federation.key_helpers import DAY_MS, FakeServer, ScriptedFetcher
from tests.harness import DEFAULT_CONFIG, HomeserverTestCase, override_config

REMOTE = "remote.example"
NOTARY = "notary.example"


class KeyRingTestCase(HomeserverTestCase):
    def make_config(self) -> dict[str, Any]:
        # No notary unless a test pins one.
        return {**DEFAULT_CONFIG, "trusted_key_servers": []}

    def prepare(self, reactor: Any, hs: Any) -> None:
        self.remote = FakeServer(REMOTE)
        self.fetcher = ScriptedFetcher()
        self.ring = KeyRing(hs, self.fetcher)
        self.now = hs.get_clock().time_msec()

    def serve(self, response: Any) -> None:
        self.fetcher.routes[(REMOTE, KEY_SERVER_PATH)] = response

    def get_key(self, ring: KeyRing | None = None, key_id: str | None = None,
                minimum: int | None = None) -> Any:
        return self.get_success((ring or self.ring).get_verify_key(
            REMOTE, key_id or self.remote.key_id, self.now if minimum is None else minimum))

    def lookup_fails(self, key_id: str | None = None, minimum: int | None = None,
                     ring: KeyRing | None = None) -> KeyLookupError:
        e = self.get_failure((ring or self.ring).get_verify_key(
            REMOTE, key_id or self.remote.key_id, self.now if minimum is None else minimum),
            KeyLookupError)
        assert isinstance(e, KeyLookupError)
        return e

    # -- direct fetch --

    def test_valid_key_is_fetched_and_cached(self) -> None:
        self.serve(self.remote.key_response(self.now + DAY_MS))
        key = self.get_key()
        self.assertEqual(bytes(key), bytes(self.remote.key.verify_key))
        self.assertEqual(self.fetcher.calls, [(REMOTE, KEY_SERVER_PATH, None)])
        # Memory cache: no second fetch, even with the server gone.
        self.fetcher.routes.clear()
        self.assertEqual(bytes(self.get_key()), bytes(key))
        self.assertEqual(len(self.fetcher.calls), 1)
        # A signed object verifies; a tampered one does not.
        signed = self.remote.sign({"hello": "world"})
        self.get_success(self.ring.verify_json_for_server(REMOTE, signed, self.now))
        signed["hello"] = "mallory"
        self.get_failure(self.ring.verify_json_for_server(REMOTE, signed, self.now),
                         SignatureVerifyError)

    def test_db_cache_survives_new_keyring(self) -> None:
        self.serve(self.remote.key_response(self.now + DAY_MS))
        self.get_key()
        rows = self.get_success(self.hs.get_datastores().server_keys.get_server_keys(REMOTE))
        self.assertEqual([r.key_id for r in rows], [self.remote.key_id])
        self.assertEqual(rows[0].valid_until_ts, self.now + DAY_MS)
        self.assertEqual(rows[0].from_server, REMOTE)
        # A fresh ring with a fetcher that always fails still finds the key.
        other = KeyRing(self.hs, ScriptedFetcher())
        self.assertEqual(bytes(self.get_key(ring=other)), bytes(self.remote.key.verify_key))

    def test_bad_self_signature_refused(self) -> None:
        response = self.remote.key_response(self.now + DAY_MS)
        # Same key ID, signed by another key.
        impostor = FakeServer(REMOTE)
        response["signatures"] = impostor.key_response(self.now + DAY_MS)["signatures"]
        self.serve(response)
        self.assertIn("bad signature", str(self.lookup_fails()))
        self.assertEqual(
            self.get_success(self.hs.get_datastores().server_keys.get_server_keys(REMOTE)), [])

    def test_unsigned_or_unannounced_key_signature_refused(self) -> None:
        response = self.remote.key_response(self.now + DAY_MS)
        del response["signatures"]
        self.serve(response)
        self.assertIn("not signed", str(self.lookup_fails()))
        # Signed only with a key the response does not list.
        other = FakeServer(REMOTE, version="other")
        response = other.key_response(self.now + DAY_MS)
        response["verify_keys"] = {self.remote.key_id: {"key": self.remote.verify_key_b64}}
        response = other.sign(response)
        self.serve(response)
        self.assertIn("does not announce", str(self.lookup_fails()))

    def test_wrong_server_name_refused(self) -> None:
        evil = FakeServer("evil.example")
        self.serve(evil.key_response(self.now + DAY_MS))
        self.assertIn("server_name", str(self.lookup_fails()))
        # Even when "self-signed" under the name we asked for but announcing another name.
        self.serve(self.remote.key_response(self.now + DAY_MS, server_name="evil.example"))
        self.assertIn("server_name", str(self.lookup_fails()))

    def test_malformed_responses_refused(self) -> None:
        for bad in (["not", "an", "object"], {"server_name": REMOTE},
                    self.remote.key_response("tomorrow"),  # type: ignore[arg-type]
                    self.remote.sign({"server_name": REMOTE, "valid_until_ts": self.now + 1,
                                      "verify_keys": {self.remote.key_id: {"key": "!!"}}})):
            self.serve(bad)
            self.lookup_fails()

    def test_unknown_key_id(self) -> None:
        self.serve(self.remote.key_response(self.now + DAY_MS))
        self.assertIn("not found", str(self.lookup_fails(key_id="ed25519:nope")))

    def test_expired_key_refused_for_new_signatures(self) -> None:
        self.serve(self.remote.key_response(self.now + 3600_000))
        self.get_key()
        signed_early = self.remote.sign({"a": 1})
        self.reactor.advance(2 * 3600)
        now = self.hs.get_clock().time_msec()
        # The server is down: the cached key only covers signatures made before expiry.
        self.fetcher.routes.clear()
        e = self.lookup_fails(minimum=now)
        self.assertIn("only valid until", str(e))
        self.get_failure(self.ring.verify_json_for_server(REMOTE, signed_early, now),
                         KeyLookupError)
        self.get_success(self.ring.verify_json_for_server(REMOTE, signed_early, self.now))
        # Once the server publishes a new validity, the key is refetched and accepted.
        self.serve(self.remote.key_response(now + DAY_MS))
        self.get_key(minimum=now)

    def test_validity_capped_at_seven_days(self) -> None:
        self.serve(self.remote.key_response(self.now + 365 * DAY_MS))
        self.get_key(minimum=self.now + 6 * DAY_MS)
        self.fetcher.routes.clear()
        self.lookup_fails(minimum=self.now + MAX_KEY_VALIDITY_MS + 1)
        row = self.get_success(
            self.hs.get_datastores().server_keys.get_server_key(REMOTE, self.remote.key_id))
        self.assertEqual(row.valid_until_ts, self.now + MAX_KEY_VALIDITY_MS)

    def test_old_verify_keys(self) -> None:
        old = FakeServer(REMOTE, version="old")
        expired = self.now - 1000
        self.serve(self.remote.key_response(self.now + DAY_MS, old={
            old.key_id: {"key": old.verify_key_b64, "expired_ts": expired}}))
        # Valid for signatures made before it expired ...
        key = self.get_key(key_id=old.key_id, minimum=expired - 5000)
        self.assertEqual(bytes(key), bytes(old.key.verify_key))
        event = old.sign({"origin_server_ts": expired - 5000})
        self.get_success(self.ring.verify_json_for_server(REMOTE, event, expired - 5000))
        # ... not for new ones.
        self.lookup_fails(key_id=old.key_id, minimum=self.now)
        self.get_failure(self.ring.verify_json_for_server(REMOTE, event, self.now),
                         KeyLookupError)
        row = self.get_success(
            self.hs.get_datastores().server_keys.get_server_key(REMOTE, old.key_id))
        self.assertEqual((row.valid_until_ts, row.expired_ts), (expired, expired))

    def test_verify_json_errors(self) -> None:
        self.serve(self.remote.key_response(self.now + DAY_MS))
        self.get_failure(self.ring.verify_json_for_server(REMOTE, {"a": 1}, self.now),
                         SignatureVerifyError)
        other = FakeServer("other.example")
        self.get_failure(
            self.ring.verify_json_for_server(REMOTE, other.sign({"a": 1}), self.now),
            SignatureVerifyError)

    def test_local_server_keys(self) -> None:
        """Our own keys come from the signing key, never from a fetch."""
        ours = self.hs.get_signing_key()
        key = self.get_success(self.ring.get_verify_key("test", ours.key_id, self.now))
        self.assertEqual(bytes(key), bytes(ours.key.verify_key))
        signed = self.ring.local_key_response()
        self.get_success(self.ring.verify_json_for_server("test", signed, self.now))
        self.get_failure(self.ring.get_verify_key("test", "ed25519:other", self.now),
                         KeyLookupError)
        self.assertEqual(self.fetcher.calls, [])


class NotaryFallbackTestCase(HomeserverTestCase):
    """Keys through `trusted_key_servers` when the server itself does not answer."""

    def make_config(self) -> dict[str, Any]:
        self.notary = FakeServer(NOTARY, version="n1")
        return {**DEFAULT_CONFIG, "trusted_key_servers": [{
            "server_name": NOTARY,
            "verify_keys": {self.notary.key_id: self.notary.verify_key_b64}}]}

    def prepare(self, reactor: Any, hs: Any) -> None:
        self.remote = FakeServer(REMOTE)
        self.fetcher = ScriptedFetcher()
        self.ring = KeyRing(hs, self.fetcher)
        self.now = hs.get_clock().time_msec()

    def notary_answers(self, *entries: dict[str, Any]) -> None:
        self.fetcher.routes[(NOTARY, KEY_QUERY_PATH)] = {"server_keys": list(entries)}

    def test_notary_fallback(self) -> None:
        self.notary_answers(self.notary.sign(self.remote.key_response(self.now + DAY_MS)))
        key = self.get_success(self.ring.get_verify_key(REMOTE, self.remote.key_id, self.now))
        self.assertEqual(bytes(key), bytes(self.remote.key.verify_key))
        self.assertEqual(self.fetcher.calls, [
            (REMOTE, KEY_SERVER_PATH, None),
            (NOTARY, KEY_QUERY_PATH, {"server_keys": {REMOTE: {
                self.remote.key_id: {"minimum_valid_until_ts": self.now}}}}),
        ])
        row = self.get_success(
            self.hs.get_datastores().server_keys.get_server_key(REMOTE, self.remote.key_id))
        self.assertEqual(row.from_server, NOTARY)

    def test_direct_answer_preferred(self) -> None:
        self.fetcher.routes[(REMOTE, KEY_SERVER_PATH)] = self.remote.key_response(
            self.now + DAY_MS)
        self.notary_answers(self.notary.sign(self.remote.key_response(self.now + DAY_MS)))
        self.get_success(self.ring.get_verify_key(REMOTE, self.remote.key_id, self.now))
        self.assertEqual([c[0] for c in self.fetcher.calls], [REMOTE])

    def test_notary_answer_must_be_signed_by_pinned_key(self) -> None:
        impostor = FakeServer(NOTARY, version="n1")
        self.notary_answers(impostor.sign(self.remote.key_response(self.now + DAY_MS)))
        self.get_failure(self.ring.get_verify_key(REMOTE, self.remote.key_id, self.now),
                         KeyLookupError)
        # Unsigned by the notary.
        self.notary_answers(self.remote.key_response(self.now + DAY_MS))
        self.get_failure(self.ring.get_verify_key(REMOTE, self.remote.key_id, self.now),
                         KeyLookupError)

    def test_notary_answer_must_be_self_signed_by_origin(self) -> None:
        """A notary cannot swap keys: the response must still be self-signed by the key it
        announces (here the origin's signature over a notary-swapped key)."""
        forged = FakeServer(REMOTE)  # a key the origin never had, same key ID
        response = self.remote.key_response(self.now + DAY_MS)
        response["verify_keys"] = {forged.key_id: {"key": forged.verify_key_b64}}
        self.notary_answers(self.notary.sign(response))
        self.get_failure(self.ring.get_verify_key(REMOTE, forged.key_id, self.now),
                         KeyLookupError)
        # Good entries next to bad ones still count.
        self.notary_answers(
            {"nonsense": True},
            self.notary.sign(self.remote.key_response(self.now + DAY_MS, server_name=NOTARY)),
            self.notary.sign(self.remote.key_response(self.now + DAY_MS)))
        self.get_success(self.ring.get_verify_key(REMOTE, self.remote.key_id, self.now))

    def test_notary_bad_response_shape(self) -> None:
        for bad in ({"server_keys": {}}, [], "x"):
            self.fetcher.routes[(NOTARY, KEY_QUERY_PATH)] = bad
            self.get_failure(self.ring.get_verify_key(REMOTE, self.remote.key_id, self.now),
                             KeyLookupError)

    @override_config({"trusted_key_servers": [{"server_name": NOTARY}]})
    def test_notary_without_pinned_keys_uses_its_published_key(self) -> None:
        self.notary_answers(self.notary.sign(self.remote.key_response(self.now + DAY_MS)))
        # The notary's own key is unknown until fetched from the notary itself.
        self.get_failure(self.ring.get_verify_key(REMOTE, self.remote.key_id, self.now),
                         KeyLookupError)
        self.fetcher.routes[(NOTARY, KEY_SERVER_PATH)] = self.notary.key_response(
            self.now + DAY_MS)
        key = self.get_success(self.ring.get_verify_key(REMOTE, self.remote.key_id, self.now))
        self.assertEqual(bytes(key), bytes(self.remote.key.verify_key))


class TrustedKeyServersConfigTestCase(HomeserverTestCase):
    def test_default_is_matrix_org(self) -> None:
        self.assertEqual([s.server_name for s in self.hs.config.trusted_key_servers],
                         ["matrix.org"])

    def test_bad_config_refused(self) -> None:
        from homeserver.config import HomeServerConfig
        from homeserver.errors import ConfigError

        good = signedjson.key.encode_verify_key_base64(
            signedjson.key.get_verify_key(signedjson.key.generate_signing_key("x")))
        parsed = HomeServerConfig.parse({**DEFAULT_CONFIG, "trusted_key_servers": [
            {"server_name": "n.example", "verify_keys": {"ed25519:x": good}}]}, "/tmp")
        self.assertEqual(parsed.trusted_key_servers[0].verify_keys, (("ed25519:x", good),))
        for bad in ("matrix.org", [{"verify_keys": {}}], [{"server_name": 3}],
                    [{"server_name": "n", "verify_keys": {"ed25519:x": "short"}}],
                    [{"server_name": "n", "verify_keys": {"rsa:x": good}}]):
            with self.assertRaises(ConfigError):
                HomeServerConfig.parse({**DEFAULT_CONFIG, "trusted_key_servers": bad}, "/tmp")
