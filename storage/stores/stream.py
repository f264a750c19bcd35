"""Reading the room-event stream by position: pages of a room's history (/messages,
/context, /sync timelines) and which rooms changed between two positions.

Positions are `events.stream_ordering`; outliers (events we hold without their place in
the room's history) are never part of the stream.
"""

from __future__ import annotations

from collections.abc import Collection

from storage.database import DatabasePool, Transaction

#: room IDs per query in `get_rooms_changed` (under SQLite's bound-parameter limit)
_ROOMS_BATCH = 500


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

    async def get_last_event_before(self, room_id: str, pos: int) -> str | None:
        """The newest non-outlier event of the room with stream_ordering <= pos."""
        rows = await self.get_room_events_between(room_id, pos, None, "b", 1)
        return rows[0][0] if rows else None

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
