"""Rooms: the room list, public directory flag, aliases and event reports."""

from __future__ import annotations

import json
from typing import Any

import attrs

from storage.database import DatabasePool, IntegrityError, Transaction
from storage.id_generator import IdGenerator


@attrs.frozen(slots=True)
class RoomRow:
    room_id: str
    room_version: str
    creator: str | None
    is_public: bool
    created_ts: int


class RoomStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._report_ids = IdGenerator(db, "event_reports")

    async def get_room(self, room_id: str) -> RoomRow | None:
        rows = await self.db.execute(
            "get_room", "SELECT room_id, room_version, creator, is_public, created_ts"
            " FROM rooms WHERE room_id = ?", room_id)
        if not rows:
            return None
        r = rows[0]
        return RoomRow(r[0], r[1], r[2], bool(r[3]), int(r[4]))

    async def store_remote_room(self, room_id: str, room_version: str, creator: str,
                                created_ts: int) -> None:
        """Record a room created on another server, once we join it."""

        def _txn(txn: Transaction) -> None:
            if txn.select_one("SELECT 1 FROM rooms WHERE room_id = ?", (room_id,)) is None:
                txn.insert("rooms", {"room_id": room_id, "room_version": room_version,
                                     "creator": creator, "created_ts": created_ts})

        await self.db.run_interaction("store_remote_room", _txn)

    async def set_room_is_public(self, room_id: str, is_public: bool) -> None:
        await self.db.execute("set_room_is_public",
                              "UPDATE rooms SET is_public = ? WHERE room_id = ?",
                              int(is_public), room_id)

    async def get_public_room_ids(self) -> list[str]:
        rows = await self.db.execute(
            "get_public_room_ids",
            "SELECT room_id FROM rooms WHERE is_public = 1 ORDER BY created_ts, room_id")
        return [r[0] for r in rows]

    # -- aliases --

    async def create_alias(self, alias: str, room_id: str, creator: str) -> bool:
        """False if the alias is taken."""

        def _txn(txn: Transaction) -> bool:
            try:
                txn.insert("room_aliases",
                           {"room_alias": alias, "room_id": room_id, "creator": creator})
            except IntegrityError:
                return False
            return True

        return await self.db.run_interaction("create_alias", _txn)

    async def get_alias(self, alias: str) -> tuple[str, str] | None:
        """(room_id, creator) of an alias."""
        rows = await self.db.execute(
            "get_alias", "SELECT room_id, creator FROM room_aliases WHERE room_alias = ?", alias)
        return (rows[0][0], rows[0][1]) if rows else None

    async def delete_alias(self, alias: str) -> bool:
        def _txn(txn: Transaction) -> bool:
            txn.execute("DELETE FROM room_aliases WHERE room_alias = ?", (alias,))
            return txn.rowcount > 0

        return await self.db.run_interaction("delete_alias", _txn)

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self.db.execute(
            "get_aliases_for_room",
            "SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY room_alias", room_id)
        return [r[0] for r in rows]

    # -- reports --

    async def add_event_report(self, room_id: str, event_id: str, user_id: str,
                               reason: str | None, content: dict[str, Any],
                               received_ts: int) -> int:
        report_id = self._report_ids.next_id()
        await self.db.execute(
            "add_event_report",
            "INSERT INTO event_reports (id, received_ts, room_id, event_id, user_id, reason,"
            " content) VALUES (?, ?, ?, ?, ?, ?, ?)",
            report_id, received_ts, room_id, event_id, user_id, reason, json.dumps(content))
        return report_id
