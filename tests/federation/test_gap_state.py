"""A PDU whose prev events cannot be fetched: the state after one of them is asked for
with `/state_ids` (and `/event` for what we lack, or one `/state` when that is much),
checked, and the event joins the room on top of it."""

from __future__ import annotations

from typing import Any

from homeserver.event_hashing import add_content_hash, sign_event
from homeserver.events import Event
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.federation.fed_helpers import RemoteServer, signed_request
from tests.federation.test_sender import FakeFederationClient
from tests.harness import HomeserverTestCase


class GapClient(FakeFederationClient):
    """Answers the fetches a gap causes, from `answers` (path -> JSON)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, Any] = {}
        self.asked: list[tuple[str, str, Any]] = []

    async def get_json(self, destination: str, path: str, query: Any = None,
                       timeout: float = 60.0) -> Any:
        self.asked.append((destination, path, query))
        return self.answers[path]

    async def post_json(self, destination: str, path: str, content: Any,
                        timeout: float = 60.0) -> Any:
        self.asked.append((destination, path, content))
        return {"events": []}  # nothing to fill the gap with


class GapStateTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.client = GapClient()
        hs._parts["federation_client"] = self.client
        self.remote = RemoteServer("remote.test")
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.rita = "@rita:remote.test"
        self.version = self.get_success(
            hs.get_datastores().events.get_room_version(self.room_id))
        self.send([self.build("m.room.member", {"membership": "join"}, self.rita)])

    def build(self, event_type: str, content: dict[str, Any], state_key: str | None = None,
              prev: list[str] | None = None, depth: int | None = None) -> dict[str, Any]:
        stores = self.hs.get_datastores()
        extremities = self.get_success(stores.events.get_forward_extremities(self.room_id))
        current = self.get_success(stores.state.get_current_state_ids(self.room_id))
        keys = [("m.room.power_levels", ""), ("m.room.member", self.rita)]
        if event_type == "m.room.member":
            keys.append(("m.room.join_rules", ""))
        if not self.version.room_id_from_create_event:
            keys.append(("m.room.create", ""))
        pdu: dict[str, Any] = {
            "room_id": self.room_id, "type": event_type, "sender": self.rita,
            "content": content, "origin_server_ts": self.hs.get_clock().time_msec(),
            "depth": depth or max(d for _, d in extremities) + 1,
            "prev_events": prev or [e for e, _ in extremities],
            "auth_events": [current[k] for k in keys if k in current],
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        return sign_event(add_content_hash(pdu), self.remote.name, self.remote.key,
                          self.version)

    def send(self, pdus: list[dict[str, Any]]) -> Any:
        self._n = getattr(self, "_n", 0) + 1
        channel = signed_request(self, self.remote, "PUT", f"/_matrix/federation/v1/send/t{self._n}",
                                 {"origin": "remote.test", "origin_server_ts": 0,
                                  "pdus": pdus, "edus": []})
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body

    def event_id(self, pdu: dict[str, Any]) -> str:
        return Event.from_pdu(pdu, self.version).event_id

    def test_gap_is_bridged_with_the_state_after_the_missing_prev(self) -> None:
        stores = self.hs.get_datastores()
        unseen = self.build("m.room.message", {"msgtype": "m.text", "body": "never sent"})
        unseen_id = self.event_id(unseen)
        depth = unseen["depth"] + 1
        event = self.build("m.room.message", {"msgtype": "m.text", "body": "after a gap"},
                           prev=[unseen_id], depth=depth)
        current = self.get_success(stores.state.get_current_state_ids(self.room_id))
        state_events = self.get_success(stores.events.get_events(current.values()))
        self.client.answers = {
            f"/_matrix/federation/v1/state_ids/{self.room_id}": {
                "pdu_ids": [e.event_id for e in state_events.values()],
                "auth_chain_ids": []},
            f"/_matrix/federation/v1/event/{unseen_id}": {"pdus": [unseen]},
        }
        answer = self.send([event])
        self.assertEqual(answer["pdus"], {self.event_id(event): {}})
        paths = [p for _, p, _ in self.client.asked]
        self.assertIn(f"/_matrix/federation/v1/get_missing_events/{self.room_id}", paths)
        self.assertIn(f"/_matrix/federation/v1/event/{unseen_id}", paths)
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=b",
                                    access_token=self.alice_token)
        bodies = [e["content"].get("body") for e in channel.json_body["chunk"]]
        self.assertEqual(bodies[0], "after a gap")
        self.assertNotIn("never sent", bodies)  # fetched for its state only: an outlier
        extremities = [e for e, _ in self.get_success(
            stores.events.get_forward_extremities(self.room_id))]
        self.assertIn(self.event_id(event), extremities)

    def test_unusable_state_answer_keeps_the_event_out_of_the_timeline(self) -> None:
        unseen = self.build("m.room.message", {"msgtype": "m.text", "body": "never sent"})
        unseen_id = self.event_id(unseen)
        event = self.build("m.room.message", {"msgtype": "m.text", "body": "orphan"},
                           prev=[unseen_id], depth=unseen["depth"] + 1)
        forged = dict(unseen, content={"msgtype": "m.text", "body": "changed"},
                      signatures={})
        self.client.answers = {
            f"/_matrix/federation/v1/state_ids/{self.room_id}": {"pdu_ids": [],
                                                                 "auth_chain_ids": []},
            f"/_matrix/federation/v1/event/{unseen_id}": {"pdus": [forged]},
        }
        self.send([event])
        channel = self.make_request("GET", f"{CLIENT}/rooms/{self.room_id}/messages?dir=b",
                                    access_token=self.alice_token)
        bodies = [e["content"].get("body") for e in channel.json_body["chunk"]]
        self.assertNotIn("orphan", bodies)
