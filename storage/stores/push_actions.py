"""Event push actions: who each event notifies (written with the event), and the unread
notification counts derived from them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from storage.database import DatabasePool, Transaction

#: rooms per query (two bound parameters each; under SQLite's limit)
_ROOM_BATCH = 400

#: above any stream position (the upper bound when counting everything)
_NO_LIMIT = 2**62

#: (user_id, notify, highlight, thread_id) for one recipient of an event
PushAction = tuple[str, bool, bool, str | None]


def insert_push_actions_txn(txn: Transaction, room_id: str, event_id: str,
                            stream_ordering: int, actions: Iterable[PushAction]) -> None:
    """Record an event's notifications; called inside the event's persist transaction."""
    txn.executemany(
        "INSERT INTO event_push_actions (room_id, event_id, user_id, stream_ordering, notif,"
        " highlight, thread_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(room_id, event_id, user_id, stream_ordering, int(notify), int(highlight),
          thread_id or "main") for user_id, notify, highlight, thread_id in actions])


class PushActionsStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def get_unread_counts(self, user_id: str, read_positions: Mapping[str, int],
                                room_ids: Collection[str], upto: int | None = None
                                ) -> dict[str, dict[str, tuple[int, int]]]:
        """room -> thread ("main" or a root's event ID) -> (notifications, highlights)
        after the user's read position in that room (0 when absent). Rooms and threads
        without any are left out. One grouped query per batch of rooms."""
        rooms = list(room_ids)
        if not rooms:
            return {}

        def _txn(txn: Transaction) -> dict[str, dict[str, tuple[int, int]]]:
            out: dict[str, dict[str, tuple[int, int]]] = {}
            for i in range(0, len(rooms), _ROOM_BATCH):
                chunk = rooms[i:i + _ROOM_BATCH]
                values = ", ".join("(?, ?)" for _ in chunk)
                args: list[object] = []
                for room_id in chunk:
                    args += [room_id, int(read_positions.get(room_id, 0))]
                rows = txn.select_all(
                    f"WITH rp (room_id, pos) AS (VALUES {values})"
                    " SELECT e.room_id, e.thread_id, SUM(e.notif), SUM(e.highlight)"
                    " FROM rp JOIN event_push_actions e ON e.user_id = ?"
                    " AND e.room_id = rp.room_id AND e.stream_ordering > rp.pos"
                    " AND e.stream_ordering <= ?"
                    " GROUP BY e.room_id, e.thread_id",
                    (*args, user_id, upto if upto is not None else _NO_LIMIT))
                for room_id, thread_id, notif, highlight in rows:
                    out.setdefault(room_id, {})[thread_id or "main"] = (
                        int(notif or 0), int(highlight or 0))
            return out

        return await self.db.run_interaction("get_unread_counts", _txn)
