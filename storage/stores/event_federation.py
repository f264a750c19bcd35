"""Walking the room DAG for other servers: auth chains, backfill, missing events.

Reads only (the `event_auth` and `event_edges` rows are written with each event by
`EventsStore`). Every walk stays inside one room: an edge to an event of another room,
or to one we do not have, is not followed.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection

from storage.database import DatabasePool, Transaction

_BATCH = 500


class EventFederationStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def get_auth_chain_ids(self, room_id: str, event_ids: Collection[str]) -> set[str]:
        """The auth events of these events of `room_id`, recursively, that we hold in that
        room (the given events themselves only when one of them is in another's chain).
        One recursive query per 500 events."""
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return set()
        return await self.db.run_interaction("get_auth_chain_ids", _auth_chain_txn,
                                             room_id, ids)

    async def get_backfill_event_ids(self, room_id: str, event_ids: Collection[str],
                                     limit: int) -> list[str]:
        """The given events and those before them, following `prev_events`, deepest first
        (ties: latest stream ordering first), at most `limit` (Synapse's walk)."""
        if limit <= 0 or not event_ids:
            return []
        return await self.db.run_interaction(
            "get_backfill_event_ids", _backfill_txn, room_id, list(event_ids), limit)

    async def get_missing_event_ids(self, room_id: str, earliest: Collection[str],
                                    latest: Collection[str], limit: int,
                                    min_depth: int) -> list[str]:
        """Breadth-first walk of the `prev_events` of `latest` (not including them), never
        entering `earliest` nor events shallower than `min_depth`, at most `limit` events;
        returned oldest first (by depth, then stream ordering)."""
        if limit <= 0 or not latest:
            return []
        return await self.db.run_interaction(
            "get_missing_event_ids", _missing_txn, room_id, set(earliest), list(latest),
            limit, min_depth)


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def _auth_chain_txn(txn: Transaction, room_id: str, event_ids: list[str]) -> set[str]:
    chain: set[str] = set()
    for i in range(0, len(event_ids), _BATCH):
        chunk = event_ids[i:i + _BATCH]
        # Only edges from and to events we hold in the room: an auth event of another
        # room (or an unknown one) ends the walk there. UNION (not UNION ALL) drops
        # repeats, so a cycle in bad data still terminates.
        rows = txn.select_all(
            "WITH RECURSIVE chain(event_id) AS ("
            " SELECT a.auth_id FROM event_auth a JOIN events e ON e.event_id = a.auth_id"
            f" WHERE a.event_id IN ({_marks(len(chunk))}) AND a.room_id = ?"
            " AND e.room_id = ?"
            " UNION"
            " SELECT a.auth_id FROM event_auth a JOIN chain c ON a.event_id = c.event_id"
            " JOIN events e ON e.event_id = a.auth_id WHERE e.room_id = ?"
            ") SELECT event_id FROM chain", [*chunk, room_id, room_id, room_id])
        chain.update(r[0] for r in rows)
    return chain


def _positions_txn(txn: Transaction, room_id: str,
                   event_ids: list[str]) -> dict[str, tuple[int, int]]:
    """event_id -> (depth, stream_ordering) for those of the events we have in the room."""
    out: dict[str, tuple[int, int]] = {}
    for i in range(0, len(event_ids), _BATCH):
        chunk = event_ids[i:i + _BATCH]
        for event_id, depth, ordering in txn.select_all(
                f"SELECT event_id, depth, stream_ordering FROM events"
                f" WHERE room_id = ? AND event_id IN ({_marks(len(chunk))})",
                [room_id, *chunk]):
            out[event_id] = (int(depth), int(ordering))
    return out


def _prev_ids_txn(txn: Transaction, event_ids: list[str]) -> list[str]:
    prevs: list[str] = []
    for i in range(0, len(event_ids), _BATCH):
        chunk = event_ids[i:i + _BATCH]
        prevs.extend(r[0] for r in txn.select_all(
            f"SELECT prev_event_id FROM event_edges WHERE event_id IN ({_marks(len(chunk))})",
            chunk))
    return prevs


def _backfill_txn(txn: Transaction, room_id: str, start: list[str], limit: int) -> list[str]:
    # Max-heap on (depth, stream_ordering): always take the newest event known so far.
    heap: list[tuple[int, int, str]] = []
    seen: set[str] = set()

    def push(ids: list[str]) -> None:
        fresh = [e for e in dict.fromkeys(ids) if e not in seen]
        seen.update(fresh)
        for event_id, (depth, ordering) in _positions_txn(txn, room_id, fresh).items():
            heapq.heappush(heap, (-depth, -ordering, event_id))

    push(start)
    result: list[str] = []
    while heap and len(result) < limit:
        _, _, event_id = heapq.heappop(heap)
        result.append(event_id)
        push(_prev_ids_txn(txn, [event_id]))
    return result


def _missing_txn(txn: Transaction, room_id: str, earliest: set[str], latest: list[str],
                 limit: int, min_depth: int) -> list[str]:
    seen = set(earliest) | set(latest)
    front = [e for e in dict.fromkeys(latest) if e not in earliest]
    found: dict[str, tuple[int, int]] = {}
    while front and len(found) < limit:
        prevs = [p for p in dict.fromkeys(_prev_ids_txn(txn, front)) if p not in seen]
        seen.update(prevs)
        positions = _positions_txn(txn, room_id, prevs)
        # Newest first, so that a cut at `limit` keeps the events nearest to `latest`.
        wanted = sorted((e for e, pos in positions.items() if pos[0] >= min_depth),
                        key=lambda e: positions[e], reverse=True)
        front = wanted[:limit - len(found)]
        found.update((e, positions[e]) for e in front)
    return sorted(found, key=lambda e: found[e])
