"""GET /_matrix/key/v2/server and /_matrix/federation/v1/version."""

from __future__ import annotations

import signedjson.key
from signedjson.sign import SignatureVerifyException, verify_signed_json

import homeserver
from tests.harness import START_TIME, HomeserverTestCase, override_config


class KeyServerTestCase(HomeserverTestCase):
    def test_server_key_is_self_signed(self) -> None:
        """The response lists our key and carries a valid signature made with it."""
        channel = self.make_request("GET", "/_matrix/key/v2/server")
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        key = self.hs.get_signing_key()
        self.assertEqual(body["server_name"], "test")
        self.assertEqual(body["old_verify_keys"], {})
        self.assertEqual(list(body["verify_keys"]), [key.key_id])
        self.assertTrue(key.key_id.startswith("ed25519:"))
        self.assertEqual(list(body["signatures"]), ["test"])
        self.assertEqual(list(body["signatures"]["test"]), [key.key_id])

        # Verify with the key as published, the way a remote server does.
        published = body["verify_keys"][key.key_id]["key"]
        verify_key = signedjson.key.decode_verify_key_base64(
            "ed25519", key.key_id.split(":", 1)[1], published)
        self.assertEqual(signedjson.key.encode_verify_key_base64(verify_key),
                         key.verify_key_base64)
        verify_signed_json(body, "test", verify_key)

        # Any change to the signed content breaks the signature.
        body["valid_until_ts"] += 1
        with self.assertRaises(SignatureVerifyException):
            verify_signed_json(body, "test", verify_key)

    def test_valid_until_follows_clock_and_config(self) -> None:
        """valid_until_ts is now + key_refresh_interval (1 day by default)."""
        body = self.make_request("GET", "/_matrix/key/v2/server").json_body
        self.assertEqual(body["valid_until_ts"], int(START_TIME * 1000) + 86_400_000)
        self.reactor.advance(3600)
        body = self.make_request("GET", "/_matrix/key/v2/server").json_body
        self.assertEqual(body["valid_until_ts"], int((START_TIME + 3600) * 1000) + 86_400_000)

    @override_config({"key_refresh_interval": "2h"})
    def test_key_refresh_interval_config(self) -> None:
        """key_refresh_interval from the config sets the validity period."""
        body = self.make_request("GET", "/_matrix/key/v2/server").json_body
        self.assertEqual(body["valid_until_ts"], int(START_TIME * 1000) + 7_200_000)

    def test_deprecated_key_id_path(self) -> None:
        """The deprecated /server/{keyId} form answers with the same signed document."""
        key = self.hs.get_signing_key()
        for key_id in (key.key_id, "ed25519:other"):
            channel = self.make_request("GET", f"/_matrix/key/v2/server/{key_id}")
            self.assertEqual(channel.code, 200, channel.result)
            self.assertIn(key.key_id, channel.json_body["verify_keys"])
            verify_signed_json(channel.json_body, "test", signedjson.key.get_verify_key(key.key))

    def test_needs_no_auth_and_rejects_other_methods(self) -> None:
        """The key server is public; a POST is 405 M_UNRECOGNIZED."""
        channel = self.make_request("POST", "/_matrix/key/v2/server", {})
        self.assert_error(channel, 405, "M_UNRECOGNIZED")

    def test_federation_version(self) -> None:
        """/_matrix/federation/v1/version names Axon and its version."""
        channel = self.make_request("GET", "/_matrix/federation/v1/version")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body,
                         {"server": {"name": "Axon", "version": homeserver.__version__}})
