"""Gaps before a received PDU are filled with bounded work: one `/get_missing_events`,
then the state after one missing prev event (`/state_ids`, plus `/event` for the few we
lack or one `/state`), within a per-origin budget. What a peer's state answer carries is
checked like a received PDU, and one event delivered twice at once is stored once."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from federation.client import FederationRequestError
from federation.event_handler import GAP_BUDGET_WINDOW_MS, GAP_FILLS_PER_ORIGIN
from tests.federation.fed_helpers import FEDERATION, RemoteServer, install_remote
from tests.federation.test_hostile_auth_events import RITA, HostileBase

GME = f"{FEDERATION}/get_missing_events/"


class GapBoundsTestCase(HostileBase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        super().prepare(reactor, hs)
        self.fed.routes[("remote.test", "POST", f"{GME}{self.room_id}")] = \
            lambda query, body: {"events": []}

    def unseen(self, body: str) -> dict[str, Any]:
        """A message of Rita's on the current extremities that we never receive."""
        return self.message(body)

    def serve_events(self, pdus: list[dict[str, Any]]) -> None:
        for pdu in pdus:
            self.fed.routes[("remote.test", "GET", f"{FEDERATION}/event/{self.event_id(pdu)}")] \
                = lambda query, body, pdu=pdu: {"pdus": [pdu]}

    def serve_state_ids(self, state_ids: list[str], chain_ids: list[str] | None = None
                        ) -> None:
        self.fed.routes[("remote.test", "GET", f"{FEDERATION}/state_ids/{self.room_id}")] = \
            lambda query, body: {"pdu_ids": state_ids, "auth_chain_ids": chain_ids or []}

    def state_fetches(self) -> list[str]:
        return [p for p in self.fetches()
                if p.startswith((f"{FEDERATION}/state_ids/", f"{FEDERATION}/state/"))]

    def test_one_missing_events_and_one_state_fetch_per_gap(self) -> None:
        """Three unknown prevs: one get_missing_events, one /state_ids, one /event (the
        prev itself); the event joins the room."""
        unseen = [self.unseen(f"unseen {i}") for i in range(3)]
        depth = max(p["depth"] for p in unseen) + 1
        event = self.pdu("m.room.message", {"msgtype": "m.text", "body": "after"},
                         prev=[self.event_id(p) for p in unseen], depth=depth)
        self.serve_state_ids(list(self.current().values()))
        self.serve_events(unseen)
        self.assertEqual(self.send_txn([event])["pdus"][self.event_id(event)], {})
        fetches = self.fetches()
        self.assertEqual(fetches[:2], [f"{GME}{self.room_id}",
                                       f"{FEDERATION}/state_ids/{self.room_id}"])
        self.assertEqual(len(fetches), 3, fetches)
        self.assertIn(fetches[2], [f"{FEDERATION}/event/{self.event_id(p)}" for p in unseen])
        self.assertIn(self.event_id(event), self.timeline())

    def test_many_unknown_state_events_come_in_one_state_request(self) -> None:
        """When /state_ids names more unknown events than we fetch one by one, one /state
        brings them (plus /event for the prev event)."""
        prev = self.unseen("unseen")
        extra = [self.pdu("org.test.thing", {"n": i}, f"k{i}", prev=[]) for i in range(12)]
        current = self.current()
        self.serve_state_ids([*current.values(), *[self.event_id(p) for p in extra]])
        state_pdus = self.get_success(self.stores.events.get_events(current.values()))
        self.fed.routes[("remote.test", "GET", f"{FEDERATION}/state/{self.room_id}")] = \
            lambda query, body: {"pdus": [*[dict(e.pdu_json) for e in state_pdus.values()],
                                          *extra], "auth_chain": []}
        self.serve_events([prev])
        event = self.pdu("m.room.message", {"msgtype": "m.text", "body": "after"},
                         prev=[self.event_id(prev)], depth=prev["depth"] + 1)
        self.send_txn([event])
        self.assertEqual(self.fetches(), [
            f"{GME}{self.room_id}", f"{FEDERATION}/state_ids/{self.room_id}",
            f"{FEDERATION}/state/{self.room_id}", f"{FEDERATION}/event/{self.event_id(prev)}"])
        self.assertIn(self.event_id(event), self.timeline())

    def test_forged_power_levels_in_a_state_answer_are_not_accepted(self) -> None:
        """A power levels event in a peer's state answer citing an unknown event or
        another room's power levels is not stored as accepted and changes nothing."""
        power = self.current()[("m.room.power_levels", "")]
        secret_power = self.current(self.secret_room)[("m.room.power_levels", "")]
        others = [a for a in self.selected("m.room.power_levels", "") if a != power]
        for label, auth in (("unknown", [*others, "$nope"]),
                            ("other room", [*others, secret_power])):
            with self.subTest(case=label):
                self.fed.calls.clear()
                forged = self.pdu("m.room.power_levels", {"users": {RITA: 100}}, "",
                                  auth=auth, prev=[])
                prev = self.unseen(f"unseen {label}")
                state = {**self.current(), ("m.room.power_levels", ""): self.event_id(forged)}
                self.serve_state_ids(list(state.values()))
                self.serve_events([prev, forged])
                event = self.pdu("m.room.message", {"msgtype": "m.text", "body": label},
                                 prev=[self.event_id(prev)], depth=prev["depth"] + 1)
                self.send_txn([event])
                self.assertIn(f"{FEDERATION}/event/{self.event_id(forged)}", self.fetches())
                stored = self.get_success(self.stores.events.get_event(self.event_id(forged)))
                self.assertTrue(stored is None or stored.rejected_reason is not None)
                self.assertEqual(self.current()[("m.room.power_levels", "")], power)
                self.assertNotIn(self.event_id(forged), self.served_ids(self.latest()))

    def test_two_hundred_unknown_prevs_are_bounded(self) -> None:
        """200 unknown prev events never cause more than one get_missing_events and one
        state fetch (fed-transport's PDU limits refuse the PDU before any)."""
        event = self.pdu("m.room.message", {"msgtype": "m.text", "body": "wide"},
                         prev=[f"$unknown{i}" for i in range(200)])
        self.send_txn([event])
        fetches = self.fetches()
        self.assertLessEqual(len(fetches), 2, fetches)
        self.assertLessEqual(len(self.state_fetches()), 1)
        self.assertNotIn(self.event_id(event), self.timeline())

    def test_gap_budget_per_origin(self) -> None:
        """An origin gets GAP_FILLS_PER_ORIGIN gap fills a minute; more gaps make us fetch
        nothing until the window has moved on."""
        def gap_event(n: int) -> dict[str, Any]:
            return self.pdu("m.room.message", {"msgtype": "m.text", "body": f"gap {n}"},
                            prev=[f"$missing{n}"])

        for n in range(GAP_FILLS_PER_ORIGIN):
            self.send_txn([gap_event(n)])
        self.assertEqual(self.fetches().count(f"{GME}{self.room_id}"), GAP_FILLS_PER_ORIGIN)
        before = len(self.fetches())
        self.send_txn([gap_event(100)])
        self.assertEqual(len(self.fetches()), before)
        self.reactor.advance(GAP_BUDGET_WINDOW_MS / 1000 + 1)
        self.send_txn([gap_event(101)])
        self.assertEqual(self.fetches()[before], f"{GME}{self.room_id}")

    def test_same_event_delivered_twice_at_once_is_stored_once(self) -> None:
        """Two transactions (two origins) carrying one PDU, both waiting on the gap fill:
        the event is stored once and neither answer fails."""
        relay = RemoteServer("relay.test")
        install_remote(self, relay)
        gates: list[defer.Deferred[None]] = []

        async def request(destination: str, method: str, path: str,
                          query: dict[str, Any] | None = None, content: Any = None,
                          timeout: float = 60.0, sign: bool = True) -> Any:
            if path.startswith(GME):
                gate: defer.Deferred[None] = defer.Deferred()
                gates.append(gate)
                await gate
            raise FederationRequestError(destination, f"{method} {path}: unreachable")

        self.hs.get_federation_client().request = request
        event = self.pdu("m.room.message", {"msgtype": "m.text", "body": "twice"},
                         prev=["$missing"])
        channels = []
        for n, remote in enumerate((self.remote, relay)):
            path = f"{FEDERATION}/send/dup{n}"
            body = {"origin": remote.name, "origin_server_ts": 0, "pdus": [event],
                    "edus": []}
            auth = remote.auth_header("PUT", path, body, self.hs.hostname)
            channels.append(self.make_request("PUT", path, body,
                                              headers={"Authorization": auth},
                                              await_result=False))
        self.assertEqual(len(gates), 2)
        for gate in gates:
            gate.callback(None)
        self.reactor.advance(0)
        for channel in channels:
            self.assertEqual(channel.code, 200, channel.result)
            self.assertEqual(channel.json_body["pdus"][self.event_id(event)], {})
        rows = self.get_success(self.stores.db.execute(
            "count", "SELECT COUNT(*) FROM events WHERE event_id = ?", self.event_id(event)))
        self.assertEqual(rows[0][0], 1)
