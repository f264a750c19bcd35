"""The server's ed25519 signing key, in Synapse's file format (`ed25519 <version> <seed>`)."""

from __future__ import annotations

import os
import secrets
from typing import Any

import attrs
import signedjson.key

from homeserver.errors import ConfigError


@attrs.frozen(slots=True)
class SigningKey:
    key: Any
    version: str

    @property
    def key_id(self) -> str:
        """`ed25519:<version>`, as used in signatures and the key server."""
        return f"ed25519:{self.version}"

    @property
    def verify_key_base64(self) -> str:
        return str(signedjson.key.encode_verify_key_base64(self.key.verify_key))


def generate_signing_key_file(path: str) -> SigningKey:
    """Write a new key to `path` (mode 0600) and return it."""
    version = "a_" + secrets.token_hex(2)
    key = signedjson.key.generate_signing_key(version)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        signedjson.key.write_signing_keys(f, [key])
    return SigningKey(key=key, version=version)


def read_signing_key(path: str) -> SigningKey:
    try:
        with open(path) as f:
            keys = signedjson.key.read_signing_keys(f)
    except FileNotFoundError:
        raise ConfigError(
            f"Config key 'signing_key_path': no key file at {path}; run generate-config"
        ) from None
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad key file
        raise ConfigError(f"Config key 'signing_key_path': cannot read key {path}: {e}") from e
    if not keys:
        raise ConfigError(f"Config key 'signing_key_path': no key in {path}")
    key = keys[0]
    return SigningKey(key=key, version=key.version)
