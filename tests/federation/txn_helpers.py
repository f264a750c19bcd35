"""A local room with a remote member, and PDUs from her server, for `/send` tests.

    class MyTest(RemoteRoomHelpers, HomeserverTestCase):
        def prepare(self, reactor, hs):
            self.prepare_remote_room()

        def test_x(self):
            pdu = self.pdu({"msgtype": "m.text", "body": "hi"})
            channel = self.send_txn([pdu])
"""

from __future__ import annotations

from typing import Any

from homeserver.event_hashing import add_content_hash, canonical_json, sign_event
from homeserver.events import Event
from tests.api.room_helpers import RoomHelpers
from tests.federation.fed_helpers import (
    RemoteServer,
    install_remote,
    join_remote_user,
    signed_request,
)
from tests.federation.test_sender import FakeFederationClient

SEND = "/_matrix/federation/v1/send"


class RemoteRoomHelpers(RoomHelpers):
    def prepare_remote_room(self) -> None:
        """Alice's public room, joined by @rita:remote.test; outbound federation faked."""
        self.hs._parts["federation_client"] = FakeFederationClient()
        self.remote = RemoteServer("remote.test")
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.rita = "@rita:remote.test"
        join_remote_user(self, self.room_id, self.rita)
        self.txn = 0

    def pdu(self, content: dict[str, Any], event_type: str = "m.room.message",
            prev_events: list[str] | None = None, depth: int | None = None,
            **fields: Any) -> dict[str, Any]:
        """A PDU by rita, signed by her server, on top of the room's extremities (or of
        `prev_events`); `fields` replace envelope fields before hashing and signing."""
        events = self.hs.get_datastores().events
        state = self.hs.get_datastores().state
        room_version = self.get_success(events.get_room_version(self.room_id))
        extremities = self.get_success(events.get_forward_extremities(self.room_id))
        current = self.get_success(state.get_current_state_ids(self.room_id))
        auth = [current[("m.room.power_levels", "")], current[("m.room.member", self.rita)]]
        if not room_version.room_id_from_create_event:
            auth.append(current[("m.room.create", "")])
        pdu: dict[str, Any] = {
            "room_id": self.room_id, "type": event_type, "sender": self.rita,
            "content": content, "origin_server_ts": self.hs.get_clock().time_msec(),
            "depth": depth if depth is not None else max(d for _, d in extremities) + 1,
            "prev_events": prev_events or [e for e, _ in extremities], "auth_events": auth,
            **fields,
        }
        return sign_event(add_content_hash(pdu), self.remote.name, self.remote.key,
                          room_version)

    def pdu_of_size(self, size: int, **kwargs: Any) -> dict[str, Any]:
        """A message PDU whose canonical JSON is exactly `size` bytes."""
        base = len(canonical_json(self.pdu({"msgtype": "m.text", "body": ""}, **kwargs)))
        pdu = self.pdu({"msgtype": "m.text", "body": "x" * (size - base)}, **kwargs)
        assert len(canonical_json(pdu)) == size
        return pdu

    def send_txn(self, pdus: list[Any], edus: list[Any] | None = None,
                 txn_id: str | None = None, await_result: bool = True) -> Any:
        self.txn += 1
        body = {"origin": self.remote.name, "origin_server_ts": 0, "pdus": pdus,
                "edus": edus or []}
        path = f"{SEND}/{txn_id or self.txn}"
        if await_result:
            return signed_request(self, self.remote, "PUT", path, body)
        install_remote(self, self.remote)
        auth = self.remote.auth_header("PUT", path, body, self.hs.hostname)
        return self.make_request("PUT", path, body, headers={"Authorization": auth},
                                 await_result=False)

    def event_id_of(self, pdu: dict[str, Any]) -> str:
        version = self.get_success(
            self.hs.get_datastores().events.get_room_version(self.room_id))
        return Event.from_pdu(pdu, version).event_id

    def is_stored(self, pdu: dict[str, Any]) -> bool:
        event = self.get_success(
            self.hs.get_datastores().events.get_event(self.event_id_of(pdu)))
        return event is not None
