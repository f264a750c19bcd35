"""Relations across Axon and a real Synapse (issue 12): an edit and a thread reply made
on one server are bundled on the other server's copy of the root."""

from __future__ import annotations

import time
import unittest
from typing import Any

from tests.integration.federation_pair import Client, q
from tests.integration.synapse_process import AxonSynapsePair


def send(client: Client, room_id: str, content: dict[str, Any]) -> str:
    txn = f"t{time.monotonic_ns()}"
    answer = client.ok("PUT", f"/rooms/{q(room_id)}/send/m.room.message/{txn}", content)
    return str(answer["event_id"])


def edit_and_reply(client: Client, room_id: str) -> tuple[str, str, str]:
    """A root message, an edit of it and a thread reply to it; their event IDs."""
    root = send(client, room_id, {"msgtype": "m.text", "body": "root"})
    edit = send(client, room_id, {
        "msgtype": "m.text", "body": "* root edited",
        "m.new_content": {"msgtype": "m.text", "body": "root edited"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": root}})
    reply = send(client, room_id, {
        "msgtype": "m.text", "body": "reply",
        "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    return root, edit, reply


class SynapseRelationsTestCase(AxonSynapsePair, unittest.TestCase):
    @classmethod
    def prepare_servers(cls) -> None:
        cls.alice = Client(cls.axon, "alice")
        cls.sam = Client(cls.synapse, "sam")  # type: ignore[arg-type]
        cls.room_id = cls.alice.ok("POST", "/createRoom",
                                   {"preset": "public_chat"})["room_id"]
        code, body = cls.sam.call(
            "POST", f"/join/{q(cls.room_id)}?server_name={q(cls.axon.server_name)}", {})
        if code != 200:
            raise AssertionError(f"join: {code} {body}")

    def wait_for_relations(self, client: Client, root: str, reply: str) -> dict[str, Any]:
        """The root's `m.relations` on `client`'s server once the reply is bundled."""
        deadline = time.monotonic() + 30
        relations: dict[str, Any] = {}
        while time.monotonic() < deadline:
            code, event = client.call("GET", f"/rooms/{q(self.room_id)}/event/{q(root)}")
            if code == 200:
                relations = event.get("unsigned", {}).get("m.relations", {})
                if relations.get("m.thread", {}).get("latest_event", {}).get(
                        "event_id") == reply and "m.replace" in relations:
                    return relations
            time.sleep(0.3)
        raise AssertionError(f"not aggregated: {relations}\n{self.logs()}")

    def check(self, author: Client, reader: Client) -> None:
        root, edit, reply = edit_and_reply(author, self.room_id)
        relations = self.wait_for_relations(reader, root, reply)
        self.assertEqual(relations["m.replace"]["event_id"], edit)
        self.assertEqual(relations["m.replace"]["content"]["m.new_content"]["body"],
                         "root edited")
        self.assertEqual(relations["m.thread"]["count"], 1)
        self.assertFalse(relations["m.thread"]["current_user_participated"])
        code, page = reader.server.json(
            "GET", f"/_matrix/client/v1/rooms/{q(self.room_id)}/relations/{q(root)}/m.thread",
            None, reader.token)
        self.assertEqual(code, 200, page)
        self.assertEqual([e["event_id"] for e in page["chunk"]], [reply])

    def test_synapse_edit_and_thread_reply_aggregated_on_axon(self) -> None:
        """What a Synapse user edits and replies to in a thread is bundled by Axon."""
        self.check(self.sam, self.alice)

    def test_axon_edit_and_thread_reply_aggregated_on_synapse(self) -> None:
        """What an Axon user edits and replies to in a thread is bundled by Synapse."""
        self.check(self.alice, self.sam)
