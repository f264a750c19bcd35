"""Presence of local users: one row per user, and the presence stream over those rows.

A row's `stream_id` is the stream position of its last change that clients must hear
about; changes that only move timers (`last_user_sync_ts`) keep it, so an incremental
/sync reads only the rows changed in (since, now] through the `presence_stream` index.
"""

from __future__ import annotations

from typing import Any

import attrs

from storage.caches import LruCache
from storage.database import DatabasePool, Transaction
from storage.stream import StreamIdGenerator


@attrs.frozen(slots=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    last_user_sync_ts: int
    currently_active: bool
    stream_id: int
    #: a remote user's row (from `m.presence` EDUs): only the federation timeout applies
    remote: bool = False


_COLS = ("user_id, state, status_msg, last_active_ts, last_user_sync_ts, currently_active,"
         " stream_id, remote")
_P_COLS = ", ".join(f"p.{c.strip()}" for c in _COLS.split(","))

# Local users who share a joined room with `?` (the user themself included when joined
# somewhere; callers add them anyway).
_SHARING_USERS = (
    "SELECT m2.user_id FROM local_current_membership m1"
    " JOIN local_current_membership m2 ON m2.room_id = m1.room_id"
    " WHERE m1.user_id = ? AND m1.membership = 'join' AND m2.membership = 'join'"
)
# Local and remote users who share a joined room with the local user `?`.
_SHARING_MEMBERS = (
    "SELECT o.state_key FROM local_current_membership m"
    " JOIN current_state_events o ON o.room_id = m.room_id"
    " AND o.type = 'm.room.member' AND o.membership = 'join'"
    " WHERE m.user_id = ? AND m.membership = 'join'"
)


def _row(r: tuple[Any, ...]) -> PresenceRow:
    return PresenceRow(r[0], r[1], r[2], int(r[3]), int(r[4]), bool(r[5]), int(r[6]),
                       bool(r[7]))


class PresenceStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._stream = StreamIdGenerator(db, "presence", "stream_id")
        # user_id -> row, or None for "no row" (the common case for idle accounts)
        self._cache: LruCache[str, PresenceRow | None] = LruCache(50_000)

    @property
    def stream(self) -> StreamIdGenerator:
        """Allocates presence-stream positions (`with store.stream.get_next() as sid`)."""
        return self._stream

    def get_current_position(self) -> int:
        return self._stream.get_current_token()

    async def get_presence(self, user_id: str) -> PresenceRow | None:
        sentinel = object()
        cached = self._cache.get(user_id, sentinel)  # type: ignore[arg-type]
        if cached is not sentinel:
            return cached
        seq = self._cache.sequence
        rows = await self.db.execute(
            "get_presence", f"SELECT {_COLS} FROM presence WHERE user_id = ?", user_id)
        row = _row(rows[0]) if rows else None
        self._cache.set(user_id, row, expected_sequence=seq)
        return row

    async def upsert_presence(self, row: PresenceRow) -> None:
        """Write a user's whole presence row (`row.stream_id` as given)."""

        def _txn(txn: Transaction) -> None:
            txn.call_after(self._cache.invalidate, row.user_id)
            txn.upsert("presence", {"user_id": row.user_id}, {
                "state": row.state, "status_msg": row.status_msg,
                "last_active_ts": row.last_active_ts,
                "last_user_sync_ts": row.last_user_sync_ts,
                "currently_active": 1 if row.currently_active else 0,
                "stream_id": row.stream_id, "remote": 1 if row.remote else 0,
            })

        await self.db.run_interaction("upsert_presence", _txn)

    async def get_presence_changes_for_user(self, user_id: str, from_key: int,
                                            to_key: int) -> list[PresenceRow]:
        """Rows changed in (from_key, to_key] of the user and of users sharing a joined
        room with them. Reads only the changed rows (the stream index), then keeps those
        whose user shares a room through the (user_id, room_id) membership index."""
        rows = await self.db.execute(
            "get_presence_changes_for_user",
            f"SELECT {_P_COLS} FROM presence p WHERE p.stream_id > ? AND p.stream_id <= ?"
            f" AND (p.user_id = ? OR EXISTS (SELECT 1 FROM local_current_membership m"
            f"  JOIN current_state_events o ON o.room_id = m.room_id"
            f"  AND o.type = 'm.room.member' AND o.state_key = p.user_id"
            f"  WHERE m.user_id = ? AND m.membership = 'join' AND o.membership = 'join'))"
            f" ORDER BY p.stream_id",
            from_key, to_key, user_id, user_id)
        return [_row(r) for r in rows]

    async def get_current_presence_for_user(self, user_id: str,
                                            to_key: int) -> list[PresenceRow]:
        """Initial sync: the rows (not offline, at or before `to_key`) of the user and of
        every user sharing a joined room with them."""
        rows = await self.db.execute(
            "get_current_presence_for_user",
            f"SELECT {_P_COLS} FROM presence p WHERE p.stream_id <= ? AND p.state != 'offline'"
            f" AND (p.user_id = ? OR p.user_id IN ({_SHARING_MEMBERS}))"
            f" ORDER BY p.stream_id",
            to_key, user_id, user_id)
        return [_row(r) for r in rows]

    async def get_users_sharing_room(self, user_id: str) -> list[str]:
        """Local users who share a joined room with `user_id` (who may be among them)."""
        rows = await self.db.execute(
            "get_users_sharing_room",
            f"SELECT DISTINCT user_id FROM ({_SHARING_USERS}) s", user_id)
        return [r[0] for r in rows]

    async def shares_room(self, user_id: str, other_id: str) -> bool:
        """Whether the local `user_id` shares a joined room with `other_id` (local or
        remote)."""
        rows = await self.db.execute(
            "presence_shares_room",
            "SELECT 1 FROM local_current_membership m1"
            " JOIN current_state_events o ON o.room_id = m1.room_id"
            " AND o.type = 'm.room.member' AND o.state_key = ?"
            " WHERE m1.user_id = ? AND m1.membership = 'join' AND o.membership = 'join'"
            " LIMIT 1",
            other_id, user_id)
        return bool(rows)

    async def get_timeout_candidates(self, synced_before: int, idle_before: int,
                                     active_before: int, remote_updated_before: int = 0
                                     ) -> list[PresenceRow]:
        """Local rows that are not offline and whose last sync is older than
        `synced_before`, or online ones last active before `idle_before` (the idle timer)
        or still marked currently active but last active before `active_before`; and
        remote rows not offline whose last update is older than `remote_updated_before`."""
        rows = await self.db.execute(
            "get_presence_timeout_candidates",
            f"SELECT {_COLS} FROM presence WHERE state IN ('online', 'unavailable')"
            " AND ((remote = 0 AND (last_user_sync_ts < ? OR (state = 'online'"
            " AND (last_active_ts < ? OR (currently_active = 1 AND last_active_ts < ?)))))"
            " OR (remote = 1 AND last_user_sync_ts < ?))",
            synced_before, idle_before, active_before, remote_updated_before)
        return [_row(r) for r in rows]

    async def get_local_users_online(self) -> list[PresenceRow]:
        """Local rows that are not offline (the federation ping resends them)."""
        rows = await self.db.execute(
            "get_local_users_online",
            f"SELECT {_COLS} FROM presence WHERE state IN ('online', 'unavailable')"
            " AND remote = 0")
        return [_row(r) for r in rows]
