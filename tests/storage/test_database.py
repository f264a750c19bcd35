"""DatabasePool and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from storage import prepare
from storage.database import IntegrityError, Transaction
from tests.harness import HomeserverTestCase


class DatabasePoolTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.db = hs.get_datastores().db
        self.get_success(self.db.execute(
            "create", "CREATE TABLE probe (k TEXT PRIMARY KEY, v INTEGER)"))

    def rows(self) -> list[tuple[Any, ...]]:
        return self.get_success(self.db.execute("rows", "SELECT k, v FROM probe ORDER BY k"))

    def test_commit_and_call_after(self) -> None:
        """A transaction's writes are committed and its call_after hooks run afterwards."""
        calls: list[str] = []

        def txn_fn(txn: Transaction, key: str) -> str:
            txn.insert("probe", {"k": key, "v": 1})
            txn.call_after(calls.append, key)
            self.assertEqual(calls, [])  # not before commit
            return "done"

        self.assertEqual(self.get_success(self.db.run_interaction("t", txn_fn, "a")), "done")
        self.assertEqual(calls, ["a"])
        self.assertEqual(self.rows(), [("a", 1)])

    def test_rollback_on_error(self) -> None:
        """An exception rolls the whole transaction back and skips call_after hooks."""
        calls: list[str] = []

        def txn_fn(txn: Transaction) -> None:
            txn.insert("probe", {"k": "a", "v": 1})
            txn.call_after(calls.append, "a")
            raise ValueError("boom")

        self.get_failure(self.db.run_interaction("t", txn_fn), ValueError)
        self.assertEqual(calls, [])
        self.assertEqual(self.rows(), [])

    def test_integrity_error_is_engine_independent(self) -> None:
        """A duplicate key raises storage.database.IntegrityError on both engines."""

        def insert(txn: Transaction) -> None:
            txn.insert("probe", {"k": "a", "v": 1})

        self.get_success(self.db.run_interaction("t", insert))
        self.get_failure(self.db.run_interaction("t", insert), IntegrityError)
        self.assertEqual(self.rows(), [("a", 1)])

    def test_upsert(self) -> None:
        """upsert inserts a new row and updates an existing one in place."""

        def up(txn: Transaction, v: int) -> None:
            txn.upsert("probe", {"k": "a"}, {"v": v})

        self.get_success(self.db.run_interaction("t", up, 1))
        self.get_success(self.db.run_interaction("t", up, 2))
        self.assertEqual(self.rows(), [("a", 2)])

    def test_placeholders_and_parameters(self) -> None:
        """`?` placeholders carry values safely (no SQL injection through values)."""
        evil = "x'); DROP TABLE probe; --"
        self.get_success(self.db.execute("ins", "INSERT INTO probe (k, v) VALUES (?, ?)",
                                         evil, 7))
        self.assertEqual(self.rows(), [(evil, 7)])

    def test_migrations_are_idempotent(self) -> None:
        """Running the migrations again applies nothing and keeps the version."""
        prepare.prepare_database(self.db)
        version = self.get_success(self.db.execute("v", "SELECT version FROM schema_version"))
        self.assertEqual(version, [(prepare.SCHEMA_VERSION,)])
        deltas = self.get_success(self.db.execute(
            "d", "SELECT COUNT(*) FROM applied_schema_deltas WHERE file = '01_accounts.sql'"))
        self.assertEqual(deltas, [(1,)])

    def test_newer_schema_refused(self) -> None:
        """A database from a newer Axon is refused instead of being damaged."""
        self.get_success(self.db.execute("bump", "UPDATE schema_version SET version = ?",
                                         prepare.SCHEMA_VERSION + 1))
        with self.assertRaisesRegex(RuntimeError, "newer"):
            prepare.prepare_database(self.db)
