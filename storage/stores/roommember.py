"""Room membership: who is in a room, which rooms a local user is in."""

from __future__ import annotations

from collections.abc import Collection

import attrs

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

    async def get_rooms_for_local_user(
        self, user_id: str, memberships: Collection[str] = ("join",),
        include_forgotten: bool = False,
    ) -> list[RoomForUser]:
        marks = ", ".join("?" for _ in memberships)
        sql = (f"SELECT room_id, event_id, membership, stream_ordering"
               f" FROM local_current_membership WHERE user_id = ? AND membership IN ({marks})")
        if not include_forgotten:
            sql += " AND forgotten = 0"
        rows = await self.db.execute("get_rooms_for_local_user", sql, user_id, *memberships)
        return [RoomForUser(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def get_local_membership(self, user_id: str, room_id: str) -> RoomForUser | None:
        rows = await self.db.execute(
            "get_local_membership",
            "SELECT room_id, event_id, membership, stream_ordering FROM local_current_membership"
            " WHERE user_id = ? AND room_id = ?", user_id, room_id)
        return RoomForUser(rows[0][0], rows[0][1], rows[0][2], int(rows[0][3])) if rows else None

    async def get_users_in_room(self, room_id: str, membership: str = "join") -> list[str]:
        rows = await self.db.execute(
            "get_users_in_room",
            "SELECT state_key FROM current_state_events WHERE room_id = ?"
            " AND type = 'm.room.member' AND membership = ? ORDER BY state_key",
            room_id, membership)
        return [r[0] for r in rows]

    async def get_member_counts(self, room_id: str) -> dict[str, int]:
        rows = await self.db.execute(
            "get_member_counts",
            "SELECT membership, COUNT(*) FROM current_state_events WHERE room_id = ?"
            " AND type = 'm.room.member' GROUP BY membership", room_id)
        return {r[0]: int(r[1]) for r in rows}

    async def forget(self, user_id: str, room_id: str) -> bool:
        """Mark a left room forgotten; False if the user is still joined/invited there."""

        def _txn(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE local_current_membership SET forgotten = 1 WHERE user_id = ?"
                " AND room_id = ? AND membership IN ('leave', 'ban')", (user_id, room_id))
            return txn.rowcount > 0

        return await self.db.run_interaction("forget_room", _txn)
