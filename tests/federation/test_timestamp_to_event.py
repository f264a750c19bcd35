"""timestamp_to_event through a remote: a room held by a fake remote server whose history
before our join we lack is asked over federation; and our federation endpoint."""

from __future__ import annotations

from typing import Any

from homeserver.event_hashing import compute_event_id
from tests.api.room_helpers import RoomHelpers
from tests.federation import test_backfill
from tests.federation.fed_helpers import (
    RemoteServer,
    install_remote,
    join_remote_user,
    signed_request,
)
from tests.federation.test_backfill import q
from tests.federation.test_membership import FakeFederation
from tests.harness import HomeserverTestCase

F1 = "/_matrix/federation/v1"
C1 = "/_matrix/client/v1"
REMOTE = "remote.example"


class RemoteLookupTestCase(HomeserverTestCase):
    # The backfill tests' remote room and join (the methods, not their tests).
    prepare = test_backfill.BackfillTestCase.prepare
    serve = test_backfill.BackfillTestCase.serve
    ok = test_backfill.BackfillTestCase.ok

    def lookup(self, ts: int, direction: str) -> Any:
        return self.make_request(
            "GET", f"{C1}/rooms/{q(self.rid)}/timestamp_to_event?ts={ts}&dir={direction}",
            access_token=self.token)

    def old_message(self) -> tuple[str, dict[str, Any]]:
        """The remote's second message from before our join."""
        messages = [(compute_event_id(p, self.room.version), p)
                    for p in self.room.events.values() if p["type"] == "m.room.message"]
        return messages[1]

    def route_remote(self, event_id: str, pdu: dict[str, Any], claimed_ts: int) -> None:
        self.fed.routes[(REMOTE, "GET", f"{F1}/timestamp_to_event/{q(self.rid)}")] = \
            lambda query, content: {"event_id": event_id, "origin_server_ts": claimed_ts}
        self.fed.routes[(REMOTE, "GET", f"{F1}/event/{event_id}")] = \
            lambda query, content: {"origin": REMOTE, "origin_server_ts": 0, "pdus": [pdu]}

    def test_asks_remote_before_our_history(self) -> None:
        """Before the history we hold, the remote's answer is fetched, checked and used."""
        self.serve()
        event_id, pdu = self.old_message()
        self.route_remote(event_id, pdu, pdu["origin_server_ts"])
        channel = self.lookup(pdu["origin_server_ts"], "b")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"event_id": event_id,
                                             "origin_server_ts": pdu["origin_server_ts"]})
        asked = [c for c in self.fed.calls if "/timestamp_to_event/" in c[2]]
        self.assertEqual(asked[0][3], {"ts": str(pdu["origin_server_ts"]), "dir": "b"})

    def test_remote_answer_on_the_wrong_side_is_ignored(self) -> None:
        """A remote event after the asked time (dir b) is not an answer: 404."""
        self.serve()
        event_id, pdu = self.old_message()
        self.route_remote(event_id, pdu, 0)
        self.assert_error(self.lookup(pdu["origin_server_ts"] - 1, "b"), 404, "M_NOT_FOUND")

    def test_unreachable_remote_is_404(self) -> None:
        """Nothing here and no server answering: 404 M_NOT_FOUND, never a 500."""
        self.serve()
        self.assert_error(self.lookup(5, "b"), 404, "M_NOT_FOUND")


class FederationEndpointTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.remote = RemoteServer(REMOTE)
        install_remote(self, self.remote)
        self.fed = FakeFederation()
        hs.get_federation_client().request = self.fed.request
        self.register_user("alice")
        self.token = self.login("alice")
        self.room_id = self.create_room(self.token, {"preset": "public_chat"})

    def fed_lookup(self, query: str, remote: RemoteServer | None = None) -> Any:
        return signed_request(self, remote or self.remote, "GET",
                              f"{F1}/timestamp_to_event/{q(self.room_id)}?{query}")

    def test_served_to_a_server_in_the_room(self) -> None:
        """A server with a member in the room gets our closest event."""
        join_remote_user(self, self.room_id, f"@rita:{REMOTE}")
        self.reactor.advance(10)
        event_id = self.send_message(self.token, self.room_id)
        event = self.get_success(self.hs.get_datastores().events.get_event(event_id))
        channel = self.fed_lookup(f"ts={event.origin_server_ts - 1}&dir=f")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"event_id": event_id,
                                             "origin_server_ts": event.origin_server_ts})
        self.assert_error(self.fed_lookup(f"ts={event.origin_server_ts + 1}&dir=f"), 404,
                          "M_NOT_FOUND")

    def test_refusals(self) -> None:
        """A server not in the room is 403; bad `dir`/`ts` are 400; unknown rooms 404."""
        self.assert_error(self.fed_lookup("ts=0&dir=f"), 403, "M_FORBIDDEN")
        join_remote_user(self, self.room_id, f"@rita:{REMOTE}")
        self.assert_error(self.fed_lookup("ts=0&dir=x"), 400, "M_INVALID_PARAM")
        self.assert_error(self.fed_lookup("dir=f"), 400, "M_MISSING_PARAM")
        self.assert_error(self.fed_lookup("ts=abc&dir=f"), 400, "M_INVALID_PARAM")
        channel = signed_request(self, self.remote, "GET",
                                 f"{F1}/timestamp_to_event/{q('!nope:test')}?ts=0&dir=f")
        self.assert_error(channel, 404, "M_NOT_FOUND")
        # Never asks further itself.
        self.assertEqual(self.fed.calls, [])


