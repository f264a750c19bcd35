"""Sync filters uploaded by users: stored once, never changed, read by ID."""

from __future__ import annotations

from storage.caches import LruCache
from storage.database import DatabasePool, IntegrityError, Transaction

#: attempts when two uploads of one user race for the same next ID (PostgreSQL)
_CREATE_ATTEMPTS = 3


class FilterStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        # Filters are immutable: the cache never needs invalidating.
        self._cache: LruCache[tuple[str, int], str] = LruCache(5000)

    async def add_filter(self, user_id: str, filter_json: str) -> int:
        """Store a filter and return its per-user ID; an identical filter the user already
        uploaded keeps its ID (clients re-upload the same filter at every start)."""
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                return await self.db.run_interaction(
                    "add_filter", self._add_filter_txn, user_id, filter_json)
            except IntegrityError:
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _add_filter_txn(self, txn: Transaction, user_id: str, filter_json: str) -> int:
        row = txn.select_one(
            "SELECT filter_id FROM user_filters WHERE user_id = ? AND filter_json = ?"
            " ORDER BY filter_id LIMIT 1", (user_id, filter_json))
        if row is not None:
            return int(row[0])
        row = txn.select_one(
            "SELECT COALESCE(MAX(filter_id), -1) FROM user_filters WHERE user_id = ?",
            (user_id,))
        filter_id = int(row[0]) + 1 if row is not None else 0
        txn.insert("user_filters",
                   {"user_id": user_id, "filter_id": filter_id, "filter_json": filter_json})
        return filter_id

    async def get_filter(self, user_id: str, filter_id: int) -> str | None:
        """The filter JSON as uploaded, or None."""
        cached = self._cache.get((user_id, filter_id))
        if cached is not None:
            return cached
        rows = await self.db.execute(
            "get_filter", "SELECT filter_json FROM user_filters WHERE user_id = ?"
            " AND filter_id = ?", user_id, filter_id)
        if not rows:
            return None
        filter_json: str = rows[0][0]
        self._cache.set((user_id, filter_id), filter_json)
        return filter_json
