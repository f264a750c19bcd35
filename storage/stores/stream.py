"""Reading a room's history: by stream position (/sync timelines, which rooms changed
between two positions) and in topological order (/messages, /context).

Stream positions are `events.stream_ordering`; the topological order is (depth,
stream_ordering), where backfilled events, with negative stream orderings, fall where
their depth puts them. Outliers (events we hold without their place in the room's
history) are in neither.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import attrs

from storage.database import DatabasePool, Transaction

#: room IDs per query in `get_rooms_changed` (under SQLite's bound-parameter limit)
_ROOMS_BATCH = 500


@attrs.frozen(slots=True)
class HistoryRow:
    event_id: str
    depth: int
    stream_ordering: int


#: a bound of a topological read: (depth, stream_ordering), or (None, stream_ordering)
#: for a stream position (a /sync token), which bounds the stream ordering only
Bound = tuple[int | None, int]


class StreamStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def get_room_events_between(self, room_id: str, from_pos: int, to_pos: int | None,
                                      direction: str, limit: int) -> list[tuple[str, int]]:
        """(event_id, stream_ordering) of a room's events after or before a position.

        Args:
            from_pos: backwards (`b`): events with stream_ordering <= from_pos, newest
                first; forwards (`f`): events > from_pos, oldest first.
            to_pos: where to stop: backwards, only events > to_pos; forwards, only
                events <= to_pos. None: no bound.
            direction: "b" or "f".
            limit: at most this many rows.
        """
        if limit <= 0:
            return []
        if direction == "b":
            sql = ("SELECT event_id, stream_ordering FROM events WHERE room_id = ?"
                   " AND stream_ordering <= ? AND stream_ordering > ? AND outlier = 0"
                   " ORDER BY stream_ordering DESC LIMIT ?")
            # Backfilled events have negative orderings (`EventsStore`).
            bound = -(1 << 62) if to_pos is None else to_pos
        elif direction == "f":
            sql = ("SELECT event_id, stream_ordering FROM events WHERE room_id = ?"
                   " AND stream_ordering > ? AND stream_ordering <= ? AND outlier = 0"
                   " ORDER BY stream_ordering ASC LIMIT ?")
            bound = (1 << 62) if to_pos is None else to_pos
        else:
            raise ValueError(f"direction must be 'b' or 'f', not {direction!r}")
        rows = await self.db.execute("get_room_events_between", sql, room_id, from_pos,
                                     bound, limit)
        return [(r[0], int(r[1])) for r in rows]

    async def get_room_events_topological(self, room_id: str, from_bound: Bound | None,
                                          to_bound: Bound | None, direction: str,
                                          limit: int, max_stream: int) -> list[HistoryRow]:
        """A room's events in topological order, from a bound towards another.

        Args:
            from_bound: backwards (`b`): events at or before it, deepest first; forwards
                (`f`): events after it, shallowest first. None: from the end / start.
            to_bound: where to stop: backwards, only events after it; forwards, only
                events at or before it. None: no bound.
            direction: "b" or "f".
            max_stream: no event with a higher stream ordering (not yet visible to all).
        """
        if limit <= 0:
            return []
        if direction not in ("b", "f"):
            raise ValueError(f"direction must be 'b' or 'f', not {direction!r}")
        upper, lower = (from_bound, to_bound) if direction == "b" else (to_bound, from_bound)
        # `+stream_ordering`: a stream bound must not steer the planner to the
        # (room_id, stream_ordering) index and a sort of the whole room; the
        # (room_id, depth, stream_ordering) index gives the order with LIMIT.
        where = ["room_id = ?", "outlier = 0", "+stream_ordering <= ?"]
        args: list[Any] = [room_id, max_stream]
        if upper is not None:
            _add_bound(where, args, upper, "<")
        if lower is not None:
            _add_bound(where, args, lower, ">")
        order = "DESC" if direction == "b" else "ASC"
        rows = await self.db.execute(
            "get_room_events_topological",
            f"SELECT event_id, depth, stream_ordering FROM events WHERE {' AND '.join(where)}"
            f" ORDER BY depth {order}, stream_ordering {order} LIMIT ?", *args, limit)
        return [HistoryRow(r[0], int(r[1]), int(r[2])) for r in rows]

    async def get_last_event_before(self, room_id: str, pos: int) -> str | None:
        """The newest non-outlier event of the room with stream_ordering <= pos."""
        rows = await self.get_room_events_between(room_id, pos, None, "b", 1)
        return rows[0][0] if rows else None

    async def get_last_event_at(self, room_id: str, bound: Bound) -> str | None:
        """The topologically last non-outlier event of the room at or before `bound`."""
        rows = await self.get_room_events_topological(room_id, bound, None, "b", 1, 1 << 62)
        return rows[0].event_id if rows else None

    async def get_rooms_changed(self, room_ids: Collection[str], from_pos: int,
                                to_pos: int) -> dict[str, int]:
        """room_id -> its highest stream_ordering in (from_pos, to_pos], for the rooms
        that have events there."""
        ids = list(room_ids)
        if not ids or to_pos <= from_pos:
            return {}
        return await self.db.run_interaction(
            "get_rooms_changed", _rooms_changed_txn, ids, from_pos, to_pos)


    async def get_event_for_timestamp(self, room_id: str, ts: int, direction: str
                                      ) -> tuple[str, int] | None:
        """(event_id, origin_server_ts) of the room's event closest to `ts`: at or before
        it (`b`), at or after it (`f`). Outliers and rejected events do not count."""
        if direction == "b":
            sql = ("SELECT event_id, origin_server_ts FROM events WHERE room_id = ?"
                   " AND origin_server_ts <= ? AND outlier = 0 AND rejected_reason IS NULL"
                   " ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT 1")
        else:
            sql = ("SELECT event_id, origin_server_ts FROM events WHERE room_id = ?"
                   " AND origin_server_ts >= ? AND outlier = 0 AND rejected_reason IS NULL"
                   " ORDER BY origin_server_ts ASC, stream_ordering ASC LIMIT 1")
        rows = await self.db.execute("get_event_for_timestamp", sql, room_id, ts)
        return (rows[0][0], int(rows[0][1])) if rows else None


def _add_bound(where: list[str], args: list[Any], bound: Bound, side: str) -> None:
    """`side` "<": at or before the bound; ">": after it. The redundant `depth <=`/`>=`
    lets both engines range-scan the (room_id, depth, stream_ordering) index."""
    depth, stream = bound
    if depth is None:
        where.append(f"+stream_ordering {'<=' if side == '<' else '>'} ?")
        args.append(stream)
        return
    where.append(f"depth {side}= ? AND (depth {side} ? OR stream_ordering"
                 f" {'<=' if side == '<' else '>'} ?)")
    args.extend((depth, depth, stream))


def _rooms_changed_txn(txn: Transaction, room_ids: list[str], from_pos: int,
                       to_pos: int) -> dict[str, int]:
    result: dict[str, int] = {}
    for i in range(0, len(room_ids), _ROOMS_BATCH):
        chunk = room_ids[i:i + _ROOMS_BATCH]
        marks = ", ".join("?" for _ in chunk)
        rows = txn.select_all(
            f"SELECT room_id, MAX(stream_ordering) FROM events WHERE room_id IN ({marks})"
            " AND stream_ordering > ? AND stream_ordering <= ? AND outlier = 0"
            " GROUP BY room_id", [*chunk, from_pos, to_pos])
        result.update({r[0]: int(r[1]) for r in rows})
    return result
