"""Axon and a real Synapse (from PyPI) share rooms both ways over loopback TLS."""

from __future__ import annotations

import time
import unittest
from typing import Any

from tests.federation.test_two_servers import TwoServerScenarios
from tests.integration.federation_pair import Client, q
from tests.integration.synapse_process import AxonSynapsePair, SynapseProcess


def bodies(answer: dict[str, Any], room_id: str) -> list[str]:
    room = answer["rooms"]["join"].get(room_id)
    if not room:
        return []
    return [e["content"].get("body", "") for e in room["timeline"]["events"]
            if e["type"] == "m.room.message"]


class AxonSynapseScenarios(TwoServerScenarios, unittest.TestCase):
    """Every two-server scenario with a real Synapse as the second server."""

    b_is_axon = False

    @classmethod
    def make_b(cls) -> Any:
        return SynapseProcess()

    def test_history_missed_between_leave_and_rejoin(self) -> None:
        """Synapse, as the server that left and rejoined, backfills the gap from us."""
        self.check_history_missed_between_leave_and_rejoin()


class SynapseFederationTestCase(AxonSynapsePair, unittest.TestCase):
    @classmethod
    def prepare_servers(cls) -> None:
        cls.alice = Client(cls.axon, "alice")
        cls.sam = Client(cls.synapse, "sam")  # type: ignore[arg-type]

    def exchange(self, room_id: str, first: Client, second: Client) -> None:
        """A message each way, each seen in the other side's /sync."""
        second.sync()
        first.send(room_id, f"from {first.user_id}")
        second.wait_for(lambda a: f"from {first.user_id}" in bodies(a, room_id), timeout=30)
        first.sync()
        second.send(room_id, f"from {second.user_id}")
        first.wait_for(lambda a: f"from {second.user_id}" in bodies(a, room_id), timeout=30)

    def test_synapse_user_joins_an_axon_room(self) -> None:
        room_id = self.alice.ok("POST", "/createRoom", {"preset": "public_chat",
                                                        "name": "on axon"})["room_id"]
        code, body = self.sam.call(
            "POST", f"/join/{q(room_id)}?server_name={q(self.axon.server_name)}", {})
        self.assertEqual(code, 200, f"{body}\n{self.logs()}")
        self.assertEqual(self.sam.ok("GET", f"/rooms/{q(room_id)}/state/m.room.name/"),
                         {"name": "on axon"})
        try:
            self.exchange(room_id, self.alice, self.sam)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.logs()}") from None

    def test_axon_user_joins_a_synapse_room(self) -> None:
        room_id = self.sam.ok("POST", "/createRoom", {"preset": "public_chat",
                                                      "name": "on synapse"})["room_id"]
        code, body = self.alice.call(
            "POST", f"/join/{q(room_id)}?server_name={q(self.synapse.server_name)}", {})
        self.assertEqual(code, 200, f"{body}\n{self.logs()}")
        self.assertEqual(self.alice.ok("GET", f"/rooms/{q(room_id)}/state/m.room.name/"),
                         {"name": "on synapse"})
        start = time.monotonic()
        try:
            self.exchange(room_id, self.sam, self.alice)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.logs()}") from None
        self.assertLess(time.monotonic() - start, 60)

    def test_synapse_room_history_typing_receipts_and_kick(self) -> None:
        """In a room hosted by Synapse: Axon backfills the history from before its user
        joined, sees Synapse's typing and receipts, and applies Synapse's kick."""
        sam, alice = self.sam, self.alice
        room_id = sam.ok("POST", "/createRoom", {"preset": "public_chat"})["room_id"]
        earlier = [f"early {i}" for i in range(5)]
        for text in earlier:
            sam.send(room_id, text)
        alice.ok("POST", f"/join/{q(room_id)}?server_name={q(self.synapse.server_name)}", {})
        seen: list[str] = []
        token: str | None = None
        for _ in range(10):
            path = f"/rooms/{q(room_id)}/messages?dir=b&limit=5"
            page = alice.ok("GET", path + (f"&from={q(token)}" if token else ""))
            seen += [e["content"]["body"] for e in page["chunk"]
                     if e["type"] == "m.room.message"]
            token = page.get("end")
            if token is None:
                break
        self.assertEqual(seen, list(reversed(earlier)), self.logs())

        alice.sync()
        last = sam.send(room_id, "read me")
        sam.ok("PUT", f"/rooms/{q(room_id)}/typing/{q(sam.user_id)}",
               {"typing": True, "timeout": 20000})
        sam.ok("POST", f"/rooms/{q(room_id)}/receipt/m.read/{q(last)}", {})

        def ephemeral(answer: dict[str, Any], kind: str) -> list[Any]:
            room = answer["rooms"]["join"].get(room_id, {})
            return [e["content"] for e in room.get("ephemeral", {}).get("events", [])
                    if e["type"] == kind]

        got: dict[str, bool] = {"typing": False, "receipt": False}

        def check(answer: dict[str, Any]) -> bool:
            got["typing"] |= any(sam.user_id in c.get("user_ids", [])
                                 for c in ephemeral(answer, "m.typing"))
            got["receipt"] |= any(sam.user_id in c.get(last, {}).get("m.read", {})
                                  for c in ephemeral(answer, "m.receipt"))
            return got["typing"] and got["receipt"]

        try:
            alice.wait_for(check, timeout=30)
        except AssertionError:
            raise AssertionError(f"typing/receipt not seen: {got}\n{self.logs()}") from None

        sam.ok("POST", f"/rooms/{q(room_id)}/kick", {"user_id": alice.user_id})

        def kicked(answer: dict[str, Any]) -> bool:
            return room_id in answer["rooms"]["leave"]

        alice.wait_for(kicked, timeout=30)
        code, _ = alice.call("PUT", f"/rooms/{q(room_id)}/send/m.room.message/after-kick",
                             {"msgtype": "m.text", "body": "still here?"})
        self.assertEqual(code, 403)
