"""Access and refresh tokens, stored only as SHA-256 hashes."""

from __future__ import annotations

import attrs

from storage.caches import LruCache
from storage.database import DatabasePool, Transaction
from storage.id_generator import IdGenerator


@attrs.frozen(slots=True)
class AccessTokenRow:
    token_id: int
    user_id: str
    device_id: str | None
    valid_until_ms: int | None
    refresh_token_id: int | None
    used: bool


@attrs.frozen(slots=True)
class RefreshTokenRow:
    token_id: int
    user_id: str
    device_id: str
    next_token_id: int | None
    expiry_ts: int | None
    #: whether the access token issued with the next refresh token has been used yet
    next_token_used: bool


class TokenStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._access_ids = IdGenerator(db, "access_tokens")
        self._refresh_ids = IdGenerator(db, "refresh_tokens")
        # Positive lookups only. Any transaction that deletes or changes access tokens
        # clears it after commit (`invalidate_after_txn`): revocation is rare, reads are not.
        self._cache: LruCache[str, AccessTokenRow] = LruCache(50_000)

    def invalidate_after_txn(self, txn: Transaction) -> None:
        """Forget cached tokens once `txn` commits; call from every token-changing txn."""
        txn.call_after(self._cache.clear)

    async def add_access_token(self, user_id: str, token_hash: str, device_id: str | None,
                               valid_until_ms: int | None,
                               refresh_token_id: int | None = None) -> int:
        token_id = self._access_ids.next_id()

        def _txn(txn: Transaction) -> None:
            txn.insert("access_tokens", {
                "id": token_id, "user_id": user_id, "device_id": device_id,
                "token_hash": token_hash, "valid_until_ms": valid_until_ms,
                "refresh_token_id": refresh_token_id,
            })

        await self.db.run_interaction("add_access_token", _txn)
        return token_id

    async def add_refresh_token(self, user_id: str, token_hash: str, device_id: str,
                                expiry_ts: int | None) -> int:
        token_id = self._refresh_ids.next_id()

        def _txn(txn: Transaction) -> None:
            txn.insert("refresh_tokens", {
                "id": token_id, "user_id": user_id, "device_id": device_id,
                "token_hash": token_hash, "expiry_ts": expiry_ts,
            })

        await self.db.run_interaction("add_refresh_token", _txn)
        return token_id

    async def get_access_token(self, token_hash: str) -> AccessTokenRow | None:
        """The token's row (cached: read on every authenticated request)."""
        cached = self._cache.get(token_hash)
        if cached is not None:
            return cached
        seq = self._cache.sequence
        rows = await self.db.execute(
            "get_access_token",
            "SELECT id, user_id, device_id, valid_until_ms, refresh_token_id, used"
            " FROM access_tokens WHERE token_hash = ?",
            token_hash,
        )
        if not rows:
            return None
        r = rows[0]
        row = AccessTokenRow(int(r[0]), r[1], r[2], r[3], r[4], bool(r[5]))
        self._cache.set(token_hash, row, expected_sequence=seq)
        return row

    async def mark_access_token_used(self, token_id: int) -> bool:
        """Record the first use of a refreshable access token; True if it was unused."""

        def _txn(txn: Transaction) -> bool:
            self.invalidate_after_txn(txn)
            txn.execute("UPDATE access_tokens SET used = 1 WHERE id = ? AND used = 0", (token_id,))
            if txn.rowcount == 0:
                return False
            # Its first use retires the refresh token that was exchanged for it, and the
            # access token that went with that one.
            row = txn.select_one("SELECT refresh_token_id FROM access_tokens WHERE id = ?",
                                 (token_id,))
            if row and row[0] is not None:
                _retire_predecessors_txn(txn, int(row[0]))
            return True

        return await self.db.run_interaction("mark_access_token_used", _txn)

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenRow | None:
        rows = await self.db.execute(
            "get_refresh_token",
            "SELECT rt.id, rt.user_id, rt.device_id, rt.next_token_id, rt.expiry_ts,"
            " (SELECT MAX(used) FROM access_tokens at WHERE at.refresh_token_id = rt.next_token_id)"
            " FROM refresh_tokens rt WHERE rt.token_hash = ?",
            token_hash,
        )
        if not rows:
            return None
        r = rows[0]
        return RefreshTokenRow(int(r[0]), r[1], r[2], r[3], r[4], bool(r[5]))

    async def replace_refresh_token(self, old_id: int, new_id: int) -> None:
        """Link `old_id` to its successor, dropping an earlier successor never used."""

        def _txn(txn: Transaction) -> None:
            self.invalidate_after_txn(txn)
            # Using a refresh token retires the one it replaced (and that one's access token).
            _retire_predecessors_txn(txn, old_id)
            row = txn.select_one("SELECT next_token_id FROM refresh_tokens WHERE id = ?",
                                 (old_id,))
            if row and row[0] is not None:
                txn.execute("DELETE FROM access_tokens WHERE refresh_token_id = ?", (row[0],))
                txn.execute("DELETE FROM refresh_tokens WHERE id = ?", (row[0],))
            txn.execute("UPDATE refresh_tokens SET next_token_id = ? WHERE id = ?",
                        (new_id, old_id))

        await self.db.run_interaction("replace_refresh_token", _txn)

    async def delete_access_token(self, token_id: int) -> None:
        """Log out one session: the access token and the refresh token chain it came with."""

        def _txn(txn: Transaction) -> None:
            self.invalidate_after_txn(txn)
            row = txn.select_one("SELECT refresh_token_id FROM access_tokens WHERE id = ?",
                                 (token_id,))
            txn.execute("DELETE FROM access_tokens WHERE id = ?", (token_id,))
            if row and row[0] is not None:
                txn.execute("DELETE FROM refresh_tokens WHERE id = ?", (row[0],))

        await self.db.run_interaction("delete_access_token", _txn)

    async def delete_tokens_for_user(self, user_id: str, device_ids: list[str] | None = None,
                                     except_token_id: int | None = None) -> list[str | None]:
        """Delete a user's tokens (optionally only for some devices, or all but one token).

        Returns:
            the device IDs whose tokens were deleted.
        """

        def _txn(txn: Transaction) -> list[str | None]:
            self.invalidate_after_txn(txn)
            where = "user_id = ?"
            args: list[object] = [user_id]
            if device_ids is not None:
                if not device_ids:
                    return []
                where += f" AND device_id IN ({', '.join('?' for _ in device_ids)})"
                args.extend(device_ids)
            keep_refresh: int | None = None
            if except_token_id is not None:
                row = txn.select_one(
                    "SELECT refresh_token_id FROM access_tokens WHERE id = ?", (except_token_id,)
                )
                keep_refresh = row[0] if row else None
            devices = {
                r[0] for r in txn.select_all(
                    f"SELECT device_id FROM access_tokens WHERE {where}"
                    + (" AND id != ?" if except_token_id is not None else ""),
                    args + ([except_token_id] if except_token_id is not None else []),
                )
            }
            if except_token_id is not None:
                txn.execute(f"DELETE FROM access_tokens WHERE {where} AND id != ?",
                            args + [except_token_id])
                txn.execute(
                    f"DELETE FROM refresh_tokens WHERE {where} AND id != ?",
                    args + [keep_refresh if keep_refresh is not None else -1],
                )
            else:
                txn.execute(f"DELETE FROM access_tokens WHERE {where}", args)
                txn.execute(f"DELETE FROM refresh_tokens WHERE {where}", args)
            return sorted(devices, key=lambda d: d or "")

        return await self.db.run_interaction("delete_tokens_for_user", _txn)


def _retire_predecessors_txn(txn: Transaction, refresh_token_id: int) -> None:
    old = [r[0] for r in txn.select_all(
        "SELECT id FROM refresh_tokens WHERE next_token_id = ?", (refresh_token_id,))]
    for old_id in old:
        txn.execute("DELETE FROM access_tokens WHERE refresh_token_id = ?", (old_id,))
        txn.execute("DELETE FROM refresh_tokens WHERE id = ?", (old_id,))
