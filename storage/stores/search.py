"""Full-text search over room events: the `event_search` index, written in the event's
persist transaction, and the queries of `POST /search`.

The dialect parts (FTS5 on SQLite, a tsvector under a GIN index on PostgreSQL) are the
engine's `full_text` SQL and `render_search_query`; this module is the same for both.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import attrs

from homeserver.events import Event
from storage.database import DatabasePool, Transaction

#: event type -> the content field indexed for it, and the key name clients search by
INDEXED_FIELDS: dict[str, tuple[str, str]] = {
    "m.room.message": ("body", "content.body"),
    "m.room.name": ("name", "content.name"),
    "m.room.topic": ("topic", "content.topic"),
}
ALL_KEYS = tuple(key for _, key in INDEXED_FIELDS.values())

#: the largest IN-list sent in one statement
_CHUNK = 500


@attrs.frozen(slots=True)
class SearchQuery:
    """What to match: the user's text and the SQL-side parts of the filter."""

    text: str
    room_ids: tuple[str, ...]
    keys: tuple[str, ...] = ALL_KEYS
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    #: origin_server_ts bounds, inclusive (the io.axon filter extension)
    from_ts: int | None = None
    to_ts: int | None = None


@attrs.frozen(slots=True)
class SearchHit:
    event_id: str
    room_id: str
    stream_ordering: int
    rank: float


def index_values(event: Event) -> list[tuple[str, str]]:
    """(key, text) pairs of an event that the index holds: nothing for encrypted or
    other types, or a field that is not a string."""
    field = INDEXED_FIELDS.get(event.type)
    if field is None:
        return []
    value = event.content.get(field[0])
    if not isinstance(value, str) or not value:
        return []
    # PostgreSQL text cannot hold NUL; the words around it stay searchable.
    return [(field[1], value.replace("\x00", " "))]


class SearchStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._fts = db.engine.full_text
        self._engine = db.engine

    def index_event_txn(self, txn: Transaction, event: Event, stream_ordering: int) -> None:
        """Keep the index in step with a persisted (non-outlier) event: index its text,
        or for a redaction remove its target's rows."""
        if event.rejected_reason is not None:
            return
        if event.redacts is not None:
            self._delete_txn(txn, event.redacts)
        values = index_values(event)
        if not values:
            return
        txn.executemany(
            "INSERT INTO event_search (event_id, room_id, sender, type, key, value,"
            " stream_ordering, origin_server_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(event.event_id, event.room_id, event.sender, event.type, key, value,
              stream_ordering, event.origin_server_ts) for key, value in values])
        for sql in self._fts.after_insert:
            txn.execute(sql, (event.event_id,))

    def _delete_txn(self, txn: Transaction, event_id: str) -> None:
        for sql in self._fts.before_delete:
            txn.execute(sql, (event_id,))
        txn.execute("DELETE FROM event_search WHERE event_id = ?", (event_id,))

    async def search(self, query: SearchQuery, order_by: str, limit: int,
                     offset: int = 0, before: int | None = None) -> list[SearchHit]:
        """Matching entries, best first (`rank`, then newest) or newest first (`recent`).

        Args:
            limit: at most this many hits.
            offset: `rank` order: skip this many (paging).
            before: `recent` order: only entries with a lower stream ordering (paging).
        """
        rendered = self._engine.render_search_query(query.text)
        if not rendered or not query.room_ids or not query.keys:
            return []
        return await self.db.run_interaction(
            "search_events", self._search_txn, query, rendered, order_by, limit, offset,
            before)

    async def count(self, query: SearchQuery) -> int:
        """How many entries match (before visibility: an approximate `count`)."""
        rendered = self._engine.render_search_query(query.text)
        if not rendered or not query.room_ids or not query.keys:
            return 0
        return await self.db.run_interaction("search_count", self._count_txn, query,
                                             rendered)

    # -- internals --

    def _where(self, query: SearchQuery, rendered: str,
               room_ids: Sequence[str]) -> tuple[str, list[Any]]:
        clauses = [self._fts.match, f"s.room_id IN ({_marks(room_ids)})",
                   f"s.key IN ({_marks(query.keys)})"]
        args: list[Any] = [rendered, *room_ids, *query.keys]
        if query.senders is not None:
            clauses.append(f"s.sender IN ({_marks(query.senders)})" if query.senders
                           else "1 = 0")
            args.extend(query.senders)
        if query.not_senders:
            clauses.append(f"s.sender NOT IN ({_marks(query.not_senders)})")
            args.extend(query.not_senders)
        if query.from_ts is not None:
            clauses.append("s.origin_server_ts >= ?")
            args.append(query.from_ts)
        if query.to_ts is not None:
            clauses.append("s.origin_server_ts <= ?")
            args.append(query.to_ts)
        return " AND ".join(clauses), args

    def _search_txn(self, txn: Transaction, query: SearchQuery, rendered: str,
                    order_by: str, limit: int, offset: int,
                    before: int | None) -> list[SearchHit]:
        hits: list[SearchHit] = []
        # Each room chunk is one statement; with more rooms than one chunk the chunks'
        # best rows are merged (each chunk gives up to offset + limit).
        for room_ids in _chunks(query.room_ids):
            where, args = self._where(query, rendered, room_ids)
            if order_by == "recent":
                if before is not None:
                    where += f" AND {self._fts.older_than}"
                    args.append(before)
                order, window = self._fts.newest_first, limit
            else:
                order, window = "score DESC, s.stream_ordering DESC", offset + limit
            rows = txn.select_all(
                f"SELECT s.event_id, s.room_id, s.stream_ordering, {self._fts.rank} AS score"
                f" FROM {self._fts.from_clause} WHERE {where} ORDER BY {order} LIMIT ?",
                [rendered, *args, window])
            hits.extend(SearchHit(r[0], r[1], int(r[2]), float(r[3])) for r in rows)
        if order_by == "recent":
            hits.sort(key=lambda h: -h.stream_ordering)
            return hits[:limit]
        hits.sort(key=lambda h: (-h.rank, -h.stream_ordering))
        return hits[offset:offset + limit]

    def _count_txn(self, txn: Transaction, query: SearchQuery, rendered: str) -> int:
        total = 0
        for room_ids in _chunks(query.room_ids):
            where, args = self._where(query, rendered, room_ids)
            row = txn.select_one(
                f"SELECT COUNT(*) FROM {self._fts.from_clause} WHERE {where}", args)
            total += int(row[0]) if row else 0
        return total


def _marks(values: Collection[Any]) -> str:
    return ", ".join("?" for _ in values)


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[i:i + _CHUNK] for i in range(0, len(values), _CHUNK)]
