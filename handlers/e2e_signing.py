"""Signature checks on end-to-end key objects (device keys, cross-signing keys) and the
merging of separately uploaded signatures into the objects served to clients.

A key object is signed as canonical JSON without its `signatures` and `unsigned` (the
spec's "Signing JSON"); signatures are ed25519 only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import signedjson.key
from signedjson.sign import SignatureVerifyException, verify_signed_json

from homeserver.event_hashing import decode_base64

#: a cross-signing key's types, as the client-server API names them
CROSS_SIGNING_TYPES = ("master", "self_signing", "user_signing")


def verify_key_signature(obj: Mapping[str, Any], signer: str, key_id: str,
                         public_key: str) -> bool:
    """True if `obj` carries a valid signature by `signer` under `key_id`
    (`ed25519:<version>`) made with the unpadded-base64 ed25519 `public_key`."""
    if not key_id.startswith("ed25519:"):
        return False
    try:
        verify_key = signedjson.key.decode_verify_key_bytes(key_id, decode_base64(public_key))
        verify_signed_json(dict(obj), signer, verify_key)
    except (SignatureVerifyException, ValueError, TypeError, KeyError):
        return False
    return True


def single_public_key(key: Mapping[str, Any]) -> tuple[str, str] | None:
    """(key ID, public key) of a cross-signing key, which holds exactly one ed25519 key."""
    keys = key.get("keys")
    if not isinstance(keys, Mapping) or len(keys) != 1:
        return None
    key_id, public = next(iter(keys.items()))
    if not isinstance(key_id, str) or not key_id.startswith("ed25519:") \
            or not isinstance(public, str) or key_id != f"ed25519:{public}":
        return None
    return key_id, public


def signed_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a signature covers: the object without `signatures` and `unsigned`."""
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def merge_signatures(obj: Mapping[str, Any],
                     extra: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
    """A copy of `obj` with (signer user ID, key ID, signature) triples added."""
    out = copy.deepcopy(dict(obj))
    for signer, key_id, signature in extra:
        sigs = out.setdefault("signatures", {})
        if isinstance(sigs, dict):
            sigs.setdefault(signer, {})[key_id] = signature
    return out
