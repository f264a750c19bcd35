"""Relations received over federation (issue 12): an edit, a thread reply and a
redaction sent by a remote server show up in (and leave) the bundled aggregations."""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.federation import test_receive
from tests.harness import HomeserverTestCase


class RemoteRelationsTestCase(RoomHelpers, HomeserverTestCase):
    # The PDU-building helpers of the receive tests (not their tests).
    prepare = test_receive.ReceivePduTestCase.prepare
    pdu = test_receive.ReceivePduTestCase.pdu
    send_txn = test_receive.ReceivePduTestCase.send_txn
    event_id_of = test_receive.ReceivePduTestCase.event_id_of

    def deliver(self, content: dict[str, Any], event_type: str = "m.room.message") -> str:
        self.reactor.advance(0.01)
        pdu = self.pdu(content, event_type=event_type)
        channel = self.send_txn([pdu])
        self.assertEqual(channel.code, 200, channel.result)
        event_id = self.event_id_of(pdu)
        self.assertEqual(channel.json_body["pdus"][event_id], {}, channel.result)
        return event_id

    def relations_of(self, event_id: str) -> Any:
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/event/{event_id}",
                                    access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body["unsigned"].get("m.relations")

    def test_remote_edit_and_thread_reply_are_aggregated(self) -> None:
        """A remote user's edit of their message and a thread reply to it are bundled on
        the root; their redaction over federation takes them out again."""
        root = self.deliver({"msgtype": "m.text", "body": "original"})
        edit = self.deliver({"msgtype": "m.text", "body": "* edited",
                             "m.new_content": {"msgtype": "m.text", "body": "edited"},
                             "m.relates_to": {"rel_type": "m.replace", "event_id": root}})
        reply = self.deliver({"msgtype": "m.text", "body": "in thread",
                              "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
        relations = self.relations_of(root)
        self.assertEqual(relations["m.replace"]["event_id"], edit)
        self.assertEqual(relations["m.thread"]["latest_event"]["event_id"], reply)
        self.assertEqual(relations["m.thread"]["count"], 1)
        self.assertFalse(relations["m.thread"]["current_user_participated"])
        threads = self.make_request("GET", f"/_matrix/client/v1/rooms/{self.room_id}/threads",
                                    access_token=self.alice_token)
        self.assertEqual([e["event_id"] for e in threads.json_body["chunk"]], [root])
        for target in (edit, reply):
            self.deliver({"redacts": target}, event_type="m.room.redaction")
        self.assertIsNone(self.relations_of(root))
