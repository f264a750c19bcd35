"""Inbound `PUT /send/{txnId}`: PDUs from a remote server are checked and join the room;
forged, unauthorised or malformed ones are refused and leave the room untouched."""

from __future__ import annotations

from typing import Any

from homeserver.event_hashing import add_content_hash, sign_event
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.federation.fed_helpers import RemoteServer, join_remote_user, signed_request
from tests.federation.test_sender import FakeFederationClient
from tests.harness import HomeserverTestCase

SEND = "/_matrix/federation/v1/send"


class ReceivePduTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        hs._parts["federation_client"] = FakeFederationClient()
        self.remote = RemoteServer("remote.test")
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.rita = "@rita:remote.test"
        self.rita_join = join_remote_user(self, self.room_id, self.rita)
        self.txn = 0

    def pdu(self, content: dict[str, Any], sender: str | None = None,
            server: RemoteServer | None = None, event_type: str = "m.room.message",
            state_key: str | None = None) -> dict[str, Any]:
        """A PDU by `sender` on top of the room's current extremities, signed by `server`."""
        events = self.hs.get_datastores().events
        state = self.hs.get_datastores().state
        sender = sender or self.rita
        room_version = self.get_success(events.get_room_version(self.room_id))
        extremities = self.get_success(events.get_forward_extremities(self.room_id))
        current = self.get_success(state.get_current_state_ids(self.room_id))
        auth = [current[k] for k in (("m.room.power_levels", ""), ("m.room.member", sender))
                if k in current]
        if not room_version.room_id_from_create_event:
            auth.append(current[("m.room.create", "")])
        pdu: dict[str, Any] = {
            "room_id": self.room_id, "type": event_type, "sender": sender,
            "content": content, "origin_server_ts": self.hs.get_clock().time_msec(),
            "depth": max(d for _, d in extremities) + 1,
            "prev_events": [e for e, _ in extremities], "auth_events": auth,
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        pdu = add_content_hash(pdu)
        signer = server or self.remote
        return sign_event(pdu, signer.name, signer.key, room_version)

    def send_txn(self, pdus: list[dict[str, Any]], edus: list[Any] | None = None,
                 txn_id: str | None = None) -> Any:
        self.txn += 1
        body = {"origin": self.remote.name, "origin_server_ts": 0, "pdus": pdus,
                "edus": edus or []}
        return signed_request(self, self.remote, "PUT", f"{SEND}/{txn_id or self.txn}", body)

    def timeline(self) -> list[str]:
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=b",
                                    access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        return [e["event_id"] for e in channel.json_body["chunk"]]

    def event_id_of(self, pdu: dict[str, Any]) -> str:
        from homeserver.events import Event

        version = self.get_success(
            self.hs.get_datastores().events.get_room_version(self.room_id))
        return Event.from_pdu(pdu, version).event_id

    def test_valid_pdu_joins_the_timeline_and_wakes_sync(self) -> None:
        token = self.make_request("GET", f"{CLIENT}/sync", access_token=self.alice_token)
        since = token.json_body["next_batch"]
        poll = self.make_request("GET", f"{CLIENT}/sync?timeout=30000&since={since}",
                                 access_token=self.alice_token, await_result=False)
        pdu = self.pdu({"msgtype": "m.text", "body": "from afar"})
        channel = self.send_txn([pdu])
        self.assertEqual(channel.code, 200, channel.result)
        event_id = self.event_id_of(pdu)
        self.assertEqual(channel.json_body, {"pdus": {event_id: {}}})
        self.assertEqual(self.timeline()[0], event_id)
        self.pump()
        self.assertEqual(poll.code, 200, poll.result)
        events = poll.json_body["rooms"]["join"][self.room_id]["timeline"]["events"]
        self.assertEqual([e["content"]["body"] for e in events], ["from afar"])
        # The event's own extremity replaced the old one.
        extremities = self.get_success(
            self.hs.get_datastores().events.get_forward_extremities(self.room_id))
        self.assertEqual([e for e, _ in extremities], [event_id])

    def test_received_message_is_searchable_until_redacted(self) -> None:
        """A PDU from afar is indexed for /search; its sender's redaction removes it."""
        def found() -> list[str]:
            channel = self.make_request("POST", f"{CLIENT}/search", {"search_categories": {
                "room_events": {"search_term": "quokka"}}}, access_token=self.alice_token)
            self.assertEqual(channel.code, 200, channel.result)
            return [r["result"]["event_id"]
                    for r in channel.json_body["search_categories"]["room_events"]["results"]]

        pdu = self.pdu({"msgtype": "m.text", "body": "a quokka from afar"})
        self.assertEqual(self.send_txn([pdu]).code, 200)
        event_id = self.event_id_of(pdu)
        self.assertEqual(found(), [event_id])
        # Room version 12: the target is in content.redacts.
        redaction = self.pdu({"redacts": event_id}, event_type="m.room.redaction")
        self.assertEqual(self.send_txn([redaction]).code, 200)
        self.assertEqual(found(), [])

    def test_replayed_transaction_gets_the_same_answer(self) -> None:
        pdu = self.pdu({"msgtype": "m.text", "body": "once"})
        first = self.send_txn([pdu], txn_id="same")
        again = self.send_txn([], txn_id="same")
        self.assertEqual(first.json_body, again.json_body)
        self.assertEqual(self.timeline().count(self.event_id_of(pdu)), 1)

    def test_forged_signature_is_refused(self) -> None:
        impostor = RemoteServer("remote.test")  # same name, another key
        pdu = self.pdu({"msgtype": "m.text", "body": "forged"}, server=impostor)
        before = self.timeline()
        channel = self.send_txn([pdu])
        self.assertEqual(channel.code, 200, channel.result)
        result = channel.json_body["pdus"][self.event_id_of(pdu)]
        self.assertIn("signature", result["error"])
        self.assertEqual(self.timeline(), before)

    def test_pdu_of_a_non_member_is_rejected(self) -> None:
        pdu = self.pdu({"msgtype": "m.text", "body": "let me in"}, sender="@mallory:remote.test")
        before = self.timeline()
        channel = self.send_txn([pdu])
        self.assertIn("error", channel.json_body["pdus"][self.event_id_of(pdu)])
        self.assertEqual(self.timeline(), before)

    def test_unauthorised_state_change_leaves_state_untouched(self) -> None:
        """Rita (power 0) may not rename the room: rejected, the name stays."""
        self.send_state(self.alice_token, self.room_id, "m.room.name", {"name": "kept"})
        pdu = self.pdu({"name": "hijacked"}, event_type="m.room.name", state_key="")
        channel = self.send_txn([pdu])
        self.assertIn("error", channel.json_body["pdus"][self.event_id_of(pdu)])
        self.assertEqual(self.state_content(self.room_id, "m.room.name"), {"name": "kept"})

    def test_tampered_content_keeps_only_the_redacted_event(self) -> None:
        pdu = self.pdu({"msgtype": "m.text", "body": "original"})
        pdu["content"] = {"msgtype": "m.text", "body": "tampered"}
        # The signature covers the redacted form (no content), so it still verifies; the
        # content hash does not match: the event is kept redacted.
        channel = self.send_txn([pdu])
        self.assertEqual(channel.code, 200, channel.result)
        event = self.get_success(
            self.hs.get_datastores().events.get_event(self.event_id_of(pdu)))
        self.assertIsNotNone(event)
        self.assertEqual(dict(event.content), {})

    def test_transaction_limits_and_bad_bodies(self) -> None:
        pdu = self.pdu({"msgtype": "m.text", "body": "x"})
        self.assert_error(self.send_txn([pdu] * 51), 400, "M_BAD_JSON")
        self.assert_error(self.send_txn([], edus=[{}] * 101), 400, "M_BAD_JSON")
        channel = signed_request(self, self.remote, "PUT", f"{SEND}/bad", {"pdus": "nope"})
        self.assert_error(channel, 400, "M_BAD_JSON")
        channel = self.make_request("PUT", f"{SEND}/unsigned", {"pdus": []})
        self.assert_error(channel, 401, "M_UNAUTHORIZED")

    def test_pdu_for_an_unknown_room(self) -> None:
        pdu = self.pdu({"msgtype": "m.text", "body": "x"})
        pdu["room_id"] = "!unknown:remote.test"
        channel = self.send_txn([pdu])
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["pdus"], {})

    def test_remote_typing_and_receipt_edus(self) -> None:
        pdu = self.pdu({"msgtype": "m.text", "body": "read me"})
        self.send_txn([pdu])
        event_id = self.event_id_of(pdu)
        self.send_txn([], edus=[
            {"edu_type": "m.typing",
             "content": {"room_id": self.room_id, "user_id": self.rita, "typing": True}},
            {"edu_type": "m.typing",  # a user of another server: ignored
             "content": {"room_id": self.room_id, "user_id": "@eve:evil.test",
                         "typing": True}},
            {"edu_type": "m.receipt", "content": {self.room_id: {"m.read": {
                self.rita: {"event_ids": [event_id], "data": {"ts": 1}}}}}},
        ])
        body = self.make_request("GET", f"{CLIENT}/sync", access_token=self.alice_token)
        ephemeral = body.json_body["rooms"]["join"][self.room_id]["ephemeral"]["events"]
        by_type = {e["type"]: e["content"] for e in ephemeral}
        self.assertEqual(by_type["m.typing"], {"user_ids": [self.rita]})
        self.assertIn(self.rita, by_type["m.receipt"][event_id]["m.read"])

    def test_to_device_both_ways(self) -> None:
        devices = self.get_success(self.hs.get_datastores().devices.get_devices(self.alice))
        device_id = devices[0].device_id
        edu = {"edu_type": "m.direct_to_device", "content": {
            "sender": self.rita, "type": "org.example.ping", "message_id": "m1",
            "messages": {self.alice: {device_id: {"n": 1}}}}}
        forged = {"edu_type": "m.direct_to_device", "content": {
            "sender": "@eve:evil.test", "type": "org.example.ping", "message_id": "m2",
            "messages": {self.alice: {"*": {"n": 2}}}}}
        self.send_txn([], edus=[edu, forged])
        self.send_txn([], edus=[edu])  # the same message again: delivered once
        body = self.make_request("GET", f"{CLIENT}/sync", access_token=self.alice_token)
        self.assertEqual(body.json_body["to_device"]["events"],
                         [{"type": "org.example.ping", "sender": self.rita,
                           "content": {"n": 1}}])
        # Outbound: a message for rita goes to her server as an EDU.
        channel = self.make_request(
            "PUT", f"{CLIENT}/sendToDevice/org.example.pong/t1",
            {"messages": {self.rita: {"PHONE": {"n": 3}}}}, access_token=self.alice_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.pump()
        client = self.hs.get_federation_client()
        edus = [e for txn in client.to("remote.test") for e in txn.body["edus"]
                if e["edu_type"] == "m.direct_to_device"]
        self.assertEqual(len(edus), 1)
        self.assertEqual(edus[0]["content"]["messages"], {self.rita: {"PHONE": {"n": 3}}})
        self.assertEqual(edus[0]["content"]["sender"], self.alice)
