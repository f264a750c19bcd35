"""The two database engines. Every dialect difference lives here, not in stores."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

import attrs


class BaseEngine:
    """What differs between SQLite and PostgreSQL."""

    name: str
    #: exceptions meaning a unique/foreign key constraint failed
    integrity_errors: tuple[type[BaseException], ...]
    #: exceptions worth retrying the whole transaction for
    retryable_errors: tuple[type[BaseException], ...]
    single_writer: bool

    def connect(self) -> Any:
        raise NotImplementedError

    def convert_sql(self, sql: str) -> str:
        return sql

    def on_new_connection(self, conn: Any) -> None:
        pass

    def table_exists_sql(self) -> str:
        raise NotImplementedError

    def supports_returning(self) -> bool:
        return True


@attrs.define
class Sqlite3Engine(BaseEngine):
    database: str
    name = "sqlite3"
    integrity_errors = (sqlite3.IntegrityError,)
    retryable_errors = (sqlite3.OperationalError,)
    single_writer = True

    def connect(self) -> sqlite3.Connection:
        # Isolation is managed by the pool (explicit BEGIN), and connections may be used by
        # the pool's thread that did not create them.
        conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False,
                               timeout=30)
        self.on_new_connection(conn)
        return conn

    def on_new_connection(self, conn: Any) -> None:
        if self.database != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")

    def table_exists_sql(self) -> str:
        return "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"


@attrs.define
class PostgresEngine(BaseEngine):
    args: Mapping[str, Any]
    name = "psycopg2"
    single_writer = False

    def __attrs_post_init__(self) -> None:
        import psycopg2
        import psycopg2.errors

        self._psycopg2 = psycopg2
        self.integrity_errors = (psycopg2.IntegrityError,)
        self.retryable_errors = (
            psycopg2.errors.SerializationFailure,
            psycopg2.errors.DeadlockDetected,
        )

    def connect(self) -> Any:
        kwargs = {k: v for k, v in self.args.items() if k not in ("cp_min", "cp_max")}
        conn = self._psycopg2.connect(**kwargs)
        self.on_new_connection(conn)
        return conn

    def on_new_connection(self, conn: Any) -> None:
        conn.set_session(isolation_level="REPEATABLE READ", autocommit=False)

    def convert_sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def table_exists_sql(self) -> str:
        return "SELECT 1 FROM information_schema.tables WHERE table_name=?"


def create_engine(name: str, args: Mapping[str, Any]) -> BaseEngine:
    """Build the engine for `database.name` (`sqlite3` or `psycopg2`)."""
    if name == "sqlite3":
        return Sqlite3Engine(database=str(args.get("database", ":memory:")))
    if name == "psycopg2":
        return PostgresEngine(args=dict(args))
    raise ValueError(f"unknown database engine {name!r}")
