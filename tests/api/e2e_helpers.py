"""Real ed25519 keys for end-to-end key tests: device keys signed by the device's own key,
cross-signing keys signed by the master key, one-time keys."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import signedjson.key
import signedjson.sign
from signedjson.types import SigningKey

if TYPE_CHECKING:
    from tests.harness import HomeserverTestCase

    _Base = HomeserverTestCase
else:
    _Base = object

CLIENT = "/_matrix/client/v3"


def public_key(key: SigningKey) -> str:
    return signedjson.key.encode_verify_key_base64(signedjson.key.get_verify_key(key))


def device_keys(user_id: str, device_id: str) -> tuple[dict[str, Any], SigningKey]:
    """Device keys signed by the device's ed25519 key, and that key."""
    key = signedjson.key.generate_signing_key(device_id)
    body = {"user_id": user_id, "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{device_id}": "curve" + device_id,
                     f"ed25519:{device_id}": public_key(key)}}
    return signedjson.sign.sign_json(body, user_id, key), key


def cross_signing_key(user_id: str, usage: str) -> tuple[dict[str, Any], SigningKey]:
    """An unsigned cross-signing key (key ID = its public key) and its signing key."""
    key = signedjson.key.generate_signing_key("tmp")
    pub = public_key(key)
    key.version = pub
    return {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{pub}": pub}}, key


def sign(obj: dict[str, Any], user_id: str, key: SigningKey) -> dict[str, Any]:
    """`obj` with one more signature by `user_id` (existing signatures kept)."""
    unsigned = obj.get("unsigned")
    body = {k: v for k, v in copy.deepcopy(obj).items() if k != "unsigned"}
    signed = signedjson.sign.sign_json(body, user_id, key)
    if unsigned is not None:
        signed["unsigned"] = unsigned
    return signed


class E2eHelpers(_Base):
    def upload(self, token: str, body: dict[str, Any]) -> Any:
        return self.make_request("POST", f"{CLIENT}/keys/upload", body, access_token=token)

    def upload_ok(self, token: str, body: dict[str, Any]) -> dict[str, int]:
        channel = self.upload(token, body)
        self.assertEqual(channel.code, 200, channel.result)
        counts: dict[str, int] = channel.json_body["one_time_key_counts"]
        return counts

    def query(self, token: str, device_keys: dict[str, list[str]]) -> dict[str, Any]:
        channel = self.make_request("POST", f"{CLIENT}/keys/query",
                                    {"device_keys": device_keys}, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body
        return body

    def claim(self, token: str, one_time_keys: dict[str, dict[str, str]]) -> dict[str, Any]:
        channel = self.make_request("POST", f"{CLIENT}/keys/claim",
                                    {"one_time_keys": one_time_keys}, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body
        return body

    def setup_cross_signing(self, user_id: str, token: str
                            ) -> dict[str, tuple[dict[str, Any], SigningKey]]:
        """Upload master, self-signing and user-signing keys (no UIA: first upload)."""
        master, master_key = cross_signing_key(user_id, "master")
        ssk, ssk_key = cross_signing_key(user_id, "self_signing")
        usk, usk_key = cross_signing_key(user_id, "user_signing")
        ssk = sign(ssk, user_id, master_key)
        usk = sign(usk, user_id, master_key)
        channel = self.make_request(
            "POST", f"{CLIENT}/keys/device_signing/upload",
            {"master_key": master, "self_signing_key": ssk, "user_signing_key": usk},
            access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        return {"master": (master, master_key), "self_signing": (ssk, ssk_key),
                "user_signing": (usk, usk_key)}

#: a placeholder signature for one-time keys (the server does not check those)
SIG = {"@someone:test": {"ed25519:DEV": "c2ln"}}
