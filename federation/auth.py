"""Request authentication between servers: the `X-Matrix` Authorization scheme.

Spec: server-server-api.md "Request Authentication". The origin signs, with the JSON
signing algorithm, the object `{method, uri, origin, destination, content}` (`content`
only when the request has a body) and sends the signature as

    Authorization: X-Matrix origin="a.example",destination="b.example",key="ed25519:k1",sig="…"

Pure functions: no I/O, no clock. Fetching the origin's key and checking that
`destination` is our name belong to the caller (the inbound transport).
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import signedjson.sign
import signedjson.types
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from homeserver.event_hashing import (
    SignatureVerifyException,
    canonical_json,
    decode_base64,
)
from homeserver.identifiers import is_valid_server_name
from homeserver.keys import SigningKey

__all__ = [
    "SignatureVerifyException",
    "XMatrixAuth",
    "parse_x_matrix",
    "sign_request",
    "verify_request",
]

_SCHEME = "x-matrix"
# `alg:version`; versions are `[a-zA-Z0-9_]` by the spec, we accept a little more.
_KEY_ID_RE = re.compile(r"[A-Za-z0-9_]+:[A-Za-z0-9_.\-+/=]+")
# One parameter: `name = value`, value quoted (with backslash escapes) or bare. Bare values
# may hold anything but separators, quotes and whitespace: older servers send colons and
# base64 unquoted, and the spec asks recipients to accept colons.
_PARAM_RE = re.compile(
    r'[ \t]*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)[ \t]*=[ \t]*'
    r'(?:"((?:[^"\\]|\\.)*)"|([^\s",]+))[ \t]*'
)
_UNESCAPE_RE = re.compile(r"\\(.)")


@attrs.frozen(slots=True)
class XMatrixAuth:
    """The parameters of one `X-Matrix` Authorization header.

    `destination` is None when an older server left it out (allowed for receivers).
    """

    origin: str
    key: str
    sig: str
    destination: str | None = None


def _request_json(origin: str, destination: str | None, method: str, uri: str,
                  content: Any | None) -> dict[str, Any]:
    """The object that is signed (step 1 of the spec)."""
    obj: dict[str, Any] = {"method": method, "uri": uri, "origin": origin}
    if destination is not None:
        obj["destination"] = destination
    if content is not None:
        obj["content"] = content
    return obj


def sign_request(origin: str, destination: str, method: str, uri: str, content: Any | None,
                 signing_key: SigningKey | signedjson.types.SigningKey) -> str:
    """Build the `Authorization` header value for an outbound request.

    Args:
        origin: our server name (before any delegation).
        destination: the remote server name (before delegation).
        method: the HTTP method, upper case (`GET`, `PUT`…).
        uri: the request target from `/_matrix/…`, including `?` and the query string.
        content: the parsed JSON body, or None for a request without a body.
        signing_key: the server's key.

    Returns:
        `X-Matrix origin="…",destination="…",key="ed25519:…",sig="…"`.
    """
    key = signing_key.key if isinstance(signing_key, SigningKey) else signing_key
    signed = signedjson.sign.sign_json(
        _request_json(origin, destination, method, uri, content), origin, key)
    ((key_id, sig),) = signed["signatures"][origin].items()
    # Sender compatibility rules: one space, lower-case names, no spaces around commas.
    return (f'X-Matrix origin="{_quote(origin)}",destination="{_quote(destination)}",'
            f'key="{_quote(key_id)}",sig="{_quote(sig)}"')


def _quote(value: str) -> str:
    """Escape for a quoted-string. Server names, key IDs and base64 never need it."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def parse_x_matrix(header: str | bytes) -> XMatrixAuth:
    """Parse an `X-Matrix` Authorization header value (RFC 9110 auth-param syntax).

    Tolerates: any case of the scheme and of parameter names, several spaces after the
    scheme, spaces and tabs around commas and `=`, quoted or bare values, backslash escapes
    in quoted values, bare colons, parameters in any order, unknown parameters.

    Raises:
        ValueError: another scheme; unparseable syntax; a repeated parameter; `origin`,
            `key` or `sig` missing; an invalid `origin`/`destination` server name or key ID.
    """
    if isinstance(header, bytes):
        try:
            header = header.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("Authorization header is not UTF-8") from None
    scheme, sep, rest = header.strip().partition(" ")
    if scheme.lower() != _SCHEME or not sep:
        raise ValueError("Not an X-Matrix Authorization header")
    params: dict[str, str] = {}
    pos, rest = 0, rest.lstrip(" ")
    while True:
        m = _PARAM_RE.match(rest, pos)
        if m is None:
            raise ValueError(f"Malformed X-Matrix parameters at offset {pos}")
        name = m.group(1).lower()
        quoted, bare = m.group(2), m.group(3)
        value = _UNESCAPE_RE.sub(r"\1", quoted) if quoted is not None else bare
        if name in params:
            raise ValueError(f"Repeated X-Matrix parameter {name!r}")
        params[name] = value
        pos = m.end()
        if pos == len(rest):
            break
        if rest[pos] != ",":
            raise ValueError(f"Expected ',' in X-Matrix parameters at offset {pos}")
        pos += 1
    for required in ("origin", "key", "sig"):
        if not params.get(required):
            raise ValueError(f"X-Matrix header lacks {required!r}")
    origin, destination = params["origin"], params.get("destination")
    if not is_valid_server_name(origin):
        raise ValueError(f"Invalid origin {origin!r}")
    if destination is not None and not is_valid_server_name(destination):
        raise ValueError(f"Invalid destination {destination!r}")
    if not _KEY_ID_RE.fullmatch(params["key"]):
        raise ValueError(f"Invalid key ID {params['key']!r}")
    return XMatrixAuth(origin=origin, key=params["key"], sig=params["sig"],
                       destination=destination)


def verify_request(auth: XMatrixAuth, method: str, uri: str, content: Any | None,
                   verify_key: VerifyKey) -> None:
    """Check the signature of an inbound request against the origin's key `auth.key`.

    `destination` is covered only when the header carried it (older servers omit it);
    whether it names us is for the caller to check (401 if not).

    Args:
        auth: the parsed header.
        method: the request method as received.
        uri: the raw request target (path and query string) as received.
        content: the parsed JSON body, or None when the request had no body.
        verify_key: the origin's public key with ID `auth.key` (ed25519).

    Raises:
        SignatureVerifyException: unsupported algorithm, bad base64, or no match.
    """
    if not auth.key.startswith("ed25519:"):
        raise SignatureVerifyException(f"Unsupported key algorithm in {auth.key!r}")
    try:
        sig = decode_base64(auth.sig)
    except ValueError:
        raise SignatureVerifyException("Signature is not base64") from None
    message = canonical_json(_request_json(auth.origin, auth.destination, method, uri, content))
    try:
        VerifyKey(bytes(verify_key)).verify(message, sig)
    except (BadSignatureError, ValueError) as e:
        raise SignatureVerifyException(
            f"Bad signature from {auth.origin} with {auth.key}: {e}") from None

