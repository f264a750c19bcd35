"""The key ring: remote servers' signing keys, fetched, verified and cached.

Server-server API, "Retrieving server keys". A key is looked up in memory, then in the
database (`server_signature_keys`), then fetched from the server itself
(`GET /_matrix/key/v2/server`) and, failing that, through the configured notaries
(`trusted_key_servers`, `POST /_matrix/key/v2/query`).

Every key carries `valid_until_ts`: a signature made at time T verifies with the key only if
T <= valid_until_ts. For current keys that is the response's `valid_until_ts`, capped at
7 days after we fetched it (the spec's cap, so a stolen key cannot be announced forever);
for `old_verify_keys` it is their `expired_ts`. Callers pass the time the signature claims
(`minimum_valid_until_ts`: now for requests, `origin_server_ts` for events).

The HTTP fetch is injected (`KeyFetchFunc`) so the ring runs without network in tests and
so the outbound federation client, when it lands, plugs in with `set_fetcher`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import signedjson.key
from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json
from signedjson.types import VerifyKey

from homeserver.config import TrustedKeyServer
from homeserver.event_hashing import canonical_json, decode_base64
from storage.caches import LruCache
from storage.stores.server_keys import StoredServerKey

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: The spec's cap on how long a fetched key stays valid.
MAX_KEY_VALIDITY_MS = 7 * 24 * 3600 * 1000
KEY_SERVER_PATH = "/_matrix/key/v2/server"
KEY_QUERY_PATH = "/_matrix/key/v2/query"

#: `(server_name, path, body)` -> parsed JSON response; GET when body is None, else POST.
#: Raises anything on failure (network, HTTP error, not JSON).
KeyFetchFunc = Callable[[str, str, "dict[str, Any] | None"], Awaitable[Any]]


class KeyRingError(Exception):
    """Base of the key ring's errors."""


class KeyLookupError(KeyRingError):
    """No key valid for the signature's time could be found, or a key response was bad."""


class SignatureVerifyError(KeyRingError):
    """A signature did not verify with the server's key."""


@attrs.frozen(slots=True)
class ServerKey:
    """A verified key of a server and until when signatures made with it are accepted."""

    server_name: str
    key_id: str
    verify_key: VerifyKey
    valid_until_ts: int


async def _no_fetcher(server_name: str, path: str, body: dict[str, Any] | None) -> Any:
    raise KeyLookupError("no outbound federation client is configured")


def _decode_key(key_id: str, b64: Any) -> VerifyKey:
    if not isinstance(b64, str):
        raise KeyLookupError(f"key {key_id}: 'key' must be a string")
    try:
        return signedjson.key.decode_verify_key_bytes(key_id, decode_base64(b64))
    except ValueError as e:
        raise KeyLookupError(f"key {key_id}: not an ed25519 key: {e}") from None


def _int_field(obj: Mapping[str, Any], name: str, where: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeyLookupError(f"{where}: '{name}' must be an integer")
    return value


def _check_signature(json_obj: Mapping[str, Any], signer: str, key: VerifyKey,
                     key_id: str) -> None:
    try:
        verify_signed_json(dict(json_obj), signer, key)
    except SignatureVerifyException as e:
        raise SignatureVerifyError(f"bad signature of {signer} with {key_id}: {e}") from None


def _signatures_of(json_obj: Mapping[str, Any], signer: str) -> Mapping[str, Any]:
    sigs = json_obj.get("signatures")
    mine = sigs.get(signer) if isinstance(sigs, Mapping) else None
    return mine if isinstance(mine, Mapping) else {}


def parse_key_response(server_name: str, response: Any, from_server: str,
                       now_ms: int) -> list[StoredServerKey]:
    """Validate a `/_matrix/key/v2/server` response and return its keys as rows to store.

    The response must name `server_name`, be signed by it, and every signature of it must
    be made with a key it announces in `verify_keys` and verify. Keys of other algorithms
    than ed25519 are skipped.

    Raises:
        KeyLookupError: malformed, wrong server, unsigned or badly signed.
    """
    where = f"key response for {server_name} from {from_server}"
    if not isinstance(response, Mapping):
        raise KeyLookupError(f"{where}: not a JSON object")
    if response.get("server_name") != server_name:
        raise KeyLookupError(
            f"{where}: server_name is {response.get('server_name')!r}, not {server_name!r}")
    valid_until = min(_int_field(response, "valid_until_ts", where), now_ms + MAX_KEY_VALIDITY_MS)
    verify_keys = response.get("verify_keys")
    old_keys = response.get("old_verify_keys", {})
    if not isinstance(verify_keys, Mapping) or not isinstance(old_keys, Mapping):
        raise KeyLookupError(f"{where}: verify_keys and old_verify_keys must be objects")

    current: dict[str, VerifyKey] = {}
    for key_id, entry in verify_keys.items():
        if not key_id.startswith("ed25519:"):
            continue
        if not isinstance(entry, Mapping):
            raise KeyLookupError(f"{where}: verify_keys.{key_id} must be an object")
        current[key_id] = _decode_key(key_id, entry.get("key"))

    signatures = _signatures_of(response, server_name)
    signed_with = [k for k in signatures if k.startswith("ed25519:")]
    if not signed_with:
        raise KeyLookupError(f"{where}: not signed by {server_name}")
    for key_id in signed_with:
        if key_id not in current:
            raise KeyLookupError(f"{where}: signed with {key_id}, which it does not announce")
        try:
            _check_signature(response, server_name, current[key_id], key_id)
        except SignatureVerifyError as e:
            raise KeyLookupError(f"{where}: {e}") from None

    try:
        key_json = canonical_json(response).decode("utf-8")
    except (ValueError, TypeError) as e:
        raise KeyLookupError(f"{where}: not canonical JSON: {e}") from None

    def row(key_id: str, key: VerifyKey, until: int, expired: int | None) -> StoredServerKey:
        return StoredServerKey(
            server_name=server_name, key_id=key_id,
            verify_key=signedjson.key.encode_verify_key_base64(key), valid_until_ts=until,
            expired_ts=expired, ts_added=now_ms, from_server=from_server, key_json=key_json)

    rows = [row(key_id, key, valid_until, None) for key_id, key in current.items()]
    for key_id, entry in old_keys.items():
        if not key_id.startswith("ed25519:") or key_id in current:
            continue
        if not isinstance(entry, Mapping):
            raise KeyLookupError(f"{where}: old_verify_keys.{key_id} must be an object")
        expired = _int_field(entry, "expired_ts", f"{where}: old_verify_keys.{key_id}")
        key = _decode_key(key_id, entry.get("key"))
        rows.append(row(key_id, key, min(expired, now_ms + MAX_KEY_VALIDITY_MS), expired))
    return rows


class KeyRing:
    """Looks up, verifies and caches remote servers' signing keys; built once by the
    container (`hs.get_keyring()`)."""

    def __init__(self, hs: HomeServer, fetch: KeyFetchFunc | None = None) -> None:
        self._server_name = hs.hostname
        self._clock = hs.get_clock()
        self._store = hs.get_datastores().server_keys
        self._signing_key = hs.get_signing_key()
        self._refresh_interval_ms = hs.config.key_refresh_interval
        self._notaries: tuple[TrustedKeyServer, ...] = hs.config.trusted_key_servers
        self._fetch: KeyFetchFunc = fetch or _no_fetcher
        # The best key we know per (server, key ID), valid or not: a miss here and in the
        # database is what triggers a fetch.
        self._cache: LruCache[tuple[str, str], ServerKey] = LruCache(10_000)

    def set_fetcher(self, fetch: KeyFetchFunc) -> None:
        """Plug in the outbound HTTP client (done once when federation is wired up)."""
        self._fetch = fetch

    # -- lookups --

    async def get_verify_key(self, server_name: str, key_id: str,
                             minimum_valid_until_ts: int) -> VerifyKey:
        """The key `server_name` signs with under `key_id`, valid at `minimum_valid_until_ts`.

        Raises:
            KeyLookupError: no such key, or none valid that late, from any source.
        """
        key = await self._get_key(server_name, key_id, minimum_valid_until_ts,
                                  use_notaries=True)
        return key.verify_key

    async def verify_json_for_server(self, server_name: str, json_obj: Mapping[str, Any],
                                     minimum_valid_until_ts: int) -> None:
        """Check `server_name`'s signature on a JSON object (request, key response, ...).

        One ed25519 signature with a key we can find and that verifies suffices; a found key
        whose signature does not verify fails the whole object.

        Raises:
            SignatureVerifyError: no signature by the server, or a bad one.
            KeyLookupError: signed, but with no key we could find valid that late.
        """
        key_ids = sorted(k for k in _signatures_of(json_obj, server_name)
                         if k.startswith("ed25519:"))
        if not key_ids:
            raise SignatureVerifyError(f"not signed by {server_name}")
        errors = []
        for key_id in key_ids:
            try:
                key = await self._get_key(server_name, key_id, minimum_valid_until_ts,
                                          use_notaries=True)
            except KeyLookupError as e:
                errors.append(str(e))
                continue
            _check_signature(json_obj, server_name, key.verify_key, key_id)
            return
        raise KeyLookupError("; ".join(errors))

    async def _get_key(self, server_name: str, key_id: str, minimum_valid_until_ts: int,
                       use_notaries: bool) -> ServerKey:
        if server_name == self._server_name:
            return self._local_key(key_id)
        cache_key = (server_name, key_id)
        key = self._cache.get(cache_key)
        if key is not None and key.valid_until_ts >= minimum_valid_until_ts:
            return key
        row = await self._store.get_server_key(server_name, key_id)
        if row is not None:
            key = self._remember(row)
            if key.valid_until_ts >= minimum_valid_until_ts:
                return key

        failures: list[str] = []
        sources: list[TrustedKeyServer | None] = [None]
        if use_notaries:
            sources += [n for n in self._notaries if n.server_name != server_name]
        for notary in sources:
            try:
                if notary is None:
                    rows = await self._fetch_direct(server_name)
                else:
                    rows = await self._fetch_from_notary(
                        notary, server_name, key_id, minimum_valid_until_ts)
            except Exception as e:  # noqa: BLE001 - any failure: try the next source
                source = notary.server_name if notary else server_name
                logger.info("Fetching keys of %s from %s failed: %s", server_name, source, e)
                failures.append(f"{source}: {e}")
                continue
            for fetched in rows:
                if fetched.key_id == key_id:
                    found = self._remember(fetched)
                    if key is None or found.valid_until_ts > key.valid_until_ts:
                        key = found
            if key is not None and key.valid_until_ts >= minimum_valid_until_ts:
                return key
        if key is not None:
            reason = f"only valid until {key.valid_until_ts}"
        else:
            reason = "not found"
        detail = f" ({'; '.join(failures)})" if failures else ""
        raise KeyLookupError(
            f"Key {key_id} of {server_name} valid at {minimum_valid_until_ts}: {reason}{detail}")

    def _remember(self, row: StoredServerKey) -> ServerKey:
        """Decode a row and keep it in memory unless we hold a longer-valid one."""
        cache_key = (row.server_name, row.key_id)
        key = ServerKey(
            server_name=row.server_name, key_id=row.key_id,
            verify_key=_decode_key(row.key_id, row.verify_key),
            valid_until_ts=row.valid_until_ts)
        held = self._cache.get(cache_key)
        if held is not None and held.valid_until_ts > key.valid_until_ts:
            return held
        self._cache.set(cache_key, key)
        return key

    def _local_key(self, key_id: str) -> ServerKey:
        if key_id != self._signing_key.key_id:
            raise KeyLookupError(f"Key {key_id} of {self._server_name}: not found")
        return ServerKey(
            server_name=self._server_name, key_id=key_id,
            verify_key=signedjson.key.get_verify_key(self._signing_key.key),
            valid_until_ts=self._clock.time_msec() + self._refresh_interval_ms)

    # -- fetching --

    async def _fetch_direct(self, server_name: str) -> list[StoredServerKey]:
        """Ask the server itself; store and return its verified keys."""
        response = await self._fetch(server_name, KEY_SERVER_PATH, None)
        rows = parse_key_response(server_name, response, server_name, self._clock.time_msec())
        await self._store.store_server_keys(rows)
        return rows

    async def _fetch_from_notary(self, notary: TrustedKeyServer, server_name: str,
                                 key_id: str, minimum_valid_until_ts: int
                                 ) -> list[StoredServerKey]:
        """Ask a notary; every answer must be signed by the notary and self-signed by the
        origin. Bad entries are skipped (and logged)."""
        body = {"server_keys": {server_name: {
            key_id: {"minimum_valid_until_ts": minimum_valid_until_ts}}}}
        response = await self._fetch(notary.server_name, KEY_QUERY_PATH, body)
        entries = response.get("server_keys") if isinstance(response, Mapping) else None
        if not isinstance(entries, list):
            raise KeyLookupError(f"notary {notary.server_name}: server_keys must be a list")
        now = self._clock.time_msec()
        rows: list[StoredServerKey] = []
        for entry in entries:
            try:
                if not isinstance(entry, Mapping):
                    raise KeyLookupError("entry is not an object")
                await self._check_notary_signature(notary, entry, now)
                rows += parse_key_response(server_name, entry, notary.server_name, now)
            except KeyRingError as e:
                logger.warning("Notary %s: bad key response for %s: %s",
                               notary.server_name, server_name, e)
        await self._store.store_server_keys(rows)
        return rows

    async def _check_notary_signature(self, notary: TrustedKeyServer,
                                      entry: Mapping[str, Any], now: int) -> None:
        signatures = _signatures_of(entry, notary.server_name)
        candidates: list[tuple[str, VerifyKey]]
        if notary.verify_keys:
            # Only the keys pinned in the config count.
            candidates = [(k, _decode_key(k, b64)) for k, b64 in notary.verify_keys
                          if k in signatures]
        else:
            candidates = []
            for k in signatures:
                if not k.startswith("ed25519:"):
                    continue
                try:
                    # Directly from the notary: asking notaries for a notary's key loops.
                    found = await self._get_key(notary.server_name, k, now, use_notaries=False)
                except KeyLookupError:
                    continue
                candidates.append((k, found.verify_key))
        if not candidates:
            raise KeyLookupError(f"not signed with a known key of {notary.server_name}")
        for k, verify_key in candidates:
            _check_signature(entry, notary.server_name, verify_key, k)

    # -- notary (serving other servers) --

    def local_key_response(self) -> dict[str, Any]:
        """Our own `/_matrix/key/v2/server` document, signed."""
        key = self._signing_key
        body = {
            "server_name": self._server_name,
            "valid_until_ts": self._clock.time_msec() + self._refresh_interval_ms,
            "verify_keys": {key.key_id: {"key": key.verify_key_base64}},
            "old_verify_keys": {},
        }
        return sign_json(body, self._server_name, key.key)

    async def get_key_responses(self, server_name: str, key_ids: Collection[str],
                                minimum_valid_until_ts: int) -> list[dict[str, Any]]:
        """What our notary endpoint answers for one server: the key responses we hold,
        each co-signed by us; empty if we have none and the server does not answer.

        The server is asked again when a requested key is missing, when a current key
        is not valid until `minimum_valid_until_ts`, or when the cached response is past
        half its lifetime (the spec's advice to notaries). Failures fall back to the cache,
        stale or not: old signatures must stay checkable while a server is down.
        """
        if server_name == self._server_name:
            return [self.local_key_response()]
        rows = await self._store.get_server_keys(server_name)
        if self._needs_refetch(rows, key_ids, minimum_valid_until_ts):
            try:
                await self._fetch_direct(server_name)
            except Exception as e:  # noqa: BLE001 - answer from the cache instead
                logger.info("Notary: fetching keys of %s failed: %s", server_name, e)
            else:
                rows = await self._store.get_server_keys(server_name)
        if key_ids:
            rows = [r for r in rows if r.key_id in key_ids]
        responses = []
        for key_json in dict.fromkeys(r.key_json for r in rows):
            responses.append(sign_json(json.loads(key_json), self._server_name,
                                       self._signing_key.key))
        return responses

    def _needs_refetch(self, rows: list[StoredServerKey], key_ids: Collection[str],
                       minimum_valid_until_ts: int) -> bool:
        held = {r.key_id for r in rows}
        if not rows or any(k not in held for k in key_ids):
            return True
        now = self._clock.time_msec()
        for r in rows:
            if r.expired_ts is not None or (key_ids and r.key_id not in key_ids):
                continue
            half_life = r.ts_added + (r.valid_until_ts - r.ts_added) // 2
            if r.valid_until_ts < minimum_valid_until_ts or now > half_life:
                return True
        return False
