"""Stream positions: ids handed out in order, and the position up to which every id is
persisted (what a sync token may safely point at)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from storage.database import DatabasePool, Transaction


class StreamIdGenerator:
    """Allocates increasing stream ids for one table column.

    Transactions may commit out of order (PostgreSQL, several connections), so
    `get_current_token()` is the highest id below which nothing is still being written:
    readers never skip an event that commits later with a lower id.
    """

    def __init__(self, db: DatabasePool, table: str, column: str) -> None:
        def _max_txn(txn: Transaction) -> int:
            row = txn.select_one(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")
            return int(row[0]) if row else 0

        self._current = db.run_sync(f"max_{table}_{column}", _max_txn)
        self._unfinished: list[int] = []

    @contextlib.contextmanager
    def get_next(self) -> Iterator[int]:
        """Allocate an id; it counts as persisted when the `with` block exits."""
        self._current += 1
        stream_id = self._current
        self._unfinished.append(stream_id)
        try:
            yield stream_id
        finally:
            self._unfinished.remove(stream_id)

    def get_current_token(self) -> int:
        if self._unfinished:
            return min(self._unfinished) - 1
        return self._current
