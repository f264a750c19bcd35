"""Two Axon processes federating over loopback TLS, driven only through their client APIs."""

from __future__ import annotations

import time
import unittest
from typing import Any

from tests.integration.federation_pair import Client, federating_server, q


def timeline_bodies(answer: dict[str, Any], room_id: str) -> list[str]:
    room = answer["rooms"]["join"].get(room_id)
    if not room:
        return []
    return [e["content"].get("body", "") for e in room["timeline"]["events"]
            if e["type"] == "m.room.message"]


class TwoServersTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.a = federating_server()
        cls.b = federating_server()
        try:
            cls.a.start()
            cls.b.start()
            cls.alice = Client(cls.a, "alice")
            cls.bob = Client(cls.b, "bob")
        except BaseException:
            cls.a.close()
            cls.b.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.a.close()
        cls.b.close()

    def logs(self) -> str:
        return f"--- A ---\n{self.a.log()[-6000:]}\n--- B ---\n{self.b.log()[-6000:]}"

    def test_remote_profile(self) -> None:
        self.alice.ok("PUT", f"/profile/{q(self.alice.user_id)}/displayname",
                      {"displayname": "Alice A"})
        code, body = self.bob.call("GET", f"/profile/{q(self.alice.user_id)}/displayname")
        self.assertEqual((code, body), (200, {"displayname": "Alice A"}), self.logs())
        code, body = self.bob.call("GET", f"/profile/{q('@nobody:' + self.a.server_name)}")
        self.assertEqual(code, 404, body)

    def test_join_and_messages_both_ways(self) -> None:
        alice, bob = self.alice, self.bob
        room_id = alice.ok("POST", "/createRoom", {"preset": "public_chat",
                                                   "name": "across"})["room_id"]
        alice.sync()
        code, body = bob.call("POST", f"/join/{q(room_id)}?server_name={q(self.a.server_name)}",
                              {})
        self.assertEqual(code, 200, f"{body}\n{self.logs()}")
        # Alice sees Bob's join arrive.
        alice.wait_for(lambda a: any(
            e["type"] == "m.room.member" and e["state_key"] == bob.user_id
            for e in a["rooms"]["join"].get(room_id, {}).get("timeline", {}).get("events", [])))
        # Bob has the room with its name.
        state = bob.ok("GET", f"/rooms/{q(room_id)}/state/m.room.name/")
        self.assertEqual(state, {"name": "across"})

        bob.sync()
        sent = time.monotonic()
        alice.send(room_id, "hello from A")
        bob.wait_for(lambda a: "hello from A" in timeline_bodies(a, room_id))
        a_to_b = time.monotonic() - sent

        sent = time.monotonic()
        bob.send(room_id, "hello from B")
        alice.wait_for(lambda a: "hello from B" in timeline_bodies(a, room_id))
        b_to_a = time.monotonic() - sent
        self.assertLess(max(a_to_b, b_to_a), 5.0)

        # Both servers end with the same room state.
        state_a = {(e["type"], e["state_key"]): e["event_id"]
                   for e in alice.ok("GET", f"/rooms/{q(room_id)}/state")}
        state_b = {(e["type"], e["state_key"]): e["event_id"]
                   for e in bob.ok("GET", f"/rooms/{q(room_id)}/state")}
        self.assertEqual(state_a, state_b)
