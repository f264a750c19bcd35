"""The audit log: an append-only table of admin actions and security events.

Nothing here updates or deletes single entries; only retention drops old ones.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from storage.database import DatabasePool, Transaction
from storage.id_generator import IdGenerator


@attrs.frozen(slots=True)
class AuditEntry:
    id: int
    ts: int
    action: str
    actor: str | None
    target: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


_COLS = "id, ts, action, actor, target, ip, user_agent, details"


def audit_entry(row: tuple) -> AuditEntry:  # type: ignore[type-arg]
    return AuditEntry(id=int(row[0]), ts=int(row[1]), action=row[2], actor=row[3],
                      target=row[4], ip=row[5], user_agent=row[6], details=json.loads(row[7]))


class AuditLogStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._ids = IdGenerator(db, "audit_log")

    def append_txn(self, txn: Transaction, ts: int, action: str, actor: str | None,
                   target: str | None, ip: str | None, user_agent: str | None,
                   details: dict[str, Any]) -> int:
        """Append inside a caller's transaction, so the entry commits with the action."""
        entry_id = self._ids.next_id()
        txn.insert("audit_log", {
            "id": entry_id, "ts": ts, "action": action, "actor": actor, "target": target,
            "ip": ip, "user_agent": user_agent,
            "details": json.dumps(details, separators=(",", ":"), ensure_ascii=False),
        })
        return entry_id

    async def append(self, ts: int, action: str, actor: str | None, target: str | None,
                     ip: str | None, user_agent: str | None, details: dict[str, Any]) -> int:
        return await self.db.run_interaction(
            "append_audit_log", self.append_txn, ts, action, actor, target, ip, user_agent,
            details)

    async def get_entries(self, limit: int, from_id: int | None = None,
                          actor: str | None = None, target: str | None = None,
                          action: str | None = None, since_ts: int | None = None,
                          until_ts: int | None = None) -> list[AuditEntry]:
        """Newest first; `from_id` continues below that id."""
        where: list[str] = []
        args: list[object] = []
        for column, value in (("actor", actor), ("target", target), ("action", action)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if from_id is not None:
            where.append("id < ?")
            args.append(from_id)
        if since_ts is not None:
            where.append("ts >= ?")
            args.append(since_ts)
        if until_ts is not None:
            where.append("ts < ?")
            args.append(until_ts)
        sql = f"SELECT {_COLS} FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self.db.execute("get_audit_log", sql + " ORDER BY id DESC LIMIT ?",
                                     *args, limit)
        return [audit_entry(r) for r in rows]
