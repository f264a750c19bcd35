"""Server-side key backup: backup versions and the encrypted room-key sessions in each."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from homeserver.event_hashing import canonical_json
from storage.database import DatabasePool, Transaction


@attrs.frozen(slots=True)
class BackupVersion:
    version: int
    algorithm: str
    auth_data: dict[str, Any]
    etag: int


@attrs.frozen(slots=True)
class RoomKey:
    room_id: str
    session_id: str
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: dict[str, Any]


def _dump(obj: Any) -> str:
    return canonical_json(obj).decode("utf-8")


class E2eRoomKeysStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def create_version(self, user_id: str, algorithm: str,
                             auth_data: Mapping[str, Any]) -> int:
        """A new backup version (the highest number so far plus one, deleted ones
        included); it becomes the current one."""

        def _txn(txn: Transaction) -> int:
            row = txn.select_one(
                "SELECT MAX(version) FROM e2e_room_keys_versions WHERE user_id = ?",
                (user_id,))
            version = int(row[0]) + 1 if row and row[0] is not None else 1
            txn.insert("e2e_room_keys_versions", {
                "user_id": user_id, "version": version, "algorithm": algorithm,
                "auth_data": _dump(auth_data), "etag": 0, "deleted": 0})
            return version

        return await self.db.run_interaction("create_room_keys_version", _txn)

    async def get_version(self, user_id: str, version: int | None) -> BackupVersion | None:
        """The given (or, for None, the current) non-deleted version."""
        if version is None:
            rows = await self.db.execute(
                "get_current_room_keys_version",
                "SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions"
                " WHERE user_id = ? AND deleted = 0 ORDER BY version DESC LIMIT 1", user_id)
        else:
            rows = await self.db.execute(
                "get_room_keys_version",
                "SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions"
                " WHERE user_id = ? AND version = ? AND deleted = 0", user_id, version)
        if not rows:
            return None
        r = rows[0]
        return BackupVersion(int(r[0]), r[1], json.loads(r[2]), int(r[3]))

    async def update_version(self, user_id: str, version: int,
                             auth_data: Mapping[str, Any]) -> bool:
        def _txn(txn: Transaction) -> bool:
            txn.execute("UPDATE e2e_room_keys_versions SET auth_data = ? WHERE user_id = ?"
                        " AND version = ? AND deleted = 0",
                        (_dump(auth_data), user_id, version))
            return txn.rowcount > 0

        return await self.db.run_interaction("update_room_keys_version", _txn)

    async def delete_version(self, user_id: str, version: int) -> bool:
        """Mark the version deleted and drop its keys."""

        def _txn(txn: Transaction) -> bool:
            txn.execute("UPDATE e2e_room_keys_versions SET deleted = 1 WHERE user_id = ?"
                        " AND version = ? AND deleted = 0", (user_id, version))
            if txn.rowcount == 0:
                return False
            txn.execute("DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?",
                        (user_id, version))
            return True

        return await self.db.run_interaction("delete_room_keys_version", _txn)

    async def count_keys(self, user_id: str, version: int) -> int:
        rows = await self.db.execute(
            "count_room_keys",
            "SELECT COUNT(*) FROM e2e_room_keys WHERE user_id = ? AND version = ?",
            user_id, version)
        return int(rows[0][0])

    async def upsert_keys(self, user_id: str, version: int, keys: Sequence[RoomKey],
                          is_better: Callable[[RoomKey, RoomKey], bool]) -> int | None:
        """Store each key unless the stored session for it is at least as good
        (`is_better(new, old)` decides). The version's etag moves if anything changed.

        Returns:
            the version's etag, or None if the version does not exist (any more).
        """

        def _txn(txn: Transaction) -> int | None:
            head = txn.select_one(
                "SELECT etag FROM e2e_room_keys_versions WHERE user_id = ? AND version = ?"
                " AND deleted = 0", (user_id, version))
            if head is None:
                return None
            changed = False
            for key in keys:
                row = txn.select_one(
                    "SELECT first_message_index, forwarded_count, is_verified, session_data"
                    " FROM e2e_room_keys WHERE user_id = ? AND version = ? AND room_id = ?"
                    " AND session_id = ?", (user_id, version, key.room_id, key.session_id))
                if row is not None:
                    old = RoomKey(key.room_id, key.session_id, int(row[0]), int(row[1]),
                                  bool(row[2]), json.loads(row[3]))
                    if not is_better(key, old):
                        continue
                txn.upsert("e2e_room_keys", {
                    "user_id": user_id, "version": version, "room_id": key.room_id,
                    "session_id": key.session_id}, {
                    "first_message_index": key.first_message_index,
                    "forwarded_count": key.forwarded_count,
                    "is_verified": int(key.is_verified),
                    "session_data": _dump(key.session_data)})
                changed = True
            etag = int(head[0])
            if changed:
                etag += 1
                txn.execute("UPDATE e2e_room_keys_versions SET etag = ? WHERE user_id = ?"
                            " AND version = ?", (etag, user_id, version))
            return etag

        return await self.db.run_interaction("upsert_room_keys", _txn)

    async def get_keys(self, user_id: str, version: int, room_id: str | None,
                       session_id: str | None) -> list[RoomKey]:
        sql = ("SELECT room_id, session_id, first_message_index, forwarded_count,"
               " is_verified, session_data FROM e2e_room_keys WHERE user_id = ?"
               " AND version = ?")
        args: list[Any] = [user_id, version]
        if room_id is not None:
            sql += " AND room_id = ?"
            args.append(room_id)
            if session_id is not None:
                sql += " AND session_id = ?"
                args.append(session_id)
        rows = await self.db.execute("get_room_keys", sql + " ORDER BY room_id, session_id",
                                     *args)
        return [RoomKey(r[0], r[1], int(r[2]), int(r[3]), bool(r[4]), json.loads(r[5]))
                for r in rows]

    async def delete_keys(self, user_id: str, version: int, room_id: str | None,
                          session_id: str | None) -> int | None:
        """Delete the matching keys; returns the version's new etag (None: no version)."""

        def _txn(txn: Transaction) -> int | None:
            head = txn.select_one(
                "SELECT etag FROM e2e_room_keys_versions WHERE user_id = ? AND version = ?"
                " AND deleted = 0", (user_id, version))
            if head is None:
                return None
            sql = "DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?"
            args: list[Any] = [user_id, version]
            if room_id is not None:
                sql += " AND room_id = ?"
                args.append(room_id)
                if session_id is not None:
                    sql += " AND session_id = ?"
                    args.append(session_id)
            txn.execute(sql, args)
            etag = int(head[0])
            if txn.rowcount:
                etag += 1
                txn.execute("UPDATE e2e_room_keys_versions SET etag = ? WHERE user_id = ?"
                            " AND version = ?", (etag, user_id, version))
            return etag

        return await self.db.run_interaction("delete_room_keys", _txn)
