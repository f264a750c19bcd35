"""Event push actions: who each event notifies (written with the event), and the unread
notification counts derived from them."""

from __future__ import annotations

import json
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
    """Record an event's notifications (one row for all its recipients); called inside
    the event's persist transaction."""
    recipients: dict[str, int] = {}
    thread = "main"
    for user_id, notify, highlight, thread_id in actions:
        if notify:
            recipients[user_id] = 2 if highlight else 1
            thread = thread_id or "main"
    if recipients:
        txn.insert("event_push_actions", {
            "room_id": room_id, "stream_ordering": stream_ordering, "event_id": event_id,
            "thread_id": thread, "recipients": json.dumps(recipients, separators=(",", ":")),
        })


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

        # Rows naming the user: LIKE narrows (it may over-match, "_" is a wildcard and
        # SQLite ignores case), the decoded JSON decides.
        needle = "%" + json.dumps(user_id) + "%"

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
                    " SELECT e.room_id, e.thread_id, e.recipients"
                    " FROM rp JOIN event_push_actions e ON e.room_id = rp.room_id"
                    " AND e.stream_ordering > rp.pos AND e.stream_ordering <= ?"
                    " WHERE e.recipients LIKE ?",
                    (*args, upto if upto is not None else _NO_LIMIT, needle))
                for room_id, thread_id, recipients in rows:
                    value = json.loads(recipients).get(user_id)
                    if not value:
                        continue
                    n, h = out.setdefault(room_id, {}).get(thread_id or "main", (0, 0))
                    out[room_id][thread_id or "main"] = (n + 1, h + int(value == 2))
            return out

        return await self.db.run_interaction("get_unread_counts", _txn)
