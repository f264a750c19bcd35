"""Canonical JSON, content and reference hashes, event IDs, event signatures.

Spec: appendices.md "Signing JSON" / "Canonical JSON"; server-server-api.md "Signing
Events" (content hash, reference hash); rooms/v3.md, v4.md "Event IDs".

- content hash: SHA-256 of the canonical JSON of the *full* event without `unsigned`,
  `signatures` and `hashes`; stored unpadded-base64 in `hashes.sha256`.
- reference hash: SHA-256 of the canonical JSON of the *redacted* event without
  `signatures` and `unsigned`; the event ID in v3+ rooms.
- signatures cover the redacted event (which keeps `hashes`, so they cover the content
  indirectly); a redacted copy therefore still verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import signedjson.key
import signedjson.sign
import signedjson.types
from canonicaljson import encode_canonical_json
from nacl.signing import VerifyKey
from signedjson.sign import SignatureVerifyException

from homeserver.keys import SigningKey as ServerSigningKey
from homeserver.redaction import prune_event_dict
from homeserver.room_versions import EventFormat, RoomVersion

__all__ = [
    "CANONICALJSON_MAX_INT",
    "CANONICALJSON_MIN_INT",
    "SignatureVerifyException",
    "add_content_hash",
    "canonical_json",
    "check_canonical_json",
    "check_content_hash",
    "compute_content_hash",
    "compute_event_id",
    "compute_reference_hash",
    "decode_base64",
    "encode_base64",
    "sign_event",
    "verify_event_signature",
]

#: The integer range of canonical JSON: numbers an IEEE double holds exactly.
CANONICALJSON_MAX_INT = 2**53 - 1
CANONICALJSON_MIN_INT = -(2**53) + 1

# Removed before computing the content hash (server-server-api: "Calculating the content
# hash for an event").
_NOT_IN_CONTENT_HASH = ("unsigned", "signatures", "hashes")


def encode_base64(data: bytes, urlsafe: bool = False) -> str:
    """Unpadded base64 (appendices: "Unpadded Base64"), URL-safe alphabet if asked."""
    encoded = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return encoded.rstrip(b"=").decode("ascii")


def decode_base64(data: str) -> bytes:
    """Decode standard or URL-safe base64, with or without padding.

    Raises:
        ValueError: not base64.
    """
    if not isinstance(data, str) or not data.isascii():
        raise ValueError("not base64")
    padded = data.rstrip("=") + "=" * (-len(data.rstrip("=")) % 4)
    altchars = b"-_" if ("-" in data or "_" in data) else None
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except binascii.Error as e:
        raise ValueError(f"not base64: {e}") from None


def canonical_json(obj: Any) -> bytes:
    """The canonical JSON encoding (sorted keys, no spaces, UTF-8, no ASCII escaping).

    Floats and out-of-range integers are encoded as given: old room versions contain them
    and their hashes must match what other servers computed. Use `check_canonical_json` to
    refuse them where the room version demands it.
    """
    return encode_canonical_json(obj)


def check_canonical_json(obj: Any, room_version: RoomVersion) -> None:
    """Reject values that canonical JSON forbids, in room versions that enforce it (v6+).

    Every number, at any depth, must be an integer in [-(2**53)+1, (2**53)-1]; floats
    (including NaN and infinities) are refused.

    Raises:
        ValueError: naming the offending value.
    """
    if not room_version.strict_canonicaljson:
        return
    # Iterative walk: the nesting depth of untrusted JSON is not bounded by us.
    stack: list[Any] = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, int):
            if not CANONICALJSON_MIN_INT <= value <= CANONICALJSON_MAX_INT:
                raise ValueError(f"JSON integer out of range: {value}")
        elif isinstance(value, float):
            raise ValueError(f"Bad JSON value: float {value!r}")
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)


def compute_content_hash(pdu: Mapping[str, Any]) -> bytes:
    """SHA-256 digest of the full event without `unsigned`, `signatures` and `hashes`."""
    stripped = {k: v for k, v in pdu.items() if k not in _NOT_IN_CONTENT_HASH}
    return hashlib.sha256(canonical_json(stripped)).digest()


def add_content_hash(pdu: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the event with `hashes.sha256` set to its content hash.

    Other algorithms already in `hashes` are kept.
    """
    hashes = pdu.get("hashes")
    new_hashes = dict(hashes) if isinstance(hashes, Mapping) else {}
    new_hashes["sha256"] = encode_base64(compute_content_hash(pdu))
    return {**pdu, "hashes": new_hashes}


def check_content_hash(pdu: Mapping[str, Any]) -> bool:
    """Whether `hashes.sha256` matches the event's content hash.

    False when the hash is missing or not base64: the caller then uses the redacted copy
    (server-server-api: "Validating hashes and signatures on received events").
    """
    hashes = pdu.get("hashes")
    if not isinstance(hashes, Mapping) or not isinstance(hashes.get("sha256"), str):
        return False
    try:
        expected = decode_base64(hashes["sha256"])
    except ValueError:
        return False
    return hmac.compare_digest(expected, compute_content_hash(pdu))


def compute_reference_hash(pdu: Mapping[str, Any], room_version: RoomVersion) -> bytes:
    """SHA-256 digest of the redacted event without `signatures`, `unsigned`, `age_ts`."""
    redacted = prune_event_dict(pdu, room_version)
    for key in ("signatures", "unsigned", "age_ts"):
        redacted.pop(key, None)
    return hashlib.sha256(canonical_json(redacted)).digest()


def compute_event_id(pdu: Mapping[str, Any], room_version: RoomVersion) -> str:
    """The event ID of a PDU.

    v1, v2: the `event_id` the origin server put in the PDU. v3: `$` + unpadded standard
    base64 of the reference hash. v4+: the same in URL-safe base64.

    Raises:
        ValueError: a v1/v2 PDU without a string `event_id`.
    """
    fmt = room_version.event_format
    if fmt == EventFormat.V1:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str):
            raise ValueError("event_id missing")
        return event_id
    digest = compute_reference_hash(pdu, room_version)
    return "$" + encode_base64(digest, urlsafe=fmt == EventFormat.V3)


def sign_event(pdu: Mapping[str, Any], server_name: str,
               signing_key: signedjson.types.SigningKey | ServerSigningKey,
               room_version: RoomVersion) -> dict[str, Any]:
    """Sign the redacted event and return the full event with the signature merged in.

    The content hash must already be set (`add_content_hash`): the signature covers
    `hashes`, which is how it covers the unredacted content. Existing signatures (ours
    under other key IDs, other servers') are kept.

    Args:
        pdu: the full event.
        server_name: the name to sign as.
        signing_key: a signedjson key (with `alg`/`version`) or the server's `SigningKey`.
        room_version: decides the redaction algorithm, hence what the signature covers.

    Raises:
        ValueError: the event has no `hashes.sha256`.
    """
    hashes = pdu.get("hashes")
    if not isinstance(hashes, Mapping) or "sha256" not in hashes:
        raise ValueError("add the content hash before signing the event")
    key = signing_key.key if isinstance(signing_key, ServerSigningKey) else signing_key
    redacted = prune_event_dict(pdu, room_version)
    redacted.pop("signatures", None)
    signed = signedjson.sign.sign_json(redacted, server_name, key)
    existing = pdu.get("signatures")
    signatures: dict[str, dict[str, str]] = {
        name: dict(sigs) for name, sigs in existing.items() if isinstance(sigs, Mapping)
    } if isinstance(existing, Mapping) else {}
    signatures.setdefault(server_name, {}).update(signed["signatures"][server_name])
    return {**pdu, "signatures": signatures}


def verify_event_signature(pdu: Mapping[str, Any], server_name: str,
                           verify_key: VerifyKey | signedjson.types.VerifyKey, key_id: str,
                           room_version: RoomVersion) -> None:
    """Check `server_name`'s signature under `key_id` on the (redacted) event.

    Succeeds on the full event and on a redacted copy alike.

    Raises:
        SignatureVerifyException: no such signature, bad base64, unsupported algorithm,
            or the signature does not match.
    """
    try:
        key = signedjson.key.decode_verify_key_bytes(key_id, bytes(verify_key))
    except ValueError as e:
        raise SignatureVerifyException(f"Unsupported signing key {key_id}: {e}") from None
    redacted = prune_event_dict(pdu, room_version)
    signatures = redacted.get("signatures")
    if not isinstance(signatures, Mapping) or not isinstance(
            signatures.get(server_name), Mapping):
        raise SignatureVerifyException(f"No signature for {server_name}")
    signedjson.sign.verify_signed_json(redacted, server_name, key)
