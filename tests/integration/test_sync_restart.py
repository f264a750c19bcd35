"""Sync tokens stay valid across a server restart: nothing is lost or repeated."""

from __future__ import annotations

import unittest
from typing import Any

from tests.integration.server_process import ServerProcess

CLIENT = "/_matrix/client/v3"


class SyncRestartTests:
    engine = "sqlite3"

    def test_token_from_before_restart(self) -> None:
        t: Any = self
        server = ServerProcess(self.engine)
        try:
            server.start()
            server.register_user("alice", "alice-password-1")
            token = server.login("alice", "alice-password-1")
            code, body = server.json("POST", f"{CLIENT}/createRoom", {"name": "r"}, token)
            t.assertEqual(code, 200, body)
            room_id = body["room_id"]

            def send(text: str) -> str:
                code, body = server.json(
                    "PUT", f"{CLIENT}/rooms/{room_id}/send/m.room.message/{text}",
                    {"msgtype": "m.text", "body": text}, token)
                t.assertEqual(code, 200, body)
                return str(body["event_id"])

            def sync(since: str | None) -> dict[str, Any]:
                path = f"{CLIENT}/sync?timeout=0" + (f"&since={since}" if since else "")
                code, body = server.json("GET", path, token=token)
                t.assertEqual(code, 200, body)
                return dict(body)

            before = send("before")
            first = sync(None)
            events = first["rooms"]["join"][room_id]["timeline"]["events"]
            t.assertEqual(events[-1]["event_id"], before)
            # Typing before the restart moves the in-memory typing position.
            code, body = server.json(
                "PUT", f"{CLIENT}/rooms/{room_id}/typing/@alice:localhost",
                {"typing": True, "timeout": 1000}, token)
            t.assertEqual(code, 200, body)
            mid = sync(first["next_batch"])

            t.assertEqual(server.stop(), 0)
            server.start()
            after = send("after")
            code, body = server.json(
                "PUT", f"{CLIENT}/rooms/{room_id}/typing/@alice:localhost",
                {"typing": True, "timeout": 30000}, token)
            t.assertEqual(code, 200, body)
            resumed = sync(mid["next_batch"])
            room = resumed["rooms"]["join"][room_id]
            t.assertEqual([e["event_id"] for e in room["timeline"]["events"]], [after])
            typing = [e for e in room["ephemeral"]["events"] if e["type"] == "m.typing"]
            t.assertEqual(typing[0]["content"]["user_ids"], ["@alice:localhost"])
        finally:
            server.close()


class SqliteSyncRestartTestCase(SyncRestartTests, unittest.TestCase):
    engine = "sqlite3"


class PostgresSyncRestartTestCase(SyncRestartTests, unittest.TestCase):
    engine = "psycopg2"
