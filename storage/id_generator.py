"""Integer id allocation for tables without database sequences (portable across engines)."""

from __future__ import annotations

import threading

from storage.database import DatabasePool, Transaction


class IdGenerator:
    """Hands out increasing ids above the table's current maximum.

    One Axon process owns the database, so an in-memory counter read once at startup is
    enough; the unique primary key still guards against misuse.
    """

    def __init__(self, db: DatabasePool, table: str, column: str = "id") -> None:
        def _max_txn(txn: Transaction) -> int:
            row = txn.select_one(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")
            return int(row[0]) if row else 0

        self._current = db.run_sync(f"max_{table}_{column}", _max_txn)
        self._lock = threading.Lock()

    def next_id(self) -> int:
        with self._lock:
            self._current += 1
            return self._current
