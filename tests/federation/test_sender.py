"""The outbound federation sender: transactions per destination, batching, backoff."""

from __future__ import annotations

import logging
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from federation.client import FederationRequestError
from federation.sender import (
    MAX_PENDING_PDUS,
    MAX_RETRY_INTERVAL_MS,
    FederationSender,
)
from homeserver.event_hashing import compute_event_id
from homeserver.events import Event
from homeserver.room_versions import DEFAULT_ROOM_VERSION, get_room_version
from homeserver.server import HomeServer
from storage.stores.destinations import DestinationRetry
from tests.api.room_helpers import RoomHelpers
from tests.harness import HomeserverTestCase

SEND_PREFIX = "/_matrix/federation/v1/send/"


@attrs.define
class SentTxn:
    destination: str
    path: str
    body: dict[str, Any]
    deferred: defer.Deferred[Any]

    @property
    def txn_id(self) -> str:
        return self.path.removeprefix(SEND_PREFIX)

    @property
    def pdu_ids(self) -> list[str]:
        """The event IDs of the PDUs (v3+ formats: computed, as the receiver does)."""
        default = get_room_version(DEFAULT_ROOM_VERSION)
        assert default is not None
        return [p["event_id"] if "event_id" in p else compute_event_id(p, default)
                for p in self.body["pdus"]]


class FakeFederationClient:
    """Records transactions. Per destination: answer 200 (default), hold the answer until
    the test releases it (`"hold"`), fail with an HTTP code, or fail to connect (`None`)."""

    def __init__(self) -> None:
        self.sent: list[SentTxn] = []
        self.behaviour: dict[str, Any] = {}
        self.response: dict[str, Any] = {"pdus": {}}

    async def put_json(self, destination: str, path: str, content: Any,
                       timeout: float = 60.0) -> Any:
        d: defer.Deferred[Any] = defer.Deferred()
        self.sent.append(SentTxn(destination, path, content, d))
        how = self.behaviour.get(destination, 200)
        if how == 200:
            d.callback(self.response)
        elif how is None:
            d.errback(FederationRequestError(destination, "connection refused"))
        elif how != "hold":
            d.errback(FederationRequestError(destination, f"answered {how}", how,
                                             {"errcode": "M_UNKNOWN"}))
        return await d

    def to(self, destination: str) -> list[SentTxn]:
        return [t for t in self.sent if t.destination == destination]


def make_event(n: int) -> Event:
    """A small v1-format PDU (the sender only forwards its JSON)."""
    version = get_room_version("1")
    assert version is not None
    pdu = {"event_id": f"$e{n}:test", "room_id": "!r:test", "type": "m.room.message",
           "sender": "@u:test", "content": {"body": str(n)}, "depth": n,
           "origin_server_ts": 1, "prev_events": [], "auth_events": [], "origin": "test",
           "unsigned": {"transaction_id": "secret"}}
    return Event.from_pdu(pdu, version)


class SenderTestCase(HomeserverTestCase):
    def prepare(self, reactor: MemoryReactorClock, hs: HomeServer) -> None:
        self.client = FakeFederationClient()
        hs._parts["federation_client"] = self.client
        self.assertNotIn("federation_sender", hs._parts)
        self.sender = hs.get_federation_sender()

    def retry_row(self, destination: str) -> DestinationRetry | None:
        row: DestinationRetry | None = self.get_success(
            self.hs.get_datastores().destinations.get_destination_retry(destination))
        return row

    def advance(self, seconds: float) -> None:
        self.reactor.advance(seconds)
        self.pump()


class TransactionTests(SenderTestCase):
    def test_transaction_shape(self) -> None:
        """A queued PDU goes out at once in a PUT /send/{txnId} with origin and timestamp."""
        self.sender.send_pdu(make_event(1), ["remote.example", "test"])
        self.pump()
        self.assertEqual(len(self.client.sent), 1)
        txn = self.client.sent[0]
        self.assertEqual(txn.destination, "remote.example")
        self.assertTrue(txn.path.startswith(SEND_PREFIX))
        self.assertEqual(txn.body["origin"], "test")
        self.assertEqual(txn.body["origin_server_ts"], self.hs.get_clock().time_msec())
        self.assertEqual(txn.body["edus"], [])
        expected = dict(make_event(1).pdu_json)
        del expected["unsigned"]
        self.assertEqual(txn.body["pdus"], [expected])

    def test_own_server_is_never_a_destination(self) -> None:
        """Our own name among the destinations sends nothing to ourselves."""
        self.sender.send_pdu(make_event(1), ["test"])
        self.sender.send_edu("test", "m.typing", {})
        self.pump()
        self.assertEqual(self.client.sent, [])

    def test_one_transaction_in_flight_then_batches(self) -> None:
        """What is queued during a transaction goes in the next ones: ≤ 50 PDUs and
        ≤ 100 EDUs each, in order, with increasing transaction IDs."""
        self.client.behaviour["remote.example"] = "hold"
        self.sender.send_pdu(make_event(0), ["remote.example"])
        self.pump()
        for n in range(1, 121):
            self.sender.send_pdu(make_event(n), ["remote.example"])
        for n in range(250):
            self.sender.send_edu("remote.example", "m.x", {"n": n})
        self.pump()
        self.assertEqual(len(self.client.sent), 1, "only one transaction in flight")
        self.client.behaviour["remote.example"] = 200
        self.client.sent[0].deferred.callback({})
        self.pump()
        sent = self.client.sent
        self.assertEqual([len(t.body["pdus"]) for t in sent], [1, 50, 50, 20])
        self.assertEqual([len(t.body["edus"]) for t in sent], [0, 100, 100, 50])
        all_ids = [i for t in sent for i in t.pdu_ids]
        self.assertEqual(all_ids, [f"$e{n}:test" for n in range(121)])
        self.assertEqual([e["content"]["n"] for t in sent for e in t.body["edus"]],
                         list(range(250)))
        self.assertEqual(sent[1].body["edus"][0]["edu_type"], "m.x")
        txn_ids = [int(t.txn_id) for t in sent]
        self.assertEqual(txn_ids, sorted(set(txn_ids)))

    def test_txn_ids_increase_across_instances(self) -> None:
        """A new sender (a restart) never reuses a transaction ID of the previous one."""
        for n in range(3):
            self.sender.send_pdu(make_event(n), ["remote.example"])
        self.pump()
        self.reactor.advance(0.001)  # a restart takes at least a millisecond
        other = FederationSender(self.hs)
        other.send_pdu(make_event(9), ["remote.example"])
        self.pump()
        ids = [int(t.txn_id) for t in self.client.sent]
        self.assertEqual(len(ids), 4)
        self.assertEqual(ids, sorted(set(ids)))

    def test_edu_key_dedups(self) -> None:
        """A newer EDU with the same type and key replaces the queued one; keyless EDUs and
        other keys are all kept."""
        self.client.behaviour["remote.example"] = "hold"
        self.sender.send_edu("remote.example", "m.first", {})
        self.pump()
        self.sender.send_edu("remote.example", "m.typing", {"typing": True}, key="!a")
        self.sender.send_edu("remote.example", "m.typing", {"typing": True}, key="!b")
        self.sender.send_edu("remote.example", "m.presence", {"p": 1})
        self.sender.send_edu("remote.example", "m.typing", {"typing": False}, key="!a")
        self.sender.send_edu("remote.example", "m.presence", {"p": 2})
        self.client.behaviour["remote.example"] = 200
        self.client.sent[0].deferred.callback({})
        self.pump()
        edus = self.client.sent[1].body["edus"]
        self.assertEqual(edus, [
            {"edu_type": "m.typing", "content": {"typing": True}},
            {"edu_type": "m.presence", "content": {"p": 1}},
            {"edu_type": "m.typing", "content": {"typing": False}},
            {"edu_type": "m.presence", "content": {"p": 2}},
        ])

    def test_per_pdu_errors_are_logged(self) -> None:
        """PDU errors in the answer are logged, and nothing is resent."""
        self.client.response = {"pdus": {"$e1:test": {"error": "bad signature"}}}
        with self.assertLogs("federation.sender", logging.WARNING) as logs:
            self.sender.send_pdu(make_event(1), ["remote.example"])
            self.pump()
        self.assertIn("bad signature", "\n".join(logs.output))
        self.advance(3600)
        self.assertEqual(len(self.client.sent), 1)


class BackoffTests(SenderTestCase):
    def test_5xx_backs_off_doubling_and_keeps_pdus(self) -> None:
        """A 5xx answer backs off 5 s, 10 s, 20 s…; the PDUs are resent, in order, with
        those queued since; success resets the backoff."""
        dest = "dead.example"
        self.client.behaviour[dest] = 502
        start = self.hs.get_clock().time_msec()
        self.sender.send_pdu(make_event(1), [dest])
        self.pump()
        self.assertEqual(len(self.client.to(dest)), 1)
        self.assertEqual(self.retry_row(dest), DestinationRetry(dest, start, 5000, start))
        self.sender.send_pdu(make_event(2), [dest])
        self.pump()
        self.assertEqual(len(self.client.to(dest)), 1, "queued during backoff, not sent")
        self.advance(4.9)
        self.assertEqual(len(self.client.to(dest)), 1)
        self.advance(0.1)
        self.assertEqual(len(self.client.to(dest)), 2)
        self.assertEqual(self.client.to(dest)[1].pdu_ids, ["$e1:test", "$e2:test"])
        row = self.retry_row(dest)
        assert row is not None
        self.assertEqual((row.retry_interval, row.failure_ts), (10_000, start))
        self.advance(9.9)
        self.assertEqual(len(self.client.to(dest)), 2)
        self.client.behaviour[dest] = 200
        self.advance(0.1)
        self.assertEqual(len(self.client.to(dest)), 3)
        self.assertEqual(self.client.to(dest)[2].pdu_ids, ["$e1:test", "$e2:test"])
        self.assertEqual(self.retry_row(dest), DestinationRetry(dest, 0, 0, None))
        self.sender.send_pdu(make_event(3), [dest])
        self.pump()
        self.assertEqual(len(self.client.to(dest)), 4, "healthy again: sent at once")

    def test_connection_error_and_429_retry(self) -> None:
        """A connection failure and a 429 are retried after the backoff."""
        for dest, how in (("down.example", None), ("busy.example", 429)):
            self.client.behaviour[dest] = how
            self.sender.send_pdu(make_event(1), [dest])
        self.pump()
        self.advance(5)
        for dest in ("down.example", "busy.example"):
            self.assertEqual([t.pdu_ids for t in self.client.to(dest)],
                             [["$e1:test"], ["$e1:test"]])

    def test_backoff_is_capped_at_an_hour(self) -> None:
        """The interval doubles up to one hour and stays there."""
        dest = "dead.example"
        self.client.behaviour[dest] = 500
        self.sender.send_pdu(make_event(1), [dest])
        self.pump()
        for _ in range(12):
            self.advance(MAX_RETRY_INTERVAL_MS / 1000)
        row = self.retry_row(dest)
        assert row is not None
        self.assertEqual(row.retry_interval, MAX_RETRY_INTERVAL_MS)
        count = len(self.client.to(dest))
        self.advance(MAX_RETRY_INTERVAL_MS / 1000 - 1)
        self.assertEqual(len(self.client.to(dest)), count)
        self.advance(1)
        self.assertEqual(len(self.client.to(dest)), count + 1)

    def test_backoff_survives_a_restart(self) -> None:
        """A new sender instance reads the stored backoff and waits it out."""
        dest = "dead.example"
        self.client.behaviour[dest] = 500
        self.sender.send_pdu(make_event(1), [dest])
        self.pump()
        self.advance(5)  # second failure: 10 s from now
        self.assertEqual(len(self.client.to(dest)), 2)
        self.sender.stop()
        restarted = FederationSender(self.hs)
        self.client.behaviour[dest] = 200
        self.advance(3)
        restarted.send_pdu(make_event(2), [dest])
        self.pump()
        self.assertEqual(len(self.client.to(dest)), 2, "still backed off after restart")
        self.advance(6.9)
        self.assertEqual(len(self.client.to(dest)), 2)
        self.advance(0.1)
        self.assertEqual(len(self.client.to(dest)), 3)
        self.assertEqual(self.client.to(dest)[2].pdu_ids, ["$e2:test"])
        self.assertEqual(self.retry_row(dest), DestinationRetry(dest, 0, 0, None))

    def test_4xx_drops_the_transaction(self) -> None:
        """A 4xx answer (not 429) drops that transaction without backing off."""
        dest = "strict.example"
        self.client.behaviour[dest] = 400
        with self.assertLogs("federation.sender", logging.WARNING):
            self.sender.send_pdu(make_event(1), [dest])
            self.pump()
        self.advance(3600)
        self.assertEqual(len(self.client.to(dest)), 1, "not retried")
        self.assertIsNone(self.retry_row(dest))
        self.client.behaviour[dest] = 200
        self.sender.send_pdu(make_event(2), [dest])
        self.pump()
        self.assertEqual(self.client.to(dest)[1].pdu_ids, ["$e2:test"])

    def test_pending_pdus_are_bounded(self) -> None:
        """A backed-off destination keeps only the newest PDUs."""
        dest = "dead.example"
        self.client.behaviour[dest] = 500
        self.sender.send_pdu(make_event(0), [dest])
        self.pump()
        with self.assertLogs("federation.sender", logging.WARNING):
            for n in range(1, MAX_PENDING_PDUS + 100):
                self.sender.send_pdu(make_event(n), [dest])
        self.client.behaviour[dest] = 200
        self.advance(5)
        resent = [i for t in self.client.to(dest)[1:] for i in t.pdu_ids]
        self.assertEqual(len(resent), MAX_PENDING_PDUS)
        self.assertEqual(resent[0], "$e100:test")
        self.assertEqual(resent[-1], f"$e{MAX_PENDING_PDUS + 99}:test")

    def test_dropped_pdus_are_caught_up_with_the_rooms_newest_events(self) -> None:
        """When PDUs of a room had to be dropped, the room's forward extremities follow
        once the destination is back (the server then fetches the gap itself)."""
        user = self.register_user("catcher")
        token = self.login("catcher")
        channel = self.make_request("POST", "/_matrix/client/v3/createRoom", {},
                                    access_token=token)
        room_id = channel.json_body["room_id"]
        newest = self.get_success(
            self.hs.get_datastores().events.get_forward_extremities(room_id))[0][0]
        version = get_room_version("1")
        assert version is not None
        dest = "dead.example"
        self.client.behaviour[dest] = 500
        with self.assertLogs("federation.sender", logging.WARNING):
            for n in range(MAX_PENDING_PDUS + 5):
                self.sender.send_pdu(Event.from_pdu({
                    "event_id": f"$c{n}:test", "room_id": room_id, "type": "m.room.message",
                    "sender": user, "content": {}, "depth": n, "origin_server_ts": 1,
                    "prev_events": [], "auth_events": [], "origin": "test"}, version), [dest])
                self.pump()
        self.client.behaviour[dest] = 200
        self.advance(3700)
        resent = [i for t in self.client.to(dest)[1:] for i in t.pdu_ids]
        self.assertEqual(resent[-1], newest)
        self.assertNotIn("$c0:test", resent)

    def test_failed_edus_are_replaced_by_newer_ones(self) -> None:
        """An EDU that failed to go is dropped when a newer one with its key is queued."""
        dest = "dead.example"
        self.client.behaviour[dest] = 503
        self.sender.send_edu(dest, "m.typing", {"typing": True}, key="!a")
        self.pump()
        self.sender.send_edu(dest, "m.typing", {"typing": False}, key="!a")
        self.client.behaviour[dest] = 200
        self.advance(5)
        self.assertEqual(self.client.to(dest)[1].body["edus"],
                         [{"edu_type": "m.typing", "content": {"typing": False}}])

    def test_other_destinations_are_not_blocked(self) -> None:
        """A destination that hangs or fails does not delay the others."""
        self.client.behaviour["slow.example"] = "hold"
        self.client.behaviour["dead.example"] = 500
        for n in range(3):
            self.sender.send_pdu(make_event(n),
                                 ["slow.example", "dead.example", "ok.example"])
            self.pump()
        self.assertEqual(len(self.client.to("slow.example")), 1)
        self.assertEqual(len(self.client.to("dead.example")), 1)
        self.assertEqual([t.pdu_ids for t in self.client.to("ok.example")],
                         [["$e0:test"], ["$e1:test"], ["$e2:test"]])

    def test_stop_cancels_retries(self) -> None:
        """After stop, no retry fires."""
        dest = "dead.example"
        self.client.behaviour[dest] = 500
        self.sender.send_pdu(make_event(1), [dest])
        self.pump()
        self.sender.stop()
        self.advance(60)
        self.assertEqual(len(self.client.to(dest)), 1)


class RoomDestinationTests(SenderTestCase, RoomHelpers):
    def prepare(self, reactor: MemoryReactorClock, hs: HomeServer) -> None:
        super().prepare(reactor, hs)
        self.alice = self.register_user("alice")
        self.token = self.login("alice")
        self.room = self.create_room(self.token, {"preset": "public_chat"})
        # Remote users "join" through the local pipeline (a shortcut for tests: remote
        # joins over federation are not needed to fill the room's current state).
        for user in ("@bob:one.example", "@carol:two.example", "@dan:two.example",
                     "@erin:gone.example"):
            self.join(user, self.room)
        self.leave("@erin:gone.example", self.room)

        async def no_countersign(event: Any, state: Any) -> Any:
            # (the invitee's server countersigning: tests/federation/test_membership.py)
            return event

        hs.get_federation_membership_handler().send_invite = no_countersign  # type: ignore[method-assign]
        self.invite_id = self.invite(self.alice, self.room, "@frank:invited.example")
        self.pump()

    def test_destinations_for_room(self) -> None:
        """Servers of joined members only, without our own."""
        self.assertEqual(self.get_success(self.sender.destinations_for_room(self.room)),
                         {"one.example", "two.example"})
        self.assertEqual(self.get_success(self.sender.destinations_for_room("!no:test")),
                         set())

    def test_local_events_are_sent_to_the_room(self) -> None:
        """A local event goes to every joined remote server once; remote users' events
        are not forwarded."""
        # Of the set-up, only alice's invite is a local event sent while servers had
        # joined; the remote users' own joins and leave are not ours to send.
        self.assertEqual(sorted((t.destination, *t.pdu_ids) for t in self.client.sent),
                         [("one.example", self.invite_id), ("two.example", self.invite_id)])
        self.client.sent.clear()
        event_id = self.send_message(self.token, self.room, "hello")
        self.pump()
        self.assertEqual(sorted(t.destination for t in self.client.sent),
                         ["one.example", "two.example"])
        for txn in self.client.sent:
            self.assertEqual(txn.pdu_ids, [event_id])

    def test_events_keep_their_order(self) -> None:
        """Events sent while a transaction is in flight follow in persist order."""
        self.client.sent.clear()
        self.client.behaviour["one.example"] = "hold"
        first = self.send_message(self.token, self.room, "1")
        later = [self.send_message(self.token, self.room, str(n)) for n in range(2, 5)]
        self.pump()
        self.assertEqual(len(self.client.to("one.example")), 1)
        self.client.behaviour["one.example"] = 200
        self.client.to("one.example")[0].deferred.callback({})
        self.pump()
        sent = [i for t in self.client.to("one.example") for i in t.pdu_ids]
        self.assertEqual(sent, [first, *later])

    def test_kicked_server_hears_of_it(self) -> None:
        """Kicking a remote user also sends the kick to that user's server."""
        self.client.sent.clear()
        kick = self.set_membership(self.alice, self.room, "@bob:one.example", "leave")
        self.pump()
        self.assertEqual(sorted(t.destination for t in self.client.sent),
                         ["one.example", "two.example"])
        self.assertTrue(all(t.pdu_ids == [kick] for t in self.client.sent))
        self.client.sent.clear()
        self.send_message(self.token, self.room, "after")
        self.pump()
        self.assertEqual([t.destination for t in self.client.sent], ["two.example"])

    def edus_to(self, destination: str) -> list[dict[str, Any]]:
        return [e for t in self.client.to(destination) for e in t.body["edus"]]

    def test_typing_goes_to_the_room(self) -> None:
        """Typing start, stop and expiry of a local user are sent as m.typing EDUs."""
        self.client.sent.clear()
        path = f"/_matrix/client/v3/rooms/{self.room}/typing/{self.alice}"
        channel = self.make_request("PUT", path, {"typing": True, "timeout": 10_000},
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.pump()
        typing = {"edu_type": "m.typing",
                  "content": {"room_id": self.room, "user_id": self.alice, "typing": True}}
        self.assertEqual(self.edus_to("one.example"), [typing])
        self.assertEqual(self.edus_to("two.example"), [typing])
        self.assertEqual(self.edus_to("invited.example"), [])
        self.advance(10)  # expiry
        stopped = {"edu_type": "m.typing",
                   "content": {"room_id": self.room, "user_id": self.alice, "typing": False}}
        self.assertEqual(self.edus_to("one.example"), [typing, stopped])

    def test_typing_edus_dedup_while_in_flight(self) -> None:
        """Typing on then off while a transaction is in flight sends only 'off' next."""
        self.client.sent.clear()
        self.client.behaviour["one.example"] = "hold"
        self.send_message(self.token, self.room, "busy")
        self.pump()
        path = f"/_matrix/client/v3/rooms/{self.room}/typing/{self.alice}"
        for body in ({"typing": True, "timeout": 10_000}, {"typing": False}):
            channel = self.make_request("PUT", path, body, access_token=self.token)
            self.assertEqual(channel.code, 200, channel.result)
        self.pump()
        self.client.behaviour["one.example"] = 200
        self.client.to("one.example")[0].deferred.callback({})
        self.pump()
        self.assertEqual([e["content"]["typing"] for e in self.edus_to("one.example")],
                         [False])

    def test_public_receipts_go_to_the_room(self) -> None:
        """An m.read receipt is sent as an m.receipt EDU; a private one is not."""
        event_id = self.send_message(self.token, self.room, "read me")
        self.pump()
        self.client.sent.clear()
        base = f"/_matrix/client/v3/rooms/{self.room}/receipt"
        channel = self.make_request("POST", f"{base}/m.read.private/{event_id}", {},
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.pump()
        self.assertEqual(self.client.sent, [])
        channel = self.make_request("POST", f"{base}/m.read/{event_id}", {},
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.pump()
        expected = {"edu_type": "m.receipt", "content": {self.room: {"m.read": {
            self.alice: {"event_ids": [event_id],
                         "data": {"ts": self.hs.get_clock().time_msec()}}}}}}
        self.assertEqual(self.edus_to("one.example"), [expected])
        self.assertEqual(self.edus_to("two.example"), [expected])
