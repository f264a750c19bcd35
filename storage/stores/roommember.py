"""Room membership: who is in a room, which rooms a local user is in."""

from __future__ import annotations

from collections.abc import Collection

import attrs

from storage.caches import LruCache
from storage.database import DatabasePool, Transaction


@attrs.frozen(slots=True)
class RoomForUser:
    room_id: str
    event_id: str
    membership: str
    stream_ordering: int


class RoomMemberStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        # user -> every local_current_membership row of theirs, with its forgotten flag
        self._rooms_cache: LruCache[str, list[tuple[RoomForUser, bool]]] = LruCache(50_000)
        self._users_cache: LruCache[tuple[str, str], list[str]] = LruCache(20_000)
        self._counts_cache: LruCache[str, dict[str, int]] = LruCache(20_000)

    async def get_rooms_for_local_user(
        self, user_id: str, memberships: Collection[str] = ("join",),
        include_forgotten: bool = False,
    ) -> list[RoomForUser]:
        rows = self._rooms_cache.get(user_id)
        if rows is None:
            seq = self._rooms_cache.sequence
            fetched = await self.db.execute(
                "get_rooms_for_local_user",
                "SELECT room_id, event_id, membership, stream_ordering, forgotten"
                " FROM local_current_membership WHERE user_id = ?", user_id)
            rows = [(RoomForUser(r[0], r[1], r[2], int(r[3])), bool(r[4])) for r in fetched]
            self._rooms_cache.set(user_id, rows, expected_sequence=seq)
        return [room for room, forgotten in rows if room.membership in memberships
                and (include_forgotten or not forgotten)]

    def invalidate_rooms_for_user(self, user_id: str) -> None:
        """Called after a local user's membership row changes (see EventsStore)."""
        self._rooms_cache.invalidate(user_id)

    async def get_local_membership(self, user_id: str, room_id: str) -> RoomForUser | None:
        """The user's current membership row for the room (from the per-user cache)."""
        rooms = await self.get_rooms_for_local_user(
            user_id, ("join", "invite", "leave", "ban", "knock"), include_forgotten=True)
        return next((r for r in rooms if r.room_id == room_id), None)

    async def get_users_in_room(self, room_id: str, membership: str = "join") -> list[str]:
        key = (room_id, membership)
        cached = self._users_cache.get(key)
        if cached is not None:
            return list(cached)
        seq = self._users_cache.sequence
        rows = await self.db.execute(
            "get_users_in_room",
            "SELECT state_key FROM current_state_events WHERE room_id = ?"
            " AND type = 'm.room.member' AND membership = ? ORDER BY state_key",
            room_id, membership)
        users = [r[0] for r in rows]
        self._users_cache.set(key, users, expected_sequence=seq)
        return list(users)

    async def get_member_counts(self, room_id: str) -> dict[str, int]:
        cached = self._counts_cache.get(room_id)
        if cached is not None:
            return dict(cached)
        seq = self._counts_cache.sequence
        rows = await self.db.execute(
            "get_member_counts",
            "SELECT membership, COUNT(*) FROM current_state_events WHERE room_id = ?"
            " AND type = 'm.room.member' GROUP BY membership", room_id)
        counts = {r[0]: int(r[1]) for r in rows}
        self._counts_cache.set(room_id, counts, expected_sequence=seq)
        return dict(counts)

    def invalidate_room(self, room_id: str) -> None:
        """Called after the room's current membership changes (see EventsStore)."""
        self._counts_cache.invalidate(room_id)
        for membership in ("join", "invite", "leave", "ban", "knock"):
            self._users_cache.invalidate((room_id, membership))

    async def set_outlier_membership(self, user_id: str, room_id: str, event_id: str,
                                     membership: str, stream_ordering: int) -> None:
        """Record a local user's membership from an out-of-room event (an invite to, or
        its rejection in, a room we are not in), so /sync shows it."""

        def _txn(txn: Transaction) -> None:
            txn.upsert("local_current_membership", {"user_id": user_id, "room_id": room_id},
                       {"event_id": event_id, "membership": membership,
                        "stream_ordering": stream_ordering, "forgotten": 0})
            txn.call_after(self.invalidate_rooms_for_user, user_id)

        await self.db.run_interaction("set_outlier_membership", _txn)

    async def get_membership_history(self, user_id: str,
                                     room_id: str) -> list[tuple[str, str, int]]:
        """The user's membership events in the room, oldest first, as (event ID,
        membership, stream ordering)."""
        rows = await self.db.execute(
            "get_membership_history",
            "SELECT event_id, membership, stream_ordering FROM room_memberships"
            " WHERE user_id = ? AND room_id = ? ORDER BY stream_ordering",
            user_id, room_id)
        return [(r[0], r[1], int(r[2])) for r in rows]

    async def forget(self, user_id: str, room_id: str) -> bool:
        """Mark a left room forgotten; False if the user is still joined/invited there."""

        def _txn(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE local_current_membership SET forgotten = 1 WHERE user_id = ?"
                " AND room_id = ? AND membership IN ('leave', 'ban')", (user_id, room_id))
            txn.call_after(self.invalidate_rooms_for_user, user_id)
            return txn.rowcount > 0

        return await self.db.run_interaction("forget_room", _txn)

    async def get_local_users_sharing_room_with(self, user_id: str) -> list[str]:
        """Local users joined to a room where `user_id` (local or remote) is joined, found
        through the user's membership history (indexed by user), then current state."""
        rows = await self.db.execute(
            "get_local_users_sharing_room_with",
            "SELECT DISTINCT l.user_id FROM room_memberships r"
            " JOIN current_state_events o ON o.room_id = r.room_id"
            " AND o.type = 'm.room.member' AND o.state_key = r.user_id"
            " JOIN local_current_membership l ON l.room_id = r.room_id"
            " WHERE r.user_id = ? AND o.membership = 'join' AND l.membership = 'join'",
            user_id)
        return sorted(r[0] for r in rows)
