"""End-to-end encryption keys: device keys, one-time and fallback keys, cross-signing keys
and their signatures (local users), and the cache of remote users' device lists.

Keys are stored as the canonical JSON the client uploaded; the signatures uploaded later
through `/keys/signatures/upload` live in their own table and are merged by the handler.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import attrs

from homeserver.event_hashing import canonical_json
from storage.database import DatabasePool, Transaction

# Keep `IN (...)` lists well under SQLite's oldest bound-parameter limit (999).
_CHUNK = 400


def _dump(obj: Any) -> str:
    return canonical_json(obj).decode("utf-8")


class KeyWrite(enum.Enum):
    """The outcome of a key write that may refuse to replace what is stored."""

    STORED = "stored"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    OVER_LIMIT = "over_limit"


@attrs.frozen(slots=True)
class OneTimeKeyWrite:
    outcome: KeyWrite
    #: the conflicting key ID or the algorithm over the limit, for the error message
    detail: str = ""


@attrs.frozen(slots=True)
class DeviceKeysRow:
    user_id: str
    device_id: str
    display_name: str | None
    #: None for a device that never uploaded keys
    keys: dict[str, Any] | None


@attrs.frozen(slots=True)
class SignatureRow:
    user_id: str
    key_id: str
    target_user_id: str
    target_key_id: str
    signature: str


@attrs.frozen(slots=True)
class RemoteDeviceList:
    user_id: str
    stream_id: int
    master_key: dict[str, Any] | None
    self_signing_key: dict[str, Any] | None
    devices: list[DeviceKeysRow]


def _in(n: int) -> str:
    return ",".join("?" * n)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


class E2eKeysStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    # -- device keys --

    async def set_device_keys(self, user_id: str, device_id: str, keys: Mapping[str, Any],
                              now: int,
                              same: Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
                              ) -> KeyWrite:
        """Store the device's keys unless it already has some: UNCHANGED if `same(stored,
        new)`, else CONFLICT (nothing is replaced)."""
        new_json = _dump(keys)

        def _txn(txn: Transaction) -> KeyWrite:
            row = txn.select_one(
                "SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?",
                (user_id, device_id))
            if row is not None:
                return KeyWrite.UNCHANGED if same(json.loads(row[0]), keys) \
                    else KeyWrite.CONFLICT
            txn.insert("e2e_device_keys", {"user_id": user_id, "device_id": device_id,
                                           "key_json": new_json, "ts_added_ms": now})
            return KeyWrite.STORED

        return await self.db.run_interaction("set_e2e_device_keys", _txn)

    async def get_device_keys(self, user_id: str, device_id: str) -> dict[str, Any] | None:
        rows = await self.db.execute(
            "get_e2e_device_keys",
            "SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?",
            user_id, device_id)
        return json.loads(rows[0][0]) if rows else None

    async def get_devices_with_keys(self, user_ids: Collection[str]
                                    ) -> dict[str, list[DeviceKeysRow]]:
        """Every device of these local users with its keys (None if never uploaded)."""
        users = sorted(set(user_ids))

        def _txn(txn: Transaction) -> dict[str, list[DeviceKeysRow]]:
            out: dict[str, list[DeviceKeysRow]] = {u: [] for u in users}
            for chunk in _chunks(users):
                rows = txn.select_all(
                    "SELECT d.user_id, d.device_id, d.display_name, k.key_json"
                    " FROM devices AS d LEFT JOIN e2e_device_keys AS k"
                    " ON k.user_id = d.user_id AND k.device_id = d.device_id"
                    f" WHERE d.user_id IN ({_in(len(chunk))}) ORDER BY d.device_id",
                    tuple(chunk))
                for r in rows:
                    out[r[0]].append(DeviceKeysRow(
                        r[0], r[1], r[2], json.loads(r[3]) if r[3] is not None else None))
            return out

        return await self.db.run_interaction("get_devices_with_keys", _txn)

    async def delete_device_keys(self, user_id: str, device_ids: Collection[str]) -> None:
        """Forget every key of these devices (they were deleted), and the signatures
        made over them."""
        pairs = [(user_id, d) for d in sorted(set(device_ids))]

        def _txn(txn: Transaction) -> None:
            for table in ("e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys"):
                txn.executemany(
                    f"DELETE FROM {table} WHERE user_id = ? AND device_id = ?", pairs)
            txn.executemany(
                "DELETE FROM e2e_cross_signing_signatures"
                " WHERE target_user_id = ? AND target_key_id = ?", pairs)

        if pairs:
            await self.db.run_interaction("delete_e2e_device_keys", _txn)

    # -- one-time and fallback keys --

    async def add_one_time_keys(self, user_id: str, device_id: str, now: int,
                                keys: Sequence[tuple[str, str, Mapping[str, Any]]],
                                limit: int) -> OneTimeKeyWrite:
        """Add (algorithm, key_id, key) one-time keys in one transaction.

        A key ID already stored with the same key is skipped (a retried upload); with a
        different key, or when an algorithm would then exceed `limit` unclaimed keys,
        nothing is stored.
        """

        def _txn(txn: Transaction) -> OneTimeKeyWrite:
            new: list[tuple[str, str, str]] = []
            for algorithm, key_id, key in keys:
                key_json = _dump(key)
                row = txn.select_one(
                    "SELECT key_json FROM e2e_one_time_keys WHERE user_id = ?"
                    " AND device_id = ? AND algorithm = ? AND key_id = ?",
                    (user_id, device_id, algorithm, key_id))
                if row is None:
                    new.append((algorithm, key_id, key_json))
                elif row[0] != key_json:
                    return OneTimeKeyWrite(KeyWrite.CONFLICT, f"{algorithm}:{key_id}")
            counts = _count_txn(txn, user_id, device_id)
            for algorithm in {a for a, _, _ in new}:
                total = counts.get(algorithm, 0) + sum(1 for a, _, _ in new if a == algorithm)
                if total > limit:
                    return OneTimeKeyWrite(KeyWrite.OVER_LIMIT, algorithm)
            txn.executemany(
                "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id,"
                " key_json, ts_added_ms) VALUES (?, ?, ?, ?, ?, ?)",
                [(user_id, device_id, a, k, j, now) for a, k, j in new])
            return OneTimeKeyWrite(KeyWrite.STORED if new else KeyWrite.UNCHANGED)

        return await self.db.run_interaction("add_e2e_one_time_keys", _txn)

    async def count_one_time_keys(self, user_id: str, device_id: str) -> dict[str, int]:
        """Unclaimed one-time keys of the device, per algorithm."""
        return await self.db.run_interaction(
            "count_e2e_one_time_keys", _count_txn, user_id, device_id)

    async def set_fallback_keys(self, user_id: str, device_id: str,
                                keys: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Replace the device's fallback key of each algorithm; re-uploading the same key
        keeps its used mark."""

        def _txn(txn: Transaction) -> None:
            for algorithm, key_id, key in keys:
                key_json = _dump(key)
                row = txn.select_one(
                    "SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ?"
                    " AND device_id = ? AND algorithm = ?", (user_id, device_id, algorithm))
                if row is not None and (row[0], row[1]) == (key_id, key_json):
                    continue
                txn.upsert("e2e_fallback_keys",
                           {"user_id": user_id, "device_id": device_id,
                            "algorithm": algorithm},
                           {"key_id": key_id, "key_json": key_json, "used": 0})

        await self.db.run_interaction("set_e2e_fallback_keys", _txn)

    async def get_key_counts(self, user_id: str, device_id: str
                             ) -> tuple[dict[str, int], list[str]]:
        """What /sync reports about the device's keys, in one transaction: unclaimed
        one-time keys per algorithm, and the algorithms of its unused fallback keys."""

        def _txn(txn: Transaction) -> tuple[dict[str, int], list[str]]:
            rows = txn.select_all(
                "SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ?"
                " AND device_id = ? AND used = 0 ORDER BY algorithm", (user_id, device_id))
            return _count_txn(txn, user_id, device_id), [r[0] for r in rows]

        return await self.db.run_interaction("get_e2e_key_counts", _txn)

    async def claim_keys(self, wanted: Sequence[tuple[str, str, str]]
                         ) -> dict[tuple[str, str, str], tuple[str, dict[str, Any]]]:
        """Claim one key per (user_id, device_id, algorithm): a one-time key (deleted),
        else the fallback key (marked used). Returns (key_id, key) per satisfied query."""

        def _txn(txn: Transaction) -> dict[tuple[str, str, str], tuple[str, dict[str, Any]]]:
            out: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}
            for user_id, device_id, algorithm in wanted:
                row = txn.select_one(
                    "SELECT key_id, key_json FROM e2e_one_time_keys WHERE user_id = ?"
                    " AND device_id = ? AND algorithm = ? ORDER BY ts_added_ms, key_id"
                    " LIMIT 1", (user_id, device_id, algorithm))
                if row is not None:
                    txn.execute(
                        "DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
                        " AND algorithm = ? AND key_id = ?",
                        (user_id, device_id, algorithm, row[0]))
                else:
                    row = txn.select_one(
                        "SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ?"
                        " AND device_id = ? AND algorithm = ?", (user_id, device_id, algorithm))
                    if row is None:
                        continue
                    txn.execute(
                        "UPDATE e2e_fallback_keys SET used = 1 WHERE user_id = ?"
                        " AND device_id = ? AND algorithm = ?", (user_id, device_id, algorithm))
                out[(user_id, device_id, algorithm)] = (row[0], json.loads(row[1]))
            return out

        return await self.db.run_interaction("claim_e2e_keys", _txn)

    # -- cross-signing --

    async def set_cross_signing_keys(self, user_id: str, keys: Mapping[str, Mapping[str, Any]],
                                     now: int) -> None:
        """Store (replace) the user's cross-signing keys by type, in one transaction. A
        replaced key takes the signatures made with or over the old one with it."""

        def _txn(txn: Transaction) -> None:
            for key_type, key in keys.items():
                old = txn.select_one(
                    "SELECT key_json FROM e2e_cross_signing_keys WHERE user_id = ?"
                    " AND key_type = ?", (user_id, key_type))
                if old is not None:
                    for key_id in json.loads(old[0]).get("keys", {}):
                        txn.execute("DELETE FROM e2e_cross_signing_signatures"
                                    " WHERE user_id = ? AND key_id = ?", (user_id, key_id))
                        txn.execute("DELETE FROM e2e_cross_signing_signatures"
                                    " WHERE target_user_id = ? AND target_key_id = ?",
                                    (user_id, key_id.split(":", 1)[-1]))
                txn.upsert("e2e_cross_signing_keys", {"user_id": user_id, "key_type": key_type},
                           {"key_json": _dump(key), "ts_added_ms": now})

        await self.db.run_interaction("set_e2e_cross_signing_keys", _txn)

    async def get_cross_signing_keys(self, user_ids: Collection[str]
                                     ) -> dict[str, dict[str, dict[str, Any]]]:
        """user ID -> key type ("master", "self_signing", "user_signing") -> key."""
        users = sorted(set(user_ids))

        def _txn(txn: Transaction) -> dict[str, dict[str, dict[str, Any]]]:
            out: dict[str, dict[str, dict[str, Any]]] = {}
            for chunk in _chunks(users):
                for r in txn.select_all(
                        "SELECT user_id, key_type, key_json FROM e2e_cross_signing_keys"
                        f" WHERE user_id IN ({_in(len(chunk))})", tuple(chunk)):
                    out.setdefault(r[0], {})[r[1]] = json.loads(r[2])
            return out

        return await self.db.run_interaction("get_e2e_cross_signing_keys", _txn)

    async def add_signatures(self, rows: Sequence[SignatureRow]) -> None:
        def _txn(txn: Transaction) -> None:
            for r in rows:
                txn.upsert("e2e_cross_signing_signatures",
                           {"user_id": r.user_id, "key_id": r.key_id,
                            "target_user_id": r.target_user_id,
                            "target_key_id": r.target_key_id},
                           {"signature": r.signature})

        if rows:
            await self.db.run_interaction("add_e2e_signatures", _txn)

    async def get_signatures_for_users(self, user_ids: Collection[str]
                                       ) -> list[SignatureRow]:
        """Every uploaded signature over a key (device or cross-signing) of these users."""
        users = sorted(set(user_ids))

        def _txn(txn: Transaction) -> list[SignatureRow]:
            out: list[SignatureRow] = []
            for chunk in _chunks(users):
                out.extend(SignatureRow(*r) for r in txn.select_all(
                    "SELECT user_id, key_id, target_user_id, target_key_id, signature"
                    " FROM e2e_cross_signing_signatures"
                    f" WHERE target_user_id IN ({_in(len(chunk))})", tuple(chunk)))
            return out

        return await self.db.run_interaction("get_e2e_signatures", _txn)

    # -- the remote device-list cache --

    async def get_remote_device_list(self, user_id: str) -> RemoteDeviceList | None:
        def _txn(txn: Transaction) -> RemoteDeviceList | None:
            head = txn.select_one(
                "SELECT stream_id, master_key, self_signing_key FROM remote_device_lists"
                " WHERE user_id = ?", (user_id,))
            if head is None:
                return None
            devices = [DeviceKeysRow(user_id, r[0], r[1],
                                     json.loads(r[2]) if r[2] is not None else None)
                       for r in txn.select_all(
                           "SELECT device_id, display_name, key_json FROM remote_device_keys"
                           " WHERE user_id = ? ORDER BY device_id", (user_id,))]
            return RemoteDeviceList(
                user_id, int(head[0]), json.loads(head[1]) if head[1] else None,
                json.loads(head[2]) if head[2] else None, devices)

        return await self.db.run_interaction("get_remote_device_list", _txn)

    async def replace_remote_device_list(self, device_list: RemoteDeviceList) -> None:
        """Store a full resync of a remote user's devices, replacing what was cached."""

        def _txn(txn: Transaction) -> None:
            user_id = device_list.user_id
            txn.execute("DELETE FROM remote_device_keys WHERE user_id = ?", (user_id,))
            txn.executemany(
                "INSERT INTO remote_device_keys (user_id, device_id, display_name, key_json)"
                " VALUES (?, ?, ?, ?)",
                [(user_id, d.device_id, d.display_name,
                  _dump(d.keys) if d.keys is not None else None)
                 for d in device_list.devices])
            txn.upsert("remote_device_lists", {"user_id": user_id}, {
                "stream_id": device_list.stream_id,
                "master_key": _dump(device_list.master_key)
                if device_list.master_key else None,
                "self_signing_key": _dump(device_list.self_signing_key)
                if device_list.self_signing_key else None})

        await self.db.run_interaction("replace_remote_device_list", _txn)

    async def update_remote_device(self, user_id: str, stream_id: int, device_id: str,
                                   display_name: str | None, keys: Mapping[str, Any] | None,
                                   deleted: bool) -> None:
        """Apply one `m.device_list_update` to a cached user (who must be cached)."""

        def _txn(txn: Transaction) -> None:
            if deleted:
                txn.execute("DELETE FROM remote_device_keys WHERE user_id = ?"
                            " AND device_id = ?", (user_id, device_id))
            else:
                txn.upsert("remote_device_keys", {"user_id": user_id, "device_id": device_id},
                           {"display_name": display_name,
                            "key_json": _dump(keys) if keys is not None else None})
            txn.execute("UPDATE remote_device_lists SET stream_id = ? WHERE user_id = ?"
                        " AND stream_id < ?", (stream_id, user_id, stream_id))

        await self.db.run_interaction("update_remote_device", _txn)

    async def update_remote_signing_keys(self, user_id: str,
                                         master_key: Mapping[str, Any] | None,
                                         self_signing_key: Mapping[str, Any] | None) -> None:
        """Apply an `m.signing_key_update` to a cached user (no-op if not cached)."""
        sets: dict[str, str] = {}
        if master_key is not None:
            sets["master_key"] = _dump(master_key)
        if self_signing_key is not None:
            sets["self_signing_key"] = _dump(self_signing_key)
        if not sets:
            return
        await self.db.execute(
            "update_remote_signing_keys",
            f"UPDATE remote_device_lists SET {', '.join(f'{c} = ?' for c in sets)}"
            " WHERE user_id = ?", *sets.values(), user_id)

    async def delete_remote_device_lists(self, user_ids: Collection[str]) -> None:
        """Drop the cache of these remote users (they no longer share a room with us)."""
        users = sorted(set(user_ids))

        def _txn(txn: Transaction) -> None:
            for chunk in _chunks(users):
                for table in ("remote_device_keys", "remote_device_lists"):
                    txn.execute(f"DELETE FROM {table} WHERE user_id IN ({_in(len(chunk))})",
                                tuple(chunk))

        if users:
            await self.db.run_interaction("delete_remote_device_lists", _txn)

    async def get_cached_remote_users(self) -> list[str]:
        rows = await self.db.execute("get_cached_remote_users",
                                     "SELECT user_id FROM remote_device_lists")
        return [r[0] for r in rows]


def _count_txn(txn: Transaction, user_id: str, device_id: str) -> dict[str, int]:
    rows = txn.select_all(
        "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE user_id = ?"
        " AND device_id = ? GROUP BY algorithm", (user_id, device_id))
    return {r[0]: int(r[1]) for r in rows}
