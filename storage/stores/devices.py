"""Devices of local users."""

from __future__ import annotations

import attrs

from storage.database import DatabasePool, Transaction
from storage.stores.tokens import TokenStore


@attrs.frozen(slots=True)
class DeviceRow:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None
    last_seen_user_agent: str | None


_COLS = "user_id, device_id, display_name, last_seen_ts, last_seen_ip, last_seen_user_agent"


class DeviceStore:
    def __init__(self, db: DatabasePool, tokens: TokenStore) -> None:
        self.db = db
        self._tokens = tokens

    async def store_device(self, user_id: str, device_id: str,
                           display_name: str | None) -> bool:
        """Create the device if new. Returns True if it was created."""

        def _txn(txn: Transaction) -> bool:
            txn.upsert("devices", {"user_id": user_id, "device_id": device_id}, {})
            created = txn.rowcount > 0
            if created and display_name is not None:
                txn.execute(
                    "UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                    (display_name, user_id, device_id),
                )
            return created

        return await self.db.run_interaction("store_device", _txn)

    async def get_device(self, user_id: str, device_id: str) -> DeviceRow | None:
        rows = await self.db.execute(
            "get_device", f"SELECT {_COLS} FROM devices WHERE user_id = ? AND device_id = ?",
            user_id, device_id,
        )
        return DeviceRow(*rows[0]) if rows else None

    async def get_devices(self, user_id: str) -> list[DeviceRow]:
        rows = await self.db.execute(
            "get_devices", f"SELECT {_COLS} FROM devices WHERE user_id = ? ORDER BY device_id",
            user_id,
        )
        return [DeviceRow(*r) for r in rows]

    async def update_device_display_name(self, user_id: str, device_id: str,
                                         display_name: str | None) -> bool:
        def _txn(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                (display_name, user_id, device_id),
            )
            return txn.rowcount > 0

        return await self.db.run_interaction("update_device_display_name", _txn)

    async def update_last_seen(self, user_id: str, device_id: str, ts: int, ip: str,
                               user_agent: str) -> None:
        await self.db.execute(
            "update_last_seen",
            "UPDATE devices SET last_seen_ts = ?, last_seen_ip = ?, last_seen_user_agent = ?"
            " WHERE user_id = ? AND device_id = ?",
            ts, ip, user_agent, user_id, device_id,
        )

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> list[str]:
        """Delete devices and every token issued to them, in one transaction.

        Returns:
            the IDs of the devices that existed (the device-list stream announces them).
        """

        def _txn(txn: Transaction) -> list[str]:
            self._tokens.invalidate_after_txn(txn)
            deleted: list[str] = []
            for device_id in device_ids:
                for table in ("devices", "access_tokens", "refresh_tokens"):
                    txn.execute(f"DELETE FROM {table} WHERE user_id = ? AND device_id = ?",
                                (user_id, device_id))
                    if table == "devices" and txn.rowcount > 0:
                        deleted.append(device_id)
            return deleted

        return await self.db.run_interaction("delete_devices", _txn)
