"""Room state: snapshots stored as deltas over a base (bounded chains), and current state."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from storage.caches import LruCache
from storage.database import DatabasePool, Transaction
from storage.id_generator import IdGenerator
from storage.stores.user_directory import refresh_public_room_txn

StateKey = tuple[str, str]
StateDict = dict[StateKey, str]

#: a new group is stored in full once its delta chain would pass this length
MAX_CHAIN_LENGTH = 50


class StateStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._group_ids = IdGenerator(db, "state_groups")
        # Groups are immutable, so cached snapshots never go stale.
        self._group_cache: LruCache[int, Mapping[StateKey, str]] = LruCache(2000)
        self._current_cache: LruCache[str, Mapping[StateKey, str]] = LruCache(5000)
        # event -> state group after it; rows are never changed once written.
        self._event_group_cache: LruCache[str, int] = LruCache(50_000)

    # -- state groups --

    def _load_group_txn(self, txn: Transaction, group: int) -> Mapping[StateKey, str]:
        cached = self._group_cache.get(group)
        if cached is not None:
            return cached
        chain: list[int] = []
        base: Mapping[StateKey, str] = {}
        current: int | None = group
        while current is not None:
            hit = self._group_cache.get(current)
            if hit is not None:
                base = hit
                break
            chain.append(current)
            row = txn.select_one("SELECT prev_group FROM state_groups WHERE id = ?", (current,))
            current = row[0] if row else None
        state: dict[StateKey, str] = dict(base)
        for g in reversed(chain):
            for typ, key, event_id in txn.select_all(
                "SELECT type, state_key, event_id FROM state_groups_state WHERE state_group = ?",
                (g,),
            ):
                if event_id is None:
                    state.pop((typ, key), None)
                else:
                    state[(typ, key)] = event_id
        self._group_cache.set(group, state)
        return state

    async def get_state_for_group(self, group: int) -> Mapping[StateKey, str]:
        cached = self._group_cache.get(group)
        if cached is not None:
            return cached
        return await self.db.run_interaction("get_state_for_group", self._load_group_txn, group)

    def create_group_txn(self, txn: Transaction, room_id: str, event_id: str,
                         prev_group: int | None, delta: Mapping[StateKey, str | None],
                         full_state: Mapping[StateKey, str]) -> int:
        """Store a new state group: a delta over `prev_group`, or in full when the chain is
        long (or there is no previous group). `full_state` is the group's whole state."""
        group = self._group_ids.next_id()
        chain_length = 0
        if prev_group is not None:
            row = txn.select_one("SELECT chain_length FROM state_groups WHERE id = ?",
                                 (prev_group,))
            chain_length = (int(row[0]) + 1) if row else MAX_CHAIN_LENGTH + 1
        rows: list[tuple[int, str, str, str | None]]
        if prev_group is None or chain_length > MAX_CHAIN_LENGTH:
            prev_group, chain_length = None, 0
            rows = [(group, t, k, e) for (t, k), e in full_state.items()]
        else:
            rows = [(group, t, k, e) for (t, k), e in delta.items()]
        txn.insert("state_groups", {"id": group, "room_id": room_id, "event_id": event_id,
                                    "prev_group": prev_group, "chain_length": chain_length})
        if rows:
            txn.executemany(
                "INSERT INTO state_groups_state (state_group, type, state_key, event_id)"
                " VALUES (?, ?, ?, ?)", rows)
        frozen = dict(full_state)
        txn.call_after(self._group_cache.set, group, frozen)
        return group

    def set_event_state_group_txn(self, txn: Transaction, event_id: str, group: int) -> None:
        txn.insert("event_to_state_groups", {"event_id": event_id, "state_group": group})
        txn.call_after(self._event_group_cache.set, event_id, group)

    async def get_state_group_for_event(self, event_id: str) -> int | None:
        return (await self.get_state_groups_for_events([event_id])).get(event_id)

    async def get_state_after_event(self, event_id: str) -> Mapping[StateKey, str] | None:
        group = await self.get_state_group_for_event(event_id)
        return None if group is None else await self.get_state_for_group(group)

    async def get_state_groups_for_events(self, event_ids: Collection[str]) -> dict[str, int]:
        """The state group after each event (events without one are left out); one query
        for whatever the cache does not hold."""
        result: dict[str, int] = {}
        missing: list[str] = []
        for event_id in event_ids:
            group = self._event_group_cache.get(event_id)
            if group is None:
                missing.append(event_id)
            else:
                result[event_id] = group
        if missing:
            rows = await self.db.run_interaction(
                "get_state_groups_for_events", _event_groups_txn, missing)
            for event_id, group in rows:
                self._event_group_cache.set(event_id, int(group))
                result[event_id] = int(group)
        return result

    async def get_state_for_groups(self, groups: Collection[int]
                                   ) -> dict[int, Mapping[StateKey, str]]:
        """Several snapshots at once: uncached ones are loaded in one transaction."""
        result: dict[int, Mapping[StateKey, str]] = {}
        missing: list[int] = []
        for group in groups:
            cached = self._group_cache.get(group)
            if cached is None:
                missing.append(group)
            else:
                result[group] = cached
        if missing:
            def _txn(txn: Transaction) -> dict[int, Mapping[StateKey, str]]:
                return {g: self._load_group_txn(txn, g) for g in missing}

            result.update(await self.db.run_interaction("get_state_for_groups", _txn))
        return result

    # -- current state --

    async def get_current_state_ids(self, room_id: str) -> Mapping[StateKey, str]:
        cached = self._current_cache.get(room_id)
        if cached is not None:
            return cached
        seq = self._current_cache.sequence
        rows = await self.db.execute(
            "get_current_state_ids",
            "SELECT type, state_key, event_id FROM current_state_events WHERE room_id = ?",
            room_id)
        state = {(t, k): e for t, k, e in rows}
        self._current_cache.set(room_id, state, expected_sequence=seq)
        return state

    def update_current_state_txn(self, txn: Transaction, room_id: str,
                                 updates: Mapping[StateKey, tuple[str, str | None]],
                                 removals: list[StateKey]) -> None:
        """Apply a delta to the room's current state.

        Args:
            updates: (type, state_key) -> (event_id, membership or None).
            removals: keys no longer in the state.
        """
        for (typ, key), (event_id, membership) in updates.items():
            txn.upsert("current_state_events", {"room_id": room_id, "type": typ,
                                                "state_key": key},
                       {"event_id": event_id, "membership": membership})
        for typ, key in removals:
            txn.execute("DELETE FROM current_state_events WHERE room_id = ? AND type = ?"
                        " AND state_key = ?", (room_id, typ, key))
        # The user directory's public rooms follow join rules and history visibility.
        refresh_public_room_txn(txn, room_id, [*updates, *removals])
        txn.call_after(self._current_cache.invalidate, room_id)


def _event_groups_txn(txn: Transaction, event_ids: list[str]) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    for i in range(0, len(event_ids), 500):
        chunk = event_ids[i:i + 500]
        marks = ", ".join("?" for _ in chunk)
        rows.extend(txn.select_all(
            f"SELECT event_id, state_group FROM event_to_state_groups"
            f" WHERE event_id IN ({marks})", chunk))
    return rows
