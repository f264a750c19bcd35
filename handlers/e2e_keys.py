"""End-to-end encryption keys: upload, query, claim and `/keys/changes`.

The server stores the keys clients upload and hands them to other clients; it never sees
plaintext. Device keys must be signed by the device's own ed25519 key and are never
silently replaced by different keys for the same device; one-time keys are capped at
`MAX_ONE_TIME_KEYS` unclaimed per device and algorithm (an upload over the cap is refused,
as Synapse does). Remote users' keys come from the remote device-list cache when we have
it, otherwise over federation (`/user/keys/query`, `/user/keys/claim`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet import defer

from handlers.e2e_signing import merge_signatures, signed_part, verify_key_signature
from homeserver.errors import BadRequestError, Codes, MatrixError
from homeserver.identifiers import UserID
from homeserver.stream_token import StreamToken
from storage.stores.e2e_keys import DeviceKeysRow, KeyWrite, SignatureRow

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: unclaimed one-time keys per device and algorithm (Synapse's limit)
MAX_ONE_TIME_KEYS = 500
#: how long a remote query or claim waits when the client gives no `timeout`
DEFAULT_REMOTE_TIMEOUT_MS = 10_000


@attrs.frozen(slots=True)
class KeysQueryResult:
    """The `/keys/query` answer's maps (user ID -> device ID -> keys, user ID -> key)."""

    device_keys: dict[str, dict[str, dict[str, Any]]]
    master_keys: dict[str, dict[str, Any]]
    self_signing_keys: dict[str, dict[str, Any]]
    user_signing_keys: dict[str, dict[str, Any]]
    failures: dict[str, dict[str, Any]]


@attrs.frozen(slots=True)
class KeysClaimResult:
    #: user ID -> device ID -> "algorithm:key_id" -> key
    one_time_keys: dict[str, dict[str, dict[str, Any]]]
    failures: dict[str, dict[str, Any]]


def split_key_id(key_id: str) -> tuple[str, str]:
    """("algorithm", "id") of "algorithm:id" (the request models checked the shape)."""
    algorithm, _, rest = key_id.partition(":")
    return algorithm, rest


def device_keys_json(row: DeviceKeysRow, signatures: list[SignatureRow]) -> dict[str, Any]:
    """The device's keys as served: uploaded signatures merged in, display name unsigned."""
    assert row.keys is not None
    keys = merge_signatures(row.keys, [(s.user_id, s.key_id, s.signature)
                                       for s in signatures
                                       if s.target_key_id == row.device_id
                                       and s.target_user_id == row.user_id])
    unsigned = dict(keys.get("unsigned") or {})
    if row.display_name is not None:
        unsigned["device_display_name"] = row.display_name
    if unsigned:
        keys["unsigned"] = unsigned
    else:
        keys.pop("unsigned", None)
    return keys


def failure(status: int, message: str, errcode: str | None = None) -> dict[str, Any]:
    """One entry of a `failures` map (Synapse's shape)."""
    body: dict[str, Any] = {"status": status, "message": message}
    if errcode is not None:
        body["errcode"] = errcode
    return body


class E2eKeysHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._store = stores.e2e_keys
        self._devices = stores.devices
        self._members = stores.room_members
        self._clock = hs.get_clock()
        self._device_lists = hs.get_device_list_handler()
        # Fetched on first use: the federation client is built after the handlers.
        self._get_federation_client = hs.get_federation_client
        self._is_mine_id = hs.is_mine_id

    # POST /_matrix/client/v3/keys/upload
    async def upload_keys(self, user_id: str, device_id: str,
                          device_keys: Mapping[str, Any] | None,
                          one_time_keys: Mapping[str, Any],
                          fallback_keys: Mapping[str, Any]) -> dict[str, int]:
        """Store the device's keys; returns its unclaimed one-time key counts.

        Raises:
            BadRequestError: device keys for another user or device, without a valid
                self-signature (M_INVALID_SIGNATURE), or different from the stored ones;
                a one-time key ID reused with a different key; over the one-time key cap
                (M_TOO_LARGE).
        """
        now = self._clock.time_msec()
        if device_keys:
            await self._upload_device_keys(user_id, device_id, device_keys, now)
        if one_time_keys:
            keys = [(*split_key_id(k), v) for k, v in sorted(one_time_keys.items())]
            written = await self._store.add_one_time_keys(
                user_id, device_id, now, keys, MAX_ONE_TIME_KEYS)
            if written.outcome is KeyWrite.CONFLICT:
                raise BadRequestError(
                    f"One-time key {written.detail} already exists with a different value")
            if written.outcome is KeyWrite.OVER_LIMIT:
                raise BadRequestError(
                    f"Too many unclaimed {written.detail} one-time keys"
                    f" (at most {MAX_ONE_TIME_KEYS} per device)", Codes.TOO_LARGE)
        if fallback_keys:
            await self._store.set_fallback_keys(
                user_id, device_id,
                [(*split_key_id(k), v) for k, v in sorted(fallback_keys.items())])
        return await self.count_one_time_keys(user_id, device_id)

    async def _upload_device_keys(self, user_id: str, device_id: str,
                                  keys: Mapping[str, Any], now: int) -> None:
        if keys.get("user_id") != user_id or keys.get("device_id") != device_id:
            raise BadRequestError("Device keys must be those of the calling user and device")
        key_id = f"ed25519:{device_id}"
        public = keys.get("keys", {}).get(key_id)
        if not isinstance(public, str):
            raise BadRequestError(f"Device keys lack the device's {key_id} key")
        if not verify_key_signature(keys, user_id, key_id, public):
            raise BadRequestError("Device keys are not signed by the device's own key",
                                  Codes.INVALID_SIGNATURE)
        # The same keys with other signatures (or `unsigned`) are the same keys.
        written = await self._store.set_device_keys(
            user_id, device_id, keys, now, lambda a, b: signed_part(a) == signed_part(b))
        if written is KeyWrite.CONFLICT:
            raise BadRequestError(
                "This device already has different keys; log in as a new device")
        if written is KeyWrite.STORED:
            await self._device_lists.notify_device_change(user_id, [device_id])

    async def count_one_time_keys(self, user_id: str, device_id: str) -> dict[str, int]:
        """Unclaimed one-time keys per algorithm (`signed_curve25519` always present, as
        clients expect)."""
        counts = await self._store.count_one_time_keys(user_id, device_id)
        counts.setdefault("signed_curve25519", 0)
        return counts

    async def get_key_counts_for_sync(self, user_id: str, device_id: str
                                      ) -> tuple[dict[str, int], list[str]]:
        """(`device_one_time_keys_count`, `device_unused_fallback_key_types`) of /sync."""
        counts, fallback = await self._store.get_key_counts(user_id, device_id)
        counts.setdefault("signed_curve25519", 0)
        return counts, fallback

    # POST /_matrix/client/v3/keys/query
    async def query_keys(self, requester_id: str, device_keys: Mapping[str, list[str]],
                         timeout_ms: int | None) -> KeysQueryResult:
        """Keys of local users from the store, of remote users from the cache or their
        servers (an unreachable one is listed in `failures`)."""
        local = {u: d for u, d in device_keys.items() if self._is_mine_id(u)}
        result = await self.query_local_keys(local, requester_id)
        remote: dict[str, dict[str, list[str]]] = defaultdict(dict)
        for user_id, devices in device_keys.items():
            if self._is_mine_id(user_id):
                continue
            if await self._answer_from_cache(result, user_id, devices):
                continue
            try:
                remote[UserID.parse(user_id).domain][user_id] = devices
            except MatrixError:
                continue
        timeout = (timeout_ms if timeout_ms is not None else DEFAULT_REMOTE_TIMEOUT_MS) / 1000

        async def one(domain: str, users: dict[str, list[str]]) -> None:
            try:
                answer = await self._get_federation_client().post_json(
                    domain, "/_matrix/federation/v1/user/keys/query",
                    {"device_keys": users}, timeout=timeout)
            except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
                logger.info("Key query to %s failed: %s", domain, e)
                result.failures[domain] = failure(503, str(e))
                return
            _merge_remote_query(result, users, answer)

        if remote:
            await defer.gatherResults(
                [defer.ensureDeferred(one(d, u)) for d, u in sorted(remote.items())],
                consumeErrors=True)
        await self._merge_own_signatures_on_remote_masters(result, requester_id)
        return result

    async def _merge_own_signatures_on_remote_masters(self, result: KeysQueryResult,
                                                      requester_id: str) -> None:
        """The requester's own signatures (by their user-signing key) on remote users'
        master keys: kept here, so that the client sees whom it has verified."""
        remote = [u for u in result.master_keys if not self._is_mine_id(u)]
        if not remote:
            return
        mine = [s for s in await self._store.get_signatures_for_users(remote)
                if s.user_id == requester_id]
        for user_id in remote:
            master = result.master_keys[user_id]
            public = next(iter(master.get("keys", {}).values()), "")
            sigs = [(s.user_id, s.key_id, s.signature) for s in mine
                    if s.target_user_id == user_id and s.target_key_id == public]
            if sigs:
                result.master_keys[user_id] = merge_signatures(master, sigs)

    async def _answer_from_cache(self, result: KeysQueryResult, user_id: str,
                                 devices: list[str]) -> bool:
        """Fill in a remote user from the device-list cache, if we have them cached and
        they still share a room with one of our users (else the cache may be stale)."""
        cached = await self._store.get_remote_device_list(user_id)
        if cached is None or not await self._members.get_local_users_sharing_room_with(
                user_id):
            return False
        wanted = set(devices)
        result.device_keys[user_id] = {
            d.device_id: device_keys_json(d, []) for d in cached.devices
            if d.keys is not None and (not wanted or d.device_id in wanted)}
        if cached.master_key is not None:
            result.master_keys[user_id] = cached.master_key
        if cached.self_signing_key is not None:
            result.self_signing_keys[user_id] = cached.self_signing_key
        return True

    async def query_local_keys(self, device_keys: Mapping[str, list[str]],
                               requester_id: str | None) -> KeysQueryResult:
        """Keys of these local users (an empty device list means every device).

        `requester_id` None is a federation query: no user-signing keys, and only the
        owner's signatures on master keys. A client sees its own user-signing key and its
        own signatures on other users' master keys.
        """
        users = sorted(device_keys)
        devices = await self._store.get_devices_with_keys(users)
        cross = await self._store.get_cross_signing_keys(users)
        signatures = await self._store.get_signatures_for_users(users)
        by_target: dict[str, list[SignatureRow]] = defaultdict(list)
        for s in signatures:
            by_target[s.target_user_id].append(s)
        result = KeysQueryResult({}, {}, {}, {}, {})
        for user_id in users:
            wanted = set(device_keys[user_id])
            out = result.device_keys.setdefault(user_id, {})
            for row in devices.get(user_id, []):
                if row.keys is None or (wanted and row.device_id not in wanted):
                    continue
                out[row.device_id] = device_keys_json(row, by_target[user_id])
            keys = cross.get(user_id, {})
            if "master" in keys:
                master = keys["master"]
                public = next(iter(master.get("keys", {}).values()), "")
                result.master_keys[user_id] = merge_signatures(master, [
                    (s.user_id, s.key_id, s.signature) for s in by_target[user_id]
                    if s.target_key_id == public
                    and s.user_id in (user_id, requester_id)])
            if "self_signing" in keys:
                result.self_signing_keys[user_id] = keys["self_signing"]
            if "user_signing" in keys and user_id == requester_id:
                result.user_signing_keys[user_id] = keys["user_signing"]
        return result

    # POST /_matrix/client/v3/keys/claim
    async def claim_keys(self, one_time_keys: Mapping[str, Mapping[str, str]],
                         timeout_ms: int | None) -> KeysClaimResult:
        local = {u: d for u, d in one_time_keys.items() if self._is_mine_id(u)}
        result = KeysClaimResult(await self.claim_local_keys(local), {})
        remote: dict[str, dict[str, Mapping[str, str]]] = defaultdict(dict)
        for user_id, devices in one_time_keys.items():
            if not self._is_mine_id(user_id):
                try:
                    remote[UserID.parse(user_id).domain][user_id] = devices
                except MatrixError:
                    continue
        timeout = (timeout_ms if timeout_ms is not None else DEFAULT_REMOTE_TIMEOUT_MS) / 1000

        async def one(domain: str, users: dict[str, Mapping[str, str]]) -> None:
            try:
                answer = await self._get_federation_client().post_json(
                    domain, "/_matrix/federation/v1/user/keys/claim",
                    {"one_time_keys": users}, timeout=timeout)
            except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
                logger.info("Key claim to %s failed: %s", domain, e)
                result.failures[domain] = failure(503, str(e))
                return
            claimed = answer.get("one_time_keys") if isinstance(answer, dict) else None
            if not isinstance(claimed, dict):
                return
            for user_id, devices in claimed.items():
                # Only the users we asked this server about, and only its own users.
                if user_id in users and isinstance(devices, dict):
                    result.one_time_keys[user_id] = {
                        d: k for d, k in devices.items() if isinstance(k, dict)}

        if remote:
            await defer.gatherResults(
                [defer.ensureDeferred(one(d, u)) for d, u in sorted(remote.items())],
                consumeErrors=True)
        return result

    async def claim_local_keys(self, one_time_keys: Mapping[str, Mapping[str, str]]
                               ) -> dict[str, dict[str, dict[str, Any]]]:
        """One key per (local user, device, algorithm): a one-time key, else the fallback
        key."""
        wanted = [(u, d, a) for u, devices in sorted(one_time_keys.items())
                  for d, a in sorted(devices.items())]
        claimed = await self._store.claim_keys(wanted)
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (user_id, device_id, algorithm), (key_id, key) in claimed.items():
            out.setdefault(user_id, {})[device_id] = {f"{algorithm}:{key_id}": key}
        return out

    # GET /_matrix/client/v3/keys/changes
    async def get_key_changes(self, user_id: str, from_token: str, to_token: str
                              ) -> tuple[list[str], list[str]]:
        """(changed, left) between two sync tokens.

        Raises:
            BadRequestError: a token that is not one of our sync tokens.
        """
        try:
            since, until = StreamToken.parse(from_token), StreamToken.parse(to_token)
        except ValueError:
            raise BadRequestError("Invalid from or to token") from None
        return await self._device_lists.get_changes_for_sync(
            user_id, since.device_list, since.room, until.device_list, until.room)


def _merge_remote_query(result: KeysQueryResult, asked: Mapping[str, list[str]],
                        answer: Any) -> None:
    """Copy a remote `/user/keys/query` answer into `result`, keeping only the users we
    asked this server about and objects that claim the right user and device."""
    if not isinstance(answer, dict):
        return
    devices = answer.get("device_keys")
    if isinstance(devices, dict):
        for user_id, by_device in devices.items():
            if user_id not in asked or not isinstance(by_device, dict):
                continue
            result.device_keys[user_id] = {
                d: k for d, k in by_device.items()
                if isinstance(k, dict) and k.get("user_id") == user_id
                and k.get("device_id") == d}
    for field, target in (("master_keys", result.master_keys),
                          ("self_signing_keys", result.self_signing_keys)):
        keys = answer.get(field)
        if isinstance(keys, dict):
            for user_id, key in keys.items():
                if user_id in asked and isinstance(key, dict) \
                        and key.get("user_id") == user_id:
                    target[user_id] = key

