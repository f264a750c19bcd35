"""matrix-nio searching the real server process (SQLite and PostgreSQL).

nio has no search call (no `Api.search`, no `AsyncClient.search`), so the request goes
through nio's own HTTP session (`AsyncClient.send`) with the path built by nio's
`Api._build_path` and its access token as a Bearer header, after nio logged in, created the room and sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import unittest
from typing import Any

import nio

from tests.integration.server_process import ServerProcess


class NioSearchTestCase(unittest.TestCase):
    engine = "sqlite3"

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess(engine=cls.engine)
        try:
            cls.server.start()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def test_nio_finds_its_messages(self) -> None:
        """nio sends messages, then a search finds the matching one with context and
        pages with next_batch; a redacted one is no longer found."""
        self.server.register_user("sam", "sam-password-1")

        async def search(client: nio.AsyncClient, body: dict[str, Any],
                         next_batch: str | None = None) -> dict[str, Any]:
            query: dict[str, str] = {}
            if next_batch is not None:
                query["next_batch"] = next_batch
            resp = await client.send("POST", nio.Api._build_path(["search"], query),
                                     json.dumps({"search_categories": {"room_events": body}}),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {client.access_token}"})
            self.assertEqual(resp.status, 200, await resp.text())
            result: dict[str, Any] = (await resp.json())["search_categories"]["room_events"]
            return result

        async def scenario() -> None:
            client = nio.AsyncClient(self.server.base_url, "@sam:localhost")
            try:
                self.assertIsInstance(await client.login("sam-password-1"), nio.LoginResponse)
                room = await client.room_create(name="nio search")
                self.assertIsInstance(room, nio.RoomCreateResponse, room)
                sent = []
                for body in ("the blue whale", "a red herring", "blue sky", "blue moon"):
                    resp = await client.room_send(room.room_id, "m.room.message",
                                                  {"msgtype": "m.text", "body": body})
                    self.assertIsInstance(resp, nio.RoomSendResponse, resp)
                    sent.append(resp.event_id)
                found = await search(client, {"search_term": "herring", "event_context": {
                    "before_limit": 1, "after_limit": 1, "include_profile": True}})
                self.assertEqual([r["result"]["event_id"] for r in found["results"]],
                                 [sent[1]])
                ctx = found["results"][0]["context"]
                self.assertEqual([e["event_id"] for e in ctx["events_before"]], [sent[0]])
                self.assertEqual([e["event_id"] for e in ctx["events_after"]], [sent[2]])
                seen: list[str] = []
                page = await search(client, {"search_term": "blue", "order_by": "recent",
                                             "filter": {"limit": 2}})
                seen.extend(r["result"]["event_id"] for r in page["results"])
                self.assertIn("next_batch", page)
                page = await search(client, {"search_term": "blue", "order_by": "recent",
                                             "filter": {"limit": 2}}, page["next_batch"])
                seen.extend(r["result"]["event_id"] for r in page["results"])
                self.assertEqual(seen, [sent[3], sent[2], sent[0]])
                redact = await client.room_redact(room.room_id, sent[2])
                self.assertIsInstance(redact, nio.RoomRedactResponse, redact)
                page = await search(client, {"search_term": "sky"})
                self.assertEqual(page["results"], [])
            finally:
                await client.close()

        asyncio.run(scenario())


@unittest.skipUnless(os.environ.get("AXON_TEST_PG_DSN"), "needs AXON_TEST_PG_DSN")
class NioSearchPostgresTestCase(NioSearchTestCase):
    engine = "psycopg2"
