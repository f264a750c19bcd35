"""Read receipts: the latest receipt per (room, receipt type, user, thread), on the
receipt stream."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, TypeVar

import attrs

from storage.caches import LruCache
from storage.database import DatabasePool, Transaction
from storage.stream import StreamIdGenerator

#: rooms per `IN (...)` query (keeps under SQLite's bound-parameter limit)
_ROOM_BATCH = 500

#: receipt types that mark a read-up-to position (for unread counts)
READ_TYPES = ("m.read", "m.read.private")
PRIVATE_TYPE = "m.read.private"


@attrs.frozen(slots=True)
class Receipt:
    room_id: str
    receipt_type: str
    user_id: str
    #: None for an unthreaded receipt; "main" or a thread root's event ID otherwise
    thread_id: str | None
    event_id: str
    event_stream_ordering: int
    data: Mapping[str, Any]
    stream_id: int


def _chunks(items: Collection[str]) -> Iterator[list[str]]:
    as_list = list(items)
    for i in range(0, len(as_list), _ROOM_BATCH):
        yield as_list[i:i + _ROOM_BATCH]


V = TypeVar("V")


class ReceiptsStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._stream_ids = StreamIdGenerator(db, "receipts", "stream_id")
        # (user, room) -> read position for unread counts (0: no receipt); /sync reads it
        # for every room it returns, so it must not cost a query each time.
        self._read_positions: LruCache[tuple[str, str], int] = LruCache(100_000)
        self._thread_positions: LruCache[tuple[str, str], dict[str, int]] = LruCache(100_000)

    def get_max_receipt_stream_id(self) -> int:
        """The receipt stream position up to which every change is persisted."""
        return self._stream_ids.get_current_token()

    # -- writing --

    async def insert_receipt(self, room_id: str, receipt_type: str, user_id: str,
                             thread_id: str | None, event_id: str, event_stream_ordering: int,
                             data: Mapping[str, Any]) -> int | None:
        """Store a receipt unless the user's current one of this type and thread is for the
        same or a later event (receipts only move forward).

        Returns:
            the receipt's stream id, or None when it was not stored. (A receipt that
            loses a race to a later one of the same key still gets a stream id: the
            later one is then announced again.)
        """
        key = (room_id, receipt_type, user_id, thread_id or "")
        rows = await self.db.execute(
            "get_receipt_position",
            "SELECT event_stream_ordering FROM receipts WHERE room_id = ?"
            " AND receipt_type = ? AND user_id = ? AND thread_id = ?", *key)
        if rows and int(rows[0][0]) >= event_stream_ordering:
            # Checked before allocating: an unused stream id would let the stream
            # position fall back when it is recomputed from the table at startup.
            return None
        with self._stream_ids.get_next() as stream_id:
            await self.db.run_interaction(
                "insert_receipt", self._insert_receipt_txn, stream_id, key, event_id,
                event_stream_ordering, json.dumps(dict(data)))
            self._read_positions.invalidate((user_id, room_id))
            self._thread_positions.invalidate((user_id, room_id))
        return stream_id

    @staticmethod
    def _insert_receipt_txn(txn: Transaction, stream_id: int, key: tuple[str, str, str, str],
                            event_id: str, event_stream_ordering: int, data: str) -> None:
        room_id, receipt_type, user_id, thread_id = key
        # The WHERE keeps two concurrent receipts from moving the position backwards.
        txn.execute(
            "INSERT INTO receipts (stream_id, room_id, receipt_type, user_id, thread_id,"
            " event_id, event_stream_ordering, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET"
            " stream_id = EXCLUDED.stream_id, event_id = EXCLUDED.event_id,"
            " event_stream_ordering = EXCLUDED.event_stream_ordering, data = EXCLUDED.data"
            " WHERE receipts.event_stream_ordering < EXCLUDED.event_stream_ordering",
            (stream_id, room_id, receipt_type, user_id, thread_id, event_id,
             event_stream_ordering, data))
        if txn.rowcount > 0:
            return
        # Lost a race to a later receipt: still use the allocated id (re-announcing the
        # current receipt), so the table's max stays the stream position.
        txn.execute(
            "UPDATE receipts SET stream_id = ? WHERE room_id = ? AND receipt_type = ?"
            " AND user_id = ? AND thread_id = ?", (stream_id, *key))

    # -- reading --

    async def get_receipts_for_rooms(self, room_ids: Collection[str], from_key: int | None,
                                     to_key: int, viewer: str) -> list[Receipt]:
        """Current receipts in these rooms last changed in (from_key, to_key] (all up to
        `to_key` when from_key is None); `m.read.private` ones only of `viewer`."""
        low = -1 if from_key is None else from_key
        if low >= to_key or not room_ids:
            return []

        def _txn(txn: Transaction) -> list[Receipt]:
            out: list[Receipt] = []
            for chunk in _chunks(room_ids):
                marks = ", ".join("?" for _ in chunk)
                rows = txn.select_all(
                    "SELECT room_id, receipt_type, user_id, thread_id, event_id,"
                    " event_stream_ordering, data, stream_id FROM receipts"
                    f" WHERE room_id IN ({marks}) AND stream_id > ? AND stream_id <= ?"
                    " AND (receipt_type <> ? OR user_id = ?)",
                    (*chunk, low, to_key, PRIVATE_TYPE, viewer))
                out.extend(_row_to_receipt(r) for r in rows)
            return out

        return await self.db.run_interaction("get_receipts_for_rooms", _txn)

    async def get_read_positions(self, user_id: str,
                                 room_ids: Collection[str]) -> dict[str, int]:
        """room -> highest event stream ordering of the user's unthreaded
        `m.read`/`m.read.private` receipts (they mark the whole room read up to there);
        rooms without one are absent. Threaded receipts: `get_thread_read_positions_bulk`."""

        def fetch(txn: Transaction, chunk: list[str], marks: str) -> dict[str, int]:
            rows = txn.select_all(
                "SELECT room_id, MAX(event_stream_ordering) FROM receipts"
                f" WHERE user_id = ? AND room_id IN ({marks})"
                " AND receipt_type IN (?, ?) AND thread_id = ''"
                " GROUP BY room_id",
                (user_id, *chunk, *READ_TYPES))
            return {r[0]: int(r[1]) for r in rows}

        return await self._cached_per_room(
            "get_read_positions", self._read_positions, user_id, room_ids, fetch, 0)

    async def get_thread_read_positions(self, user_id: str, room_id: str) -> dict[str, int]:
        """thread ID ("main" or a root's event ID) -> highest event stream ordering of the
        user's threaded `m.read`/`m.read.private` receipts in the room."""
        rows = await self.db.execute(
            "get_thread_read_positions",
            "SELECT thread_id, MAX(event_stream_ordering) FROM receipts"
            " WHERE user_id = ? AND room_id = ? AND receipt_type IN (?, ?)"
            " AND thread_id <> '' GROUP BY thread_id",
            user_id, room_id, *READ_TYPES)
        return {r[0]: int(r[1]) for r in rows}

    async def get_thread_read_positions_bulk(self, user_id: str, room_ids: Collection[str]
                                             ) -> dict[str, dict[str, int]]:
        """room -> thread ("main" or a root) -> position of the user's threaded read
        receipts; rooms without threaded receipts are absent. Cached per user and room."""

        def fetch(txn: Transaction, chunk: list[str], marks: str) -> dict[str, dict[str, int]]:
            found: dict[str, dict[str, int]] = {}
            rows = txn.select_all(
                "SELECT room_id, thread_id, MAX(event_stream_ordering) FROM receipts"
                f" WHERE user_id = ? AND room_id IN ({marks})"
                " AND receipt_type IN (?, ?) AND thread_id <> ''"
                " GROUP BY room_id, thread_id", (user_id, *chunk, *READ_TYPES))
            for room_id, thread_id, pos in rows:
                found.setdefault(room_id, {})[thread_id] = int(pos)
            return found

        return await self._cached_per_room(
            "get_thread_read_positions_bulk", self._thread_positions, user_id, room_ids,
            fetch, {})

    async def _cached_per_room(self, desc: str, cache: LruCache[tuple[str, str], V],
                               user_id: str, room_ids: Collection[str],
                               fetch: Callable[[Transaction, list[str], str], dict[str, V]],
                               empty: V) -> dict[str, V]:
        """A per-(user, room) value read through `cache`: the rooms it does not hold are
        fetched in chunks by one transaction, and remembered (as `empty` when the database
        has nothing; rooms with `empty` are left out of the answer)."""
        out: dict[str, V] = {}
        missing: list[str] = []
        for room_id in room_ids:
            known = cache.get((user_id, room_id))
            if known is None:
                missing.append(room_id)
            elif known:
                out[room_id] = known
        if not missing:
            return out
        seq = cache.sequence

        def _txn(txn: Transaction) -> dict[str, V]:
            found: dict[str, V] = {}
            for chunk in _chunks(missing):
                found.update(fetch(txn, chunk, ", ".join("?" for _ in chunk)))
            return found

        found = await self.db.run_interaction(desc, _txn)
        for room_id in missing:
            cache.set((user_id, room_id), found.get(room_id, empty), expected_sequence=seq)
        out.update(found)
        return out

    async def get_user_receipts(self, user_id: str, room_id: str) -> list[Receipt]:
        """Every current receipt of one user in one room (tests, admin)."""
        rows = await self.db.execute(
            "get_user_receipts",
            "SELECT room_id, receipt_type, user_id, thread_id, event_id,"
            " event_stream_ordering, data, stream_id FROM receipts"
            " WHERE user_id = ? AND room_id = ?", user_id, room_id)
        return [_row_to_receipt(r) for r in rows]


def _row_to_receipt(row: tuple[Any, ...]) -> Receipt:
    return Receipt(
        room_id=row[0], receipt_type=row[1], user_id=row[2], thread_id=row[3] or None,
        event_id=row[4], event_stream_ordering=int(row[5]), data=json.loads(row[6]),
        stream_id=int(row[7]))
