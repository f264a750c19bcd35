"""Remote servers' verified signing keys: the key ring's database cache, and what our notary
endpoint (`/_matrix/key/v2/query`) serves again.

The rows hold keys the key ring has already verified; this store does no cryptography.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from storage.database import DatabasePool, Transaction

_COLUMNS = ("server_name, key_id, verify_key, valid_until_ts, expired_ts, ts_added,"
            " from_server, key_json")


@attrs.frozen(slots=True)
class StoredServerKey:
    """One key of one server, with the response that announced it."""

    server_name: str
    key_id: str
    #: unpadded base64 of the public key
    verify_key: str
    #: signatures made before this time verify (old keys: their `expired_ts`)
    valid_until_ts: int
    #: set for keys from `old_verify_keys`
    expired_ts: int | None
    ts_added: int
    #: the origin itself or the notary that answered
    from_server: str
    #: the whole key response as received (canonical JSON)
    key_json: str


def _row(row: tuple[Any, ...]) -> StoredServerKey:
    expired = row[4]
    return StoredServerKey(
        server_name=str(row[0]), key_id=str(row[1]), verify_key=str(row[2]),
        valid_until_ts=int(row[3]),
        expired_ts=None if expired is None else int(expired),
        ts_added=int(row[5]),
        from_server=str(row[6]), key_json=str(row[7]))


class ServerKeysStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def store_server_keys(self, keys: Iterable[StoredServerKey]) -> None:
        """Save verified keys. A row valid for longer than the new one is kept: a later
        (or replayed) response never shortens what an earlier one vouched for."""
        rows = list(keys)
        if rows:
            await self.db.run_interaction("store_server_keys", self._store_txn, rows)

    def _store_txn(self, txn: Transaction, rows: list[StoredServerKey]) -> None:
        for key in rows:
            existing = txn.select_one(
                "SELECT valid_until_ts FROM server_signature_keys"
                " WHERE server_name = ? AND key_id = ?", (key.server_name, key.key_id))
            if existing is not None and int(existing[0]) > key.valid_until_ts:
                continue
            txn.upsert(
                "server_signature_keys",
                {"server_name": key.server_name, "key_id": key.key_id},
                {"verify_key": key.verify_key, "valid_until_ts": key.valid_until_ts,
                 "expired_ts": key.expired_ts, "ts_added": key.ts_added,
                 "from_server": key.from_server, "key_json": key.key_json})

    async def get_server_key(self, server_name: str, key_id: str) -> StoredServerKey | None:
        rows = await self.db.execute(
            "get_server_key", f"SELECT {_COLUMNS} FROM server_signature_keys"
            " WHERE server_name = ? AND key_id = ?", server_name, key_id)
        return _row(rows[0]) if rows else None

    async def get_server_keys(self, server_name: str) -> list[StoredServerKey]:
        """Every key we hold for the server, ordered by key ID."""
        rows = await self.db.execute(
            "get_server_keys", f"SELECT {_COLUMNS} FROM server_signature_keys"
            " WHERE server_name = ? ORDER BY key_id", server_name)
        return [_row(r) for r in rows]
