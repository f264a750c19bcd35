"""The two database engines. Every dialect difference lives here, not in stores."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen(slots=True)
class FullTextSql:
    """How an engine matches and ranks `event_search` rows (storage/stores/search.py).

    The query is built as `SELECT ... FROM {from_clause} WHERE {match} ...`, with the
    search rows aliased `s`; `match` and `rank` each take the rendered query once.
    """

    from_clause: str
    match: str
    rank: str
    #: `recent` order, and its paging bound (takes a stream ordering)
    newest_first: str = "s.stream_ordering DESC"
    older_than: str = "s.stream_ordering < ?"
    #: statements run with (event_id,) after inserting an event's rows / before deleting
    after_insert: tuple[str, ...] = ()
    before_delete: tuple[str, ...] = ()


_SQLITE_FTS = FullTextSql(
    from_clause="event_search_fts f JOIN event_search s ON s.stream_ordering = f.rowid",
    match="event_search_fts MATCH ?",
    # bm25() is lower for better matches; the dummy `?` keeps the arguments the same
    # shape for both engines.
    rank="(-bm25(event_search_fts) + 0 * length(?))",
    # The rowid is the stream ordering: newest first is FTS5's own reverse order.
    newest_first="f.rowid DESC",
    older_than="f.rowid < ?",
    after_insert=("INSERT INTO event_search_fts (rowid, value) SELECT stream_ordering,"
                  " value FROM event_search WHERE event_id = ?",),
    before_delete=("INSERT INTO event_search_fts (event_search_fts, rowid, value)"
                   " SELECT 'delete', stream_ordering, value FROM event_search"
                   " WHERE event_id = ?",),
)

_POSTGRES_FTS = FullTextSql(
    from_clause="event_search s",
    match="s.vector @@ websearch_to_tsquery('english', ?)",
    rank="ts_rank_cd(s.vector, websearch_to_tsquery('english', ?))",
)

#: a search term's pieces: a quoted phrase, a word (maybe negated), or OR
_TERM_TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')
_WORD = re.compile(r"\w+")


def render_fts5_query(text: str) -> str:
    """A user's search text as an FTS5 query with the meaning PostgreSQL's
    `websearch_to_tsquery` gives it: words are ANDed (each a prefix), `"..."` is a
    phrase, `-word` excludes, `or` is OR. Only words are passed on, each quoted, so no
    FTS5 syntax (`NEAR(`, `*`, `:`, quotes) from the user reaches the parser; "" when
    nothing searchable is left."""
    parts: list[str] = []
    positives = 0
    for m in _TERM_TOKEN.finditer(text):
        negated = bool(m.group(1) or m.group(3))
        raw = m.group(2) if m.group(2) is not None else m.group(4)
        if m.group(4) is not None and raw.lower() == "or" and not negated:
            if parts and parts[-1] != "OR":
                parts.append("OR")
            continue
        words = _WORD.findall(raw)
        if not words:
            continue
        # One quoted FTS5 string per piece: a phrase of its words, a prefix if unquoted.
        phrase = '"' + " ".join(words) + '"' + ("" if m.group(2) is not None else "*")
        if negated:
            if positives and parts and parts[-1] != "OR":
                parts.append(f"NOT {phrase}")
            continue
        parts.append(phrase)
        positives += 1
    while parts and parts[-1] == "OR":
        parts.pop()
    return " ".join(parts)


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

    #: full-text search over `event_search`
    full_text: FullTextSql

    def render_search_query(self, text: str) -> str:
        """The search text as the engine's full-text query parameter ("" = no terms)."""
        raise NotImplementedError


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

    full_text = _SQLITE_FTS

    def render_search_query(self, text: str) -> str:
        return render_fts5_query(text)


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

    full_text = _POSTGRES_FTS

    def render_search_query(self, text: str) -> str:
        # websearch_to_tsquery takes raw user text and never fails on its syntax; only
        # NUL (which PostgreSQL text cannot hold) is removed. "" when no word would be
        # searched for (as on SQLite: `-word` alone finds nothing, not everything else).
        cleaned = text.replace("\x00", " ")
        return cleaned if render_fts5_query(cleaned) else ""


def create_engine(name: str, args: Mapping[str, Any]) -> BaseEngine:
    """Build the engine for `database.name` (`sqlite3` or `psycopg2`)."""
    if name == "sqlite3":
        return Sqlite3Engine(database=str(args.get("database", ":memory:")))
    if name == "psycopg2":
        return PostgresEngine(args=dict(args))
    raise ValueError(f"unknown database engine {name!r}")
