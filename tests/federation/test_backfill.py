"""Backfill, in memory: Bob joins a room held by a fake remote server, then pages back
through `/messages` past his join; the history before it is fetched with `/backfill` (and
the state at its oldest events with `/state`), checked, and paged in order."""

from __future__ import annotations

import urllib.parse
from typing import Any

from homeserver.event_hashing import sign_event
from tests.federation.fed_helpers import RemoteServer, install_remote, signed_request
from tests.federation.test_membership import FakeFederation, RemoteRoom
from tests.harness import HomeserverTestCase

C = "/_matrix/client/v3"
F1 = "/_matrix/federation/v1"
F2 = "/_matrix/federation/v2"
REMOTE = "remote.example"
BOB = "@bob:test"


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class BackfillTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.remote = RemoteServer(REMOTE)
        install_remote(self, self.remote)
        self.fed = FakeFederation()
        hs.get_federation_client().request = self.fed.request
        self.register_user("bob")
        self.token = self.login("bob")
        self.room = RemoteRoom(self.remote)
        self.rid = self.room.room_id

    # -- the fake remote server --

    def serve(self, visibility: str = "shared", messages: int = 6,
              with_intruder: bool = False) -> list[str]:
        """History on the remote, Bob's join through it, and its /backfill and /state.
        Returns the bodies sent before the join, oldest first."""
        room = self.room
        room.add("m.room.history_visibility", "", {"history_visibility": visibility})
        bodies = []
        for i in range(messages):
            if with_intruder and i == messages // 2:
                # Not a member: fails the auth rules; kept out of the timeline.
                room.add("m.room.message", None, {"msgtype": "m.text", "body": "intruder"},
                         sender=f"@eve:{REMOTE}")
            bodies.append(f"old {i}")
            room.add("m.room.message", None, {"msgtype": "m.text", "body": bodies[-1]})

        def make_join(query: Any, content: Any) -> Any:
            return {"room_version": room.version.identifier,
                    "event": room.template("m.room.member", BOB, BOB, {"membership": "join"})}

        def send_join(query: Any, pdu: Any) -> Any:
            state = [room.events[e] for e in room.state.values()]
            signed = sign_event(pdu, REMOTE, self.remote.key, room.version)
            event_id = room.accept(signed)
            return {"event": signed, "state": state,
                    "auth_chain": room.auth_chain([*room.state.values(), event_id]),
                    "origin": REMOTE, "members_omitted": False}

        def backfill(query: Any, content: Any) -> Any:
            top = max(room.events[v]["depth"] for v in query["v"])
            older = sorted((e for e in room.events.values() if e["depth"] <= top),
                           key=lambda e: -e["depth"])
            return {"origin": REMOTE, "origin_server_ts": 0,
                    "pdus": older[:int(query["limit"])]}

        def state(query: Any, content: Any) -> Any:
            depth = room.events[query["event_id"]]["depth"]
            before: dict[tuple[str, str], str] = {}
            for event_id, pdu in sorted(room.events.items(), key=lambda kv: kv[1]["depth"]):
                if pdu["depth"] < depth and "state_key" in pdu:
                    before[(pdu["type"], pdu["state_key"])] = event_id
            return {"pdus": [room.events[e] for e in before.values()],
                    "auth_chain": room.auth_chain(list(before.values()))}

        rid = q(self.rid)
        self.fed.routes[(REMOTE, "GET", f"{F1}/make_join/{rid}/{q(BOB)}")] = make_join
        self.fed.routes[(REMOTE, "PUT", f"{F2}/send_join/{rid}/*")] = send_join
        self.fed.routes[(REMOTE, "GET", f"{F1}/backfill/{rid}")] = backfill
        self.fed.routes[(REMOTE, "GET", f"{F1}/state/{rid}")] = state
        self.ok("POST", f"/join/{rid}")
        return bodies

    # -- helpers --

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        channel = self.make_request(method, C + path,
                                    body if body is not None or method == "GET" else {},
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body

    def page_back(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Every event /messages gives paging back from the end; and the page count."""
        events: list[dict[str, Any]] = []
        token = None
        for pages in range(1, 40):
            path = f"/rooms/{q(self.rid)}/messages?dir=b&limit={limit}"
            page = self.ok("GET", path + (f"&from={q(token)}" if token else ""))
            events.extend(page["chunk"])
            token = page.get("end")
            if token is None:
                return events, pages
        raise AssertionError("paging never ended")

    def backfill_calls(self) -> list[Any]:
        return [c[3] for c in self.fed.calls if "/backfill/" in c[2]]

    # -- tests --

    def test_pages_back_past_the_join(self) -> None:
        bodies = self.serve()
        stores = self.hs.get_datastores()
        current_before = dict(self.get_success(
            stores.state.get_current_state_ids(self.rid)))
        extremities_before = self.get_success(stores.events.get_forward_extremities(self.rid))
        since = self.ok("GET", "/sync")["next_batch"]

        events, pages = self.page_back(limit=3)
        messages = [e["content"]["body"] for e in events if e["type"] == "m.room.message"]
        self.assertEqual(messages, bodies[::-1])
        types = [e["type"] for e in events]
        self.assertEqual(types[0], "m.room.member")  # Bob's join, the newest
        self.assertEqual(types[-4:], ["m.room.join_rules", "m.room.power_levels",
                                      "m.room.member", "m.room.create"])
        self.assertEqual(len({e["event_id"] for e in events}), len(events))
        self.assertGreater(pages, 3)
        # Backfill starts from the join's prev event, then from the oldest fetched.
        calls = self.backfill_calls()
        join_pdu = self.room.events[events[0]["event_id"]]
        self.assertEqual(calls[0]["v"], join_pdu["prev_events"])
        # The state before the oldest fetched events came from /state (once per batch).
        self.assertTrue(any("/state/" in c[2] for c in self.fed.calls))

        # Forwards from the start: the same events, oldest first.
        forwards = self.ok("GET", f"/rooms/{q(self.rid)}/messages?dir=f&limit=100")
        self.assertEqual([e["event_id"] for e in forwards["chunk"]],
                         [e["event_id"] for e in reversed(events)])
        self.assertNotIn("end", forwards)
        # A context around a backfilled event.
        old = next(e for e in events if e.get("content", {}).get("body") == "old 2")
        context = self.ok("GET", f"/rooms/{q(self.rid)}/context/{q(old['event_id'])}"
                                 "?limit=2")
        self.assertEqual([e["content"]["body"] for e in context["events_before"]],
                         ["old 1"])
        self.assertEqual([e["content"]["body"] for e in context["events_after"]],
                         ["old 3"])

        # The present is untouched: current state, forward extremities, /sync.
        self.assertEqual(dict(self.get_success(stores.state.get_current_state_ids(self.rid))),
                         current_before)
        self.assertEqual(self.get_success(stores.events.get_forward_extremities(self.rid)),
                         extremities_before)
        later = self.ok("GET", f"/sync?since={since}")
        self.assertNotIn(self.rid, later["rooms"]["join"])
        # Paging again needs no more backfill.
        before = len(self.backfill_calls())
        again, _ = self.page_back(limit=50)
        self.assertEqual(again, events)
        self.assertEqual(len(self.backfill_calls()), before)

    def test_backfill_survives_restart_orderings(self) -> None:
        """Backfilled orderings stay below the stream after the store is rebuilt."""
        self.serve(messages=2)
        self.page_back(limit=50)
        stores = self.hs.get_datastores()
        low = stores.events.get_room_min_stream_ordering()
        self.assertLess(low, 0)
        rebuilt = type(stores.events)(stores.events.db, stores.state, stores.search,
                                      stores.relations)
        self.assertEqual(rebuilt.get_room_min_stream_ordering(), low)

    def test_joined_history_stays_hidden(self) -> None:
        self.serve(visibility="joined")
        events, _ = self.page_back(limit=4)
        self.assertEqual([e for e in events if e["type"] == "m.room.message"], [])
        # What came before `joined` was set is `shared` (the default): shown, as is the
        # change itself (the more permissive side applies) and Bob's own join.
        self.assertEqual([(e["type"], e["state_key"]) for e in events], [
            ("m.room.member", BOB), ("m.room.history_visibility", ""),
            ("m.room.join_rules", ""), ("m.room.power_levels", ""),
            ("m.room.member", self.room.creator), ("m.room.create", "")])

    def test_events_failing_auth_are_not_shown(self) -> None:
        bodies = self.serve(with_intruder=True)
        events, _ = self.page_back(limit=3)
        messages = [e["content"]["body"] for e in events if e["type"] == "m.room.message"]
        self.assertEqual(messages, bodies[::-1])
        self.assertEqual(events[-1]["type"], "m.room.create")

    def test_bad_signatures_are_dropped(self) -> None:
        self.serve(messages=3)
        original = self.fed.routes[(REMOTE, "GET", f"{F1}/backfill/{q(self.rid)}")]

        def tampered(query: Any, content: Any) -> Any:
            answer = original(query, content)
            for pdu in answer["pdus"]:
                if pdu.get("content", {}).get("body") == "old 1":
                    pdu["signatures"] = {REMOTE: {self.remote.key_id: "AAAA"}}
            return answer

        self.fed.routes[(REMOTE, "GET", f"{F1}/backfill/{q(self.rid)}")] = tampered
        events, _ = self.page_back(limit=10)
        # The forged event is dropped; history before it is still fetched (the state
        # at its child comes from /state), with a gap where it was.
        messages = [e["content"]["body"] for e in events if e["type"] == "m.room.message"]
        self.assertEqual(messages, ["old 2", "old 0"])
        self.assertEqual(events[-1]["type"], "m.room.create")
        # Paging again asks once more for the missing event, and ends.
        calls = len(self.backfill_calls())
        self.assertEqual(self.page_back(limit=50)[0], events)
        self.assertEqual(len(self.backfill_calls()), calls + 1)

    def test_unreachable_server(self) -> None:
        self.serve(messages=2)
        del self.fed.routes[(REMOTE, "GET", f"{F1}/backfill/{q(self.rid)}")]
        events, pages = self.page_back(limit=10)
        self.assertEqual(pages, 1)
        self.assertEqual([e["type"] for e in events], ["m.room.member"])
        self.assertEqual(len(self.backfill_calls()), 1)

    def test_local_room_never_backfills(self) -> None:
        room_id = self.ok("POST", "/createRoom", {"preset": "public_chat"})["room_id"]
        page = self.ok("GET", f"/rooms/{q(room_id)}/messages?dir=b&limit=50")
        self.assertEqual(page["chunk"][-1]["type"], "m.room.create")
        self.assertNotIn("end", page)
        self.assertEqual(self.fed.calls, [])

    def test_negative_token_round_trips(self) -> None:
        """Tokens into backfilled history (negative stream orderings) page both ways;
        the `s-…` form of older versions is still accepted."""
        self.serve(messages=4)
        first = self.ok("GET", f"/rooms/{q(self.rid)}/messages?dir=b&limit=3")
        second = self.ok("GET", f"/rooms/{q(self.rid)}/messages?dir=b&limit=3"
                                f"&from={q(first['end'])}")
        # Backfilled events have negative stream orderings: `t<depth>--<n>`.
        self.assertRegex(second["end"], r"^t[0-9]+--[0-9]+$")
        back_up = self.ok("GET", f"/rooms/{q(self.rid)}/messages?dir=f&limit=3"
                                 f"&from={q(second['end'])}")
        self.assertEqual([e["event_id"] for e in back_up["chunk"]],
                         [e["event_id"] for e in reversed(second["chunk"])])
        oldest = second["chunk"][-1]["event_id"]
        ordering = self.get_success(
            self.hs.get_datastores().events.get_stream_ordering(oldest))
        legacy = self.ok("GET", f"/rooms/{q(self.rid)}/messages?dir=b&limit=2"
                                f"&from=s{ordering}_0_0")
        self.assertEqual(legacy["chunk"][0]["event_id"], oldest)
        bad = self.make_request("GET", f"{C}/rooms/{q(self.rid)}/messages?from=s--3_0",
                                access_token=self.token)
        self.assert_error(bad, 400, "M_INVALID_PARAM")

    # -- a hole in the middle of the history --

    def open_hole(self, count: int) -> tuple[list[str], str]:
        """After Bob's join the remote sends `count` messages we never get, then one
        whose prev event is the last of them: we take it with the state there (the
        missing prev becomes an outlier) and our history has a hole below it. Returns
        the missed bodies (oldest first) and the /sync token from before."""
        room = self.room
        since = self.ok("GET", "/sync")["next_batch"]
        missed = [f"missed {i}" for i in range(count)]
        for body in missed:
            room.add("m.room.message", None, {"msgtype": "m.text", "body": body})
        last_missed = room.prev[0]
        after = room.add("m.room.message", None, {"msgtype": "m.text", "body": "after"})
        rid = self.rid  # these two paths are sent unquoted
        self.fed.routes[(REMOTE, "POST", f"{F1}/get_missing_events/{rid}")] = \
            lambda query, content: {"events": []}
        self.fed.routes[(REMOTE, "GET", f"{F1}/state_ids/{rid}")] = \
            lambda query, content: {"pdu_ids": sorted(room.state.values()),
                                    "auth_chain_ids": []}
        self.fed.routes[(REMOTE, "GET", f"{F1}/event/*")] = \
            lambda query, content: {"pdus": [room.events[last_missed]]}
        channel = signed_request(self, self.remote, "PUT", f"{F1}/send/hole1", {
            "origin": REMOTE, "origin_server_ts": 0, "pdus": [room.events[after]],
            "edus": []})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["pdus"], {after: {}})
        return missed, since

    def test_hole_after_the_join_is_backfilled_in_place(self) -> None:
        """Events missed after our join are fetched when paging back reaches them and
        appear between the event after the hole and our join, both directions."""
        before = self.serve(messages=2)
        missed, _ = self.open_hole(5)
        # Two holes: below "after" (its missing prev), and before our join.
        events_store = self.hs.get_datastores().events
        holes = self.get_success(events_store.get_backward_extremities(self.rid))
        join_id = self.room.state[("m.room.member", BOB)]
        after_pdu = self.room.events[self.room.prev[0]]
        self.assertEqual(holes, [
            (after_pdu["prev_events"][0], after_pdu["depth"]),
            (self.room.events[join_id]["prev_events"][0],
             self.room.events[join_id]["depth"])])
        events, _ = self.page_back(limit=3)
        bodies = [e["content"]["body"] for e in events if e["type"] == "m.room.message"]
        self.assertEqual(bodies, ["after", *missed[::-1], *before[::-1]])
        types = [e["type"] for e in events]
        join_at = types.index("m.room.member")
        self.assertEqual(join_at, 1 + len(missed))  # Bob's join: below the hole
        self.assertEqual(events[join_at]["state_key"], BOB)
        self.assertEqual(types[-1], "m.room.create")
        self.assertEqual(len({e["event_id"] for e in events}), len(events))
        # The hole was asked for from its top, the missing prev of "after" (first: the
        # deepest; the page also reached our join, so what precedes it was asked too).
        first = self.backfill_calls()[0]
        self.assertEqual(first["v"][0], self.room.events[events[0]["event_id"]]
                         ["prev_events"][0])
        forwards = self.ok("GET", f"/rooms/{q(self.rid)}/messages?dir=f&limit=100")
        self.assertEqual([e["event_id"] for e in forwards["chunk"]],
                         [e["event_id"] for e in reversed(events)])
        self.assertEqual(self.get_success(self.hs.get_datastores().events
                                          .get_backward_extremities(self.rid)), [])

    def test_sync_prev_batch_pages_into_the_hole(self) -> None:
        """/sync's `prev_batch` before the event after a hole continues into the hole,
        which is backfilled right there (not only at the start of our history)."""
        self.serve(messages=2)
        missed, since = self.open_hole(3)
        timeline = self.ok("GET", f"/sync?since={since}")["rooms"]["join"][self.rid][
            "timeline"]
        self.assertEqual([e["content"]["body"] for e in timeline["events"]], ["after"])
        page = self.ok("GET", f"/rooms/{q(self.rid)}/messages?dir=b&limit=3"
                              f"&from={q(timeline['prev_batch'])}")
        self.assertEqual([e["content"].get("body") for e in page["chunk"]], missed[::-1])
        self.assertIn("end", page)
        # Only the hole was asked for, not the history before our join.
        self.assertEqual(len(self.backfill_calls()), 1)
