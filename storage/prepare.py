"""Numbered, forward-only schema migrations.

Layout: `storage/schema/<version>/<nn>_<name>.sql`, with `.sqlite` / `.postgres` files for
the few statements whose dialects differ. `schema_version` records the highest version
applied and `applied_schema_deltas` each file, so a file added to the current version
directory later is still applied once.

SCHEMA_VERSION history:
    1: accounts — users, profiles, devices, access/refresh tokens, registration tokens,
       user-interactive auth sessions.
    2: rooms — events, the event graph, state groups, current state, membership,
       transaction IDs, aliases, event reports.
    3: sync — filters, account data and tags, receipts, presence, to-device messages,
       push rules and push actions.
    4: hardening, E2E keys, media, relations, search and room features — files in
       `schema/4/`: 10-19 user directory, 20-39 E2E keys and remote device lists, 40-49
       media (store, resumable uploads, URL previews, thumbnails), 50-54 relations,
       55-59 search, 60-64 user reports, erasure, timestamp index, 65-69 backward
       extremities for topological paging.
    5: admin, moderation and push — files in `schema/5/`: 10-19 admin roles and the audit
       log, 20-29 admin users, 30-39 user moderation (shadow-ban, rate-limit overrides),
       40-49 admin rooms (deletion jobs, blocks, purges), 50-59 admin media, reports,
       server notices, 60-69 content filter, moderation queue, statistics, 70-79
       operations, 80-89 pushers and push delivery.
"""

from __future__ import annotations

import logging
import os
import re

from storage.database import DatabasePool, Transaction

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 5
SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "schema")


def _split_statements(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _delta_files(version: int, engine_name: str) -> list[str]:
    folder = os.path.join(SCHEMA_DIR, str(version))
    if not os.path.isdir(folder):
        return []
    suffix = ".sqlite" if engine_name == "sqlite3" else ".postgres"
    return sorted(
        f for f in os.listdir(folder)
        if f.endswith(".sql") or f.endswith(suffix)
    )


def _prepare_txn(txn: Transaction) -> int:
    txn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " lock CHAR(1) NOT NULL DEFAULT 'X' UNIQUE, version INTEGER NOT NULL)"
    )
    txn.execute(
        "CREATE TABLE IF NOT EXISTS applied_schema_deltas ("
        " version INTEGER NOT NULL, file TEXT NOT NULL, UNIQUE (version, file))"
    )
    row = txn.select_one("SELECT version FROM schema_version")
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"The database is at schema version {current}, newer than this Axon "
            f"({SCHEMA_VERSION}); run a newer Axon"
        )
    applied = {
        (int(v), f) for v, f in txn.select_all("SELECT version, file FROM applied_schema_deltas")
    }
    # Re-check the current version's folder too: files may have been added to it.
    for version in range(max(current, 1), SCHEMA_VERSION + 1):
        for name in _delta_files(version, txn.engine.name):
            if (version, name) in applied:
                continue
            if not re.match(r"\d+_", name):
                raise RuntimeError(f"schema file {version}/{name} is not numbered")
            logger.info("Applying schema %s/%s", version, name)
            with open(os.path.join(SCHEMA_DIR, str(version), name), encoding="utf-8") as f:
                for statement in _split_statements(f.read()):
                    txn.execute(statement)
            txn.insert("applied_schema_deltas", {"version": version, "file": name})
    txn.execute("DELETE FROM schema_version")
    txn.insert("schema_version", {"version": SCHEMA_VERSION})
    return current


def prepare_database(db: DatabasePool) -> None:
    """Bring the schema up to `SCHEMA_VERSION`, in one transaction (called at startup)."""
    previous = db.run_sync("prepare_database", _prepare_txn)
    if previous != SCHEMA_VERSION:
        logger.info("Database schema upgraded from %s to %s", previous, SCHEMA_VERSION)
