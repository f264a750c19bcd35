"""The relation index: which events relate to which (`m.relates_to` with a `rel_type`),
written in the event-persisting transaction, read by /relations, /threads and the
bundled aggregations. Rows of redacted children are deleted with the redaction."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from homeserver.events import Event
from storage.caches import LruCache
from storage.database import DatabasePool, Transaction

THREAD = "m.thread"
#: parent IDs per query (under SQLite's bound-parameter limit)
_BATCH = 500


@attrs.frozen(slots=True)
class RelationRow:
    """One child event's relation to its parent."""

    event_id: str
    relates_to_id: str
    rel_type: str
    key: str | None
    sender: str
    type: str
    stream_ordering: int
    origin_server_ts: int
    room_id: str


@attrs.frozen(slots=True)
class ThreadRow:
    """A thread root and the stream position of its newest reply."""

    root_id: str
    latest_ordering: int


_COLUMNS = ("event_id, relates_to_id, rel_type, aggregation_key, sender, type,"
            " stream_ordering, origin_server_ts, room_id")


def relation_of(event: Event) -> tuple[str, str, str | None] | None:
    """(parent event ID, rel_type, annotation key) of an event's `m.relates_to`, if it
    has a well-formed one."""
    relation = event.content.get("m.relates_to")
    if not isinstance(relation, Mapping):
        return None
    parent, rel_type, key = relation.get("event_id"), relation.get("rel_type"), \
        relation.get("key")
    if not isinstance(parent, str) or not isinstance(rel_type, str) or not parent \
            or not rel_type or parent == event.event_id:
        return None
    return parent, rel_type, key if isinstance(key, str) else None


def _row(r: tuple[Any, ...]) -> RelationRow:
    return RelationRow(event_id=r[0], relates_to_id=r[1], rel_type=r[2], key=r[3],
                       sender=r[4], type=r[5], stream_ordering=int(r[6]),
                       origin_server_ts=int(r[7]), room_id=r[8])


class RelationsStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        # parent event ID -> its children, oldest first (() for none)
        self._children: LruCache[str, tuple[RelationRow, ...]] = LruCache(50_000)
        # child event ID -> (room ID, parent ID, rel_type), or None when not indexed
        self._parent: LruCache[str, tuple[str, str, str] | None] = LruCache(50_000)

    # -- writing (inside the events store's persist transaction) --

    def persist_event_txn(self, txn: Transaction, event: Event, stream_ordering: int,
                          new_local: bool) -> None:
        """Index the event's relation, and drop the relation of the event it redacts.

        Args:
            new_local: the event was just created here, so nothing relates to it yet.
        """
        if event.rejected_reason is not None:
            return
        if event.redacts is not None:
            row = txn.select_one(
                "SELECT relates_to_id FROM event_relations WHERE event_id = ? AND room_id = ?",
                (event.redacts, event.room_id))
            if row is not None:
                txn.execute("DELETE FROM event_relations WHERE event_id = ?", (event.redacts,))
                txn.call_after(self._children.invalidate, row[0])
                txn.call_after(self._parent.invalidate, event.redacts)
        if new_local:
            txn.call_after(self._children.set, event.event_id, ())
        relation = relation_of(event)
        if relation is None:
            return
        parent, rel_type, key = relation
        # A redaction that arrived first (over federation) already applies.
        if txn.select_one("SELECT 1 FROM events WHERE redacts = ? AND room_id = ?"
                          " AND rejected_reason IS NULL", (event.event_id, event.room_id)):
            return
        txn.execute(
            f"INSERT INTO event_relations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            (event.event_id, parent, rel_type, key, event.sender, event.type,
             stream_ordering, event.origin_server_ts, event.room_id))
        txn.call_after(self._children.invalidate, parent)
        txn.call_after(self._parent.invalidate, event.event_id)

    # -- reading --

    async def get_children(self, parent_ids: Collection[str]
                           ) -> dict[str, tuple[RelationRow, ...]]:
        """parent ID -> its children, oldest first (parents without any are left out;
        children in another room than the parent are the caller's to drop). One query
        per 500 parents not cached."""
        out: dict[str, tuple[RelationRow, ...]] = {}
        missing: list[str] = []
        for parent in parent_ids:
            cached = self._children.get(parent)
            if cached is None:
                missing.append(parent)
            elif cached:
                out[parent] = cached
        if not missing:
            return out
        seq = self._children.sequence
        found: dict[str, list[RelationRow]] = {}
        for i in range(0, len(missing), _BATCH):
            chunk = missing[i:i + _BATCH]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.db.execute(
                "get_relation_children",
                f"SELECT {_COLUMNS} FROM event_relations WHERE relates_to_id IN ({marks})"
                " ORDER BY stream_ordering", *chunk)
            for r in rows:
                found.setdefault(r[1], []).append(_row(r))
        for parent in missing:
            children = tuple(found.get(parent, ()))
            self._children.set(parent, children, expected_sequence=seq)
            if children:
                out[parent] = children
        return out

    async def get_relations_page(self, room_id: str, parent_ids: Collection[str],
                                 rel_type: str | None, event_type: str | None,
                                 pos: int, stop: int | None, direction: str,
                                 limit: int) -> list[RelationRow]:
        """Children of any of `parent_ids` in `room_id`, in paging order: backwards
        (`b`) those at or below `pos` (and above `stop`) newest first, forwards those
        above `pos` (up to `stop`) oldest first."""
        ids = list(parent_ids)[:_BATCH]
        marks = ", ".join("?" for _ in ids)
        where = [f"relates_to_id IN ({marks})", "room_id = ?"]
        args: list[Any] = [*ids, room_id]
        if rel_type is not None:
            where.append("rel_type = ?")
            args.append(rel_type)
        if event_type is not None:
            where.append("type = ?")
            args.append(event_type)
        if direction == "b":
            where.append("stream_ordering <= ?")
            args.append(pos)
            if stop is not None:
                where.append("stream_ordering > ?")
                args.append(stop)
        else:
            where.append("stream_ordering > ?")
            args.append(pos)
            if stop is not None:
                where.append("stream_ordering <= ?")
                args.append(stop)
        order = "DESC" if direction == "b" else "ASC"
        rows = await self.db.execute(
            "get_relations_page",
            f"SELECT {_COLUMNS} FROM event_relations WHERE {' AND '.join(where)}"
            f" ORDER BY stream_ordering {order} LIMIT ?", *args, limit)
        return [_row(r) for r in rows]

    async def get_threads(self, room_id: str, before: int, limit: int,
                          participant: str | None = None) -> list[ThreadRow]:
        """The room's threads whose newest reply is below `before`, newest activity
        first; with `participant`, only those they started or replied in."""
        args: list[Any] = [room_id, THREAD, room_id, before]
        extra = ""
        if participant is not None:
            extra = (" AND (e.sender = ? OR EXISTS (SELECT 1 FROM event_relations p"
                     " WHERE p.relates_to_id = t.root_id AND p.rel_type = ?"
                     " AND p.sender = ?))")
            args.extend([participant, THREAD, participant])
        rows = await self.db.execute(
            "get_threads",
            "SELECT t.root_id, t.latest FROM (SELECT relates_to_id AS root_id,"
            " MAX(stream_ordering) AS latest FROM event_relations"
            " WHERE room_id = ? AND rel_type = ? GROUP BY relates_to_id) t"
            " JOIN events e ON e.event_id = t.root_id AND e.room_id = ? AND e.outlier = 0"
            f" WHERE t.latest < ?{extra} ORDER BY t.latest DESC LIMIT ?", *args, limit)
        return [ThreadRow(root_id=r[0], latest_ordering=int(r[1])) for r in rows]

    async def get_parent(self, room_id: str, event_id: str) -> tuple[str, str] | None:
        """(parent event ID, rel_type) of an indexed child event of `room_id`."""
        if event_id in self._parent:
            found = self._parent.get(event_id)
        else:
            seq = self._parent.sequence
            rows = await self.db.execute(
                "get_relation_parent",
                "SELECT room_id, relates_to_id, rel_type FROM event_relations"
                " WHERE event_id = ?", event_id)
            found = (rows[0][0], rows[0][1], rows[0][2]) if rows else None
            self._parent.set(event_id, found, expected_sequence=seq)
        if found is None or found[0] != room_id:
            return None
        return found[1], found[2]
