"""Send-to-device inboxes: messages waiting for one device until it acknowledges them.

A sendToDevice request is stored in one transaction under one stream position, guarded by
its (sender, sender device, txn_id) row, so a retried request is delivered once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from storage.database import DatabasePool, IntegrityError, Transaction
from storage.stream import StreamIdGenerator


class ToDeviceStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        # The position must never go backwards across a restart, even when every message
        # was acknowledged (deleted): the txn rows remember the highest position used.
        self._stream = StreamIdGenerator(
            db, "(SELECT stream_id FROM device_inbox"
                " UNION ALL SELECT stream_id FROM to_device_txns) AS positions", "stream_id")

    def get_current_position(self) -> int:
        return self._stream.get_current_token()

    async def add_messages(self, sender: str, sender_device: str, txn_id: str, now: int,
                           messages: Mapping[tuple[str, str], Mapping[str, Any]]
                           ) -> int | None:
        """Store one message per (user_id, device_id), all under one new position.

        Returns:
            The position, or None if this txn_id was already used by this sender device
            (nothing is stored again).
        """

        def _txn(txn: Transaction, stream_id: int) -> bool:
            try:
                txn.insert("to_device_txns", {
                    "user_id": sender, "device_id": sender_device, "txn_id": txn_id,
                    "stream_id": stream_id, "inserted_ts": now})
            except IntegrityError:
                return False
            txn.executemany(
                "INSERT INTO device_inbox (user_id, device_id, stream_id, message_json)"
                " VALUES (?, ?, ?, ?)",
                [(user_id, device_id, stream_id,
                  json.dumps(message, ensure_ascii=False, separators=(",", ":")))
                 for (user_id, device_id), message in messages.items()])
            return True

        with self._stream.get_next() as stream_id:
            stored = await self.db.run_interaction("add_to_device_messages", _txn, stream_id)
        return stream_id if stored else None

    async def get_messages(self, user_id: str, device_id: str, from_key: int, to_key: int,
                           limit: int) -> list[tuple[int, dict[str, Any]]]:
        """(stream_id, message) pairs with from_key < stream_id <= to_key, oldest first."""
        rows = await self.db.execute(
            "get_to_device_messages",
            "SELECT stream_id, message_json FROM device_inbox WHERE user_id = ?"
            " AND device_id = ? AND stream_id > ? AND stream_id <= ?"
            " ORDER BY stream_id LIMIT ?",
            user_id, device_id, from_key, to_key, limit)
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    async def delete_messages_up_to(self, user_id: str, device_id: str, up_to: int) -> int:
        """Delete the device's messages with stream_id <= up_to; returns how many."""

        def _txn(txn: Transaction) -> int:
            txn.execute("DELETE FROM device_inbox WHERE user_id = ? AND device_id = ?"
                        " AND stream_id <= ?", (user_id, device_id, up_to))
            return txn.rowcount

        return await self.db.run_interaction("delete_to_device_messages", _txn)

    async def delete_device_inboxes(self, user_id: str, device_ids: Iterable[str]) -> None:
        """Drop everything waiting for these devices (they were deleted)."""

        def _txn(txn: Transaction) -> None:
            txn.executemany("DELETE FROM device_inbox WHERE user_id = ? AND device_id = ?",
                            [(user_id, d) for d in device_ids])

        await self.db.run_interaction("delete_device_inboxes", _txn)

    async def delete_old_txn_ids(self, before_ts: int) -> None:
        """Forget txn IDs older than `before_ts` (a retry after that is a new request),
        keeping the newest, which holds the stream position across restarts."""
        await self.db.execute(
            "delete_old_to_device_txns",
            "DELETE FROM to_device_txns WHERE inserted_ts < ?"
            " AND stream_id < (SELECT MAX(stream_id) FROM to_device_txns)", before_ts)
