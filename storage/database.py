"""`DatabasePool`: transactions on a thread pool, over SQLite or PostgreSQL.

Stores call `run_interaction(desc, func, *args)`; `func(txn, *args)` runs in one
transaction on a database thread and its result comes back to the reactor. SQL uses `?`
placeholders everywhere; the engine converts them. Functions that take a `txn` are named
`*_txn`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from storage.engines import BaseEngine

logger = logging.getLogger(__name__)

R = TypeVar("R")

MAX_RETRIES = 5


class IntegrityError(Exception):
    """A unique or foreign-key constraint failed (engine-independent)."""


class Transaction:
    """A cursor inside one transaction, plus hooks that run only after it commits."""

    __slots__ = ("_cursor", "engine", "after_callbacks", "desc")

    def __init__(self, cursor: Any, engine: BaseEngine, desc: str) -> None:
        self._cursor = cursor
        self.engine = engine
        self.desc = desc
        self.after_callbacks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        try:
            self._cursor.execute(self.engine.convert_sql(sql), tuple(args))
        except self.engine.integrity_errors as e:
            raise IntegrityError(str(e)) from e

    def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        try:
            self._cursor.executemany(self.engine.convert_sql(sql), [tuple(a) for a in args])
        except self.engine.integrity_errors as e:
            raise IntegrityError(str(e)) from e

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()  # type: ignore[no-any-return]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()  # type: ignore[no-any-return]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def call_after(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback(*args)` on the reactor once this transaction has committed."""
        self.after_callbacks.append((callback, args))

    # -- small helpers used by most stores --

    def select_one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self.execute(sql, args)
        return self.fetchone()

    def select_all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.execute(sql, args)
        return self.fetchall()

    def insert(self, table: str, values: Mapping[str, Any]) -> None:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(values.values()))

    def upsert(self, table: str, keys: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """Insert, or update `values` where a row with `keys` (a unique index) exists."""
        allv = {**keys, **values}
        cols = ", ".join(allv)
        marks = ", ".join("?" for _ in allv)
        conflict = ", ".join(keys)
        if values:
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
            action = f"DO UPDATE SET {sets}"
        else:
            action = "DO NOTHING"
        self.execute(
            f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({conflict}) {action}",
            list(allv.values()),
        )


class DatabasePool:
    """Runs transactions for the stores.

    Args:
        engine: the SQLite or PostgreSQL engine.
        reactor: the Twisted reactor results are delivered on.
        synchronous: run each transaction inline on the caller's thread (tests with an
            in-memory reactor use this; there is then one connection).
        max_connections: threads/connections for PostgreSQL (SQLite always uses one writer).
    """

    def __init__(self, engine: BaseEngine, reactor: Any, synchronous: bool = False,
                 max_connections: int = 5) -> None:
        self.engine = engine
        self._reactor = reactor
        self._synchronous = synchronous
        self._local = threading.local()
        self._connections: list[Any] = []
        self._conn_lock = threading.Lock()
        self._closed = False
        self._threadpool: ThreadPool | None = None
        if not synchronous:
            size = 1 if engine.single_writer else max(1, max_connections)
            self._threadpool = ThreadPool(minthreads=1, maxthreads=size, name="db")
            self._threadpool.start()

    # -- connections --

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._synchronous and self._connections:
                conn = self._connections[0]
            else:
                conn = self.engine.connect()
                with self._conn_lock:
                    self._connections.append(conn)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._conn_lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - the connection is already broken
                pass

    # -- transactions --

    def _run_txn(self, desc: str, func: Callable[..., R], *args: Any,
                 **kwargs: Any) -> tuple[R, list[tuple[Callable[..., Any], tuple[Any, ...]]]]:
        for attempt in range(MAX_RETRIES + 1):
            conn = self._connection()
            cursor = conn.cursor()
            txn = Transaction(cursor, self.engine, desc)
            try:
                if self.engine.name == "sqlite3":
                    cursor.execute("BEGIN")
                result = func(txn, *args, **kwargs)
                conn.commit()
                return result, txn.after_callbacks
            except self.engine.retryable_errors as e:
                self._rollback(conn)
                if attempt == MAX_RETRIES or not _is_retryable(e):
                    raise
                logger.debug("[TXN %s] retrying after %s", desc, e)
                time.sleep(0.01 * (attempt + 1))
            except BaseException:
                self._rollback(conn)
                raise
            finally:
                cursor.close()
        raise AssertionError("unreachable")

    def _rollback(self, conn: Any) -> None:
        try:
            conn.rollback()
        except Exception:  # noqa: BLE001 - a lost connection: replace it
            logger.warning("rollback failed; reconnecting")
            self._drop_connection()

    async def run_interaction(self, desc: str, func: Callable[..., R], *args: Any,
                              **kwargs: Any) -> R:
        """Run `func(txn, *args, **kwargs)` in one transaction and return its result."""
        if self._closed:
            raise RuntimeError("database pool is closed")
        if self._synchronous:
            result, after = self._run_txn(desc, func, *args, **kwargs)
        else:
            assert self._threadpool is not None
            result, after = await threads.deferToThreadPool(
                self._reactor, self._threadpool, self._run_txn, desc, func, *args, **kwargs
            )
        for callback, cb_args in after:
            callback(*cb_args)
        return result

    async def execute(self, desc: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (empty for statements without rows)."""

        def _txn(txn: Transaction) -> list[tuple[Any, ...]]:
            txn.execute(sql, args)
            try:
                return txn.fetchall()
            except Exception:  # noqa: BLE001 - statement without a result set (psycopg2)
                return []

        return await self.run_interaction(desc, _txn)

    def run_sync(self, desc: str, func: Callable[..., R], *args: Any) -> R:
        """Run a transaction on the calling thread; for startup and CLI tools only."""
        result, after = self._run_txn(desc, func, *args)
        for callback, cb_args in after:
            callback(*cb_args)
        return result

    def close(self) -> None:
        """Stop the thread pool and close every connection."""
        self._closed = True
        if self._threadpool is not None:
            self._threadpool.stop()
            self._threadpool = None
        with self._conn_lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass


def _is_retryable(e: BaseException) -> bool:
    # SQLite reports lock contention as OperationalError("database is locked"); other
    # OperationalErrors (syntax, missing table) must not be retried.
    text = str(e).lower()
    if "locked" in text or "busy" in text:
        return True
    return type(e).__module__.startswith("psycopg2")


