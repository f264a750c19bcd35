"""Sessions of user-interactive auth and the stages completed in each."""

from __future__ import annotations

import json
from typing import Any

import attrs

from storage.database import DatabasePool, Transaction


@attrs.frozen(slots=True)
class UIAuthSession:
    session_id: str
    creation_time: int
    clientdict: dict[str, Any]
    serverdict: dict[str, Any]
    uri: str
    method: str
    description: str


class UIAuthStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def create_session(self, session_id: str, now: int, clientdict: dict[str, Any],
                             uri: str, method: str, description: str) -> None:
        def _txn(txn: Transaction) -> None:
            txn.insert("ui_auth_sessions", {
                "session_id": session_id, "creation_time": now,
                "serverdict": "{}", "clientdict": json.dumps(clientdict),
                "uri": uri, "method": method, "description": description,
            })

        await self.db.run_interaction("create_ui_auth_session", _txn)

    async def get_session(self, session_id: str) -> UIAuthSession | None:
        rows = await self.db.execute(
            "get_ui_auth_session",
            "SELECT session_id, creation_time, clientdict, serverdict, uri, method, description"
            " FROM ui_auth_sessions WHERE session_id = ?",
            session_id,
        )
        if not rows:
            return None
        r = rows[0]
        return UIAuthSession(r[0], int(r[1]), json.loads(r[2]), json.loads(r[3]), r[4], r[5],
                             r[6])

    async def set_serverdict_value(self, session_id: str, key: str, value: Any) -> None:
        def _txn(txn: Transaction) -> None:
            row = txn.select_one("SELECT serverdict FROM ui_auth_sessions WHERE session_id = ?",
                                 (session_id,))
            if row is None:
                return
            data = json.loads(row[0])
            data[key] = value
            txn.execute("UPDATE ui_auth_sessions SET serverdict = ? WHERE session_id = ?",
                        (json.dumps(data), session_id))

        await self.db.run_interaction("set_ui_auth_serverdict", _txn)

    async def mark_stage_complete(self, session_id: str, stage_type: str, result: Any) -> None:
        def _txn(txn: Transaction) -> None:
            # An upsert, not insert-then-update: PostgreSQL aborts the transaction on the
            # failed insert, so a re-sent stage would fail.
            txn.upsert("ui_auth_sessions_credentials",
                       {"session_id": session_id, "stage_type": stage_type},
                       {"result": json.dumps(result)})

        await self.db.run_interaction("mark_ui_auth_stage_complete", _txn)

    async def delete_session(self, session_id: str) -> None:
        def _txn(txn: Transaction) -> None:
            txn.execute("DELETE FROM ui_auth_sessions_credentials WHERE session_id = ?",
                        (session_id,))
            txn.execute("DELETE FROM ui_auth_sessions WHERE session_id = ?", (session_id,))

        await self.db.run_interaction("delete_ui_auth_session", _txn)

    async def get_completed_stages(self, session_id: str) -> dict[str, Any]:
        rows = await self.db.execute(
            "get_completed_ui_auth_stages",
            "SELECT stage_type, result FROM ui_auth_sessions_credentials WHERE session_id = ?",
            session_id,
        )
        return {r[0]: json.loads(r[1]) for r in rows}

    async def delete_old_sessions(self, older_than: int) -> None:
        def _txn(txn: Transaction) -> None:
            txn.execute(
                "DELETE FROM ui_auth_sessions_credentials WHERE session_id IN ("
                " SELECT session_id FROM ui_auth_sessions WHERE creation_time < ?)",
                (older_than,),
            )
            txn.execute("DELETE FROM ui_auth_sessions WHERE creation_time < ?", (older_than,))

        await self.db.run_interaction("delete_old_ui_auth_sessions", _txn)
