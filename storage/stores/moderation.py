"""Reports about users and the erased-users list (accounts deactivated with `erase`)."""

from __future__ import annotations

from collections.abc import Iterable

from storage.caches import LruCache
from storage.database import DatabasePool, Transaction
from storage.id_generator import IdGenerator
from storage.stores.device_lists import _chunks as in_list_chunks


class ModerationStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._report_ids = IdGenerator(db, "user_reports")
        # user ID -> erased?; read for every sender of every event served to clients.
        self._erased: LruCache[str, bool] = LruCache(100_000)

    async def add_user_report(self, target_user_id: str, user_id: str, reason: str,
                              received_ts: int) -> int:
        report_id = self._report_ids.next_id()
        await self.db.execute(
            "add_user_report",
            "INSERT INTO user_reports (id, received_ts, target_user_id, user_id, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            report_id, received_ts, target_user_id, user_id, reason)
        return report_id

    async def count_user_reports(self, target_user_id: str) -> int:
        rows = await self.db.execute(
            "count_user_reports", "SELECT COUNT(*) FROM user_reports WHERE target_user_id = ?",
            target_user_id)
        return int(rows[0][0])

    async def mark_user_erased(self, user_id: str, erased_ts: int) -> None:
        def _txn(txn: Transaction) -> None:
            txn.upsert("erased_users", {"user_id": user_id}, {"erased_ts": erased_ts})
            txn.call_after(lambda: self._erased.invalidate(user_id))

        await self.db.run_interaction("mark_user_erased", _txn)

    async def get_erased_users(self, user_ids: Iterable[str]) -> set[str]:
        """Which of these users are erased (cached per user)."""
        wanted = set(user_ids)
        erased = {u for u in wanted if self._erased.get(u)}
        missing = [u for u in wanted if u not in self._erased]
        if not missing:
            return erased
        seq = self._erased.sequence
        found: set[str] = set()
        for chunk in in_list_chunks(missing):
            rows = await self.db.execute(
                "get_erased_users",
                "SELECT user_id FROM erased_users WHERE user_id IN"
                f" ({', '.join('?' for _ in chunk)})", *chunk)
            found.update(r[0] for r in rows)
        for u in missing:
            self._erased.set(u, u in found, expected_sequence=seq)
        return erased | found
