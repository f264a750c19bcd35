"""Throwaway PostgreSQL databases for tests, on the cluster named by AXON_TEST_PG_DSN.

`scripts/run-tests` starts a private cluster and sets the variable. Each test gets a fresh
database copied from a per-worker template that already has the schema, which is much
faster than migrating every time.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

ENV = "AXON_TEST_PG_DSN"
_counter = itertools.count()
_template_ready: set[str] = set()


class PostgresUnavailable(AssertionError):
    pass


def dsn_args() -> dict[str, Any]:
    dsn = os.environ.get(ENV)
    if not dsn:
        raise PostgresUnavailable(
            f"PostgreSQL tests need {ENV} (a libpq DSN of a cluster whose user may create "
            "databases). Run the suite with scripts/run-tests, which starts a throwaway "
            "cluster, or deselect them with -k 'not Postgres'."
        )
    import psycopg2.extensions

    return dict(psycopg2.extensions.parse_dsn(dsn))


def _admin_execute(sql: str) -> None:
    import psycopg2

    args = dsn_args()
    conn = psycopg2.connect(**{**args, "dbname": args.get("dbname", "postgres")})
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main") + f"_{os.getpid()}"


def _ensure_template() -> str:
    name = f"axon_tpl_{_worker()}"
    if name in _template_ready:
        return name
    from twisted.internet.testing import MemoryReactorClock

    from storage.database import DatabasePool
    from storage.engines import create_engine
    from storage.prepare import prepare_database

    _admin_execute(f"DROP DATABASE IF EXISTS {name}")
    _admin_execute(f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                   " TEMPLATE template0")
    pool = DatabasePool(create_engine("psycopg2", {**dsn_args(), "dbname": name}),
                        MemoryReactorClock(), synchronous=True)
    try:
        prepare_database(pool)
    finally:
        pool.close()
    _template_ready.add(name)
    return name


def create_test_database() -> dict[str, Any]:
    """Create a fresh migrated database; returns its connection args (with `dbname`)."""
    template = _ensure_template()
    name = f"axon_t_{_worker()}_{next(_counter)}"
    _admin_execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return {**dsn_args(), "dbname": name}


def drop_test_database(args: dict[str, Any]) -> None:
    _admin_execute(f"DROP DATABASE IF EXISTS {args['dbname']}")


def create_empty_database() -> dict[str, Any]:
    """Create a database with no schema (a real server migrates it at startup)."""
    name = f"axon_e_{_worker()}_{next(_counter)}"
    _admin_execute(f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                   " TEMPLATE template0")
    return {**dsn_args(), "dbname": name}


def to_dsn(args: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in args.items())
