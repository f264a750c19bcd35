"""Hostile-peer tests (issue 9): a fake homeserver with its own key, over loopback TLS,
plays crafted federation input against a target process (Axon, and Synapse 1.163 to
prove each case is a real rule) and checks through a local user's `/sync`, `/messages`
and `/state`, and through the target's federation answers, that nothing was accepted,
stored as accepted or served.

The target's exact answers differ (Synapse processes PDUs after answering `/send`), so a
case asserts behaviour: no 5xx, then a valid "marker" event from the same server is waited
for, after which the hostile events must be nowhere.
"""

from __future__ import annotations

import base64
import concurrent.futures
import copy
import hashlib
import json
import time
import unittest
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import yaml

from homeserver.event_hashing import canonical_json, compute_event_id
from tests.integration.federation_pair import Client, federating_server
from tests.integration.hostile_peer import (
    FED,
    ROOM_DATA_KINDS,
    HostilePeer,
    HostileRoom,
    nested_json,
    q,
)
from tests.integration.synapse_process import SynapseProcess

SYNC_FILTER = json.dumps({"room": {"timeline": {"limit": 100}}})
CREATE, PL = ("m.room.create", ""), ("m.room.power_levels", "")
MAX_PDU_BYTES = 65536


def fake_event_id(seed: str) -> str:
    """A well-formed v4+ event ID of an event nobody has."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "$" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


if TYPE_CHECKING:
    _Base = unittest.TestCase
else:
    _Base = object


class TargetMixin(_Base):
    """One target process, its local user `alice`, and the hostile server, per class."""

    target: Any
    alice: Client
    hostile: HostilePeer
    #: the version of the rooms alice creates (12 is both servers' default)
    room_version = "12"
    #: keys written into the target's config before it starts
    target_config: dict[str, Any] = {}

    @classmethod
    def make_target(cls) -> Any:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls) -> None:
        cls.target = cls.make_target()
        cls.hostile = None  # type: ignore[assignment]
        try:
            if cls.target_config:
                with open(cls.target.config_path) as f:
                    config = yaml.safe_load(f)
                config.update(cls.target_config)
                with open(cls.target.config_path, "w") as f:
                    yaml.safe_dump(config, f)
            cls.target.start()
            cls.alice = Client(cls.target, "alice")
            cls.hostile = HostilePeer(cls.target.server_name)
            cls.hostile.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.hostile is not None:
            cls.hostile.close()
        cls.target.close()

    def setUp(self) -> None:
        self.hostile.reset()

    def log(self) -> str:
        """The target's warnings and errors, for failure messages."""
        lines = [line[:300] for line in self.target.log().splitlines()
                 if " WARNING " in line or " ERROR " in line]
        return "\n--- target warnings ---\n" + "\n".join(lines[-30:])


class HostileHelpers(TargetMixin):
    """Rooms joined by the hostile server, markers, and the "nothing served" checks."""

    _n = 0

    def fresh(self, prefix: str) -> str:
        HostileHelpers._n += 1
        return f"{prefix}{HostileHelpers._n}"

    def public_room(self) -> HostileRoom:
        """A public room created by alice and joined by `@mallory` of the hostile server."""
        room_id = self.alice.ok("POST", "/createRoom", {
            "preset": "public_chat", "room_version": self.room_version})["room_id"]
        room, _ = self.hostile.join(room_id, "mallory")
        self.wait_visible(room_id, room.latest[0])
        return room

    def messages(self, room_id: str, limit: int = 100) -> list[dict[str, Any]]:
        answer = self.alice.ok("GET", f"/rooms/{q(room_id)}/messages?dir=b&limit={limit}")
        chunk: list[dict[str, Any]] = answer["chunk"]
        return chunk

    def timeline_ids(self, room_id: str, limit: int = 100) -> list[str]:
        return [e["event_id"] for e in self.messages(room_id, limit)]

    def wait_visible(self, room_id: str, event_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if event_id in self.timeline_ids(room_id):
                return
            time.sleep(0.2)
        raise AssertionError(f"{event_id} never reached alice's /messages{self.log()}")

    def state_map(self, room_id: str) -> dict[tuple[str, str], str]:
        events = self.alice.ok("GET", f"/rooms/{q(room_id)}/state")
        return {(e["type"], e["state_key"]): e["event_id"] for e in events}

    def sync_token(self) -> str:
        answer = self.alice.ok("GET", f"/sync?timeout=0&filter={q(SYNC_FILTER)}")
        return str(answer["next_batch"])

    def send_hostile(self, *pdus: dict[str, Any], **kwargs: Any) -> tuple[int, Any]:
        """Send crafted PDUs: whatever the target thinks of them, never a 5xx."""
        code, answer = self.hostile.send(pdus, **kwargs)
        self.assertLess(code, 500, f"{answer}{self.log()}")
        return code, answer

    def marker(self, room: HostileRoom) -> str:
        """A valid message from the hostile server, waited for: the target has handled
        everything sent before it."""
        event_id, pdu = self.hostile.message(room, self.fresh("marker "))
        code, answer = self.hostile.send([pdu])
        self.assertEqual(code, 200, f"{answer}{self.log()}")
        self.wait_visible(room.room_id, event_id)
        self.hostile.accept(room, event_id)
        return event_id

    def assert_nothing_served(self, room: HostileRoom, bad: set[str], since: str,
                              state_before: dict[tuple[str, str], str]) -> None:
        """The local user sees none of `bad` and the room state did not change."""
        shown = set(self.timeline_ids(room.room_id))
        self.assertFalse(shown & bad, f"in /messages: {shown & bad}{self.log()}")
        answer = self.alice.ok("GET", f"/sync?timeout=0&since={q(since)}"
                                      f"&filter={q(SYNC_FILTER)}")
        joined = answer["rooms"]["join"].get(room.room_id, {})
        synced = {e["event_id"] for part in ("timeline", "state")
                  for e in joined.get(part, {}).get("events", [])}
        self.assertFalse(synced & bad, f"in /sync: {synced & bad}{self.log()}")
        self.assertEqual(self.state_map(room.room_id), state_before, self.log())

    def assert_federation_clean(self, room: HostileRoom, at: str, bad: set[str],
                                foreign: Collection[str] = ()) -> None:
        """`/state`, `/state_ids`, `/event_auth` and a new send_join of the room contain
        neither the refused events nor any event of another room."""
        forbidden = bad | set(foreign)

        def check_pdus(what: str, pdus: list[dict[str, Any]]) -> None:
            for pdu in pdus:
                event_id = compute_event_id(pdu, room.version)
                self.assertNotIn(event_id, forbidden, f"{what} serves {event_id}")
                # A v12 create event has no room_id: the room ID is derived from its ID.
                self.assertEqual(pdu.get("room_id", "!" + event_id[1:]), room.room_id,
                                 f"{what} serves {event_id} of another room")

        base = f"{FED}/v1"
        code, answer = self.hostile.call(
            "GET", f"{base}/state/{q(room.room_id)}?event_id={q(at)}")
        self.assertEqual(code, 200, answer)
        check_pdus("/state", answer["pdus"] + answer["auth_chain"])
        code, answer = self.hostile.call(
            "GET", f"{base}/state_ids/{q(room.room_id)}?event_id={q(at)}")
        self.assertEqual(code, 200, answer)
        ids = set(answer["pdu_ids"]) | set(answer["auth_chain_ids"])
        self.assertFalse(ids & forbidden, f"/state_ids serves {ids & forbidden}")
        for event_id in [at, *sorted(bad)]:
            code, answer = self.hostile.call(
                "GET", f"{base}/event_auth/{q(room.room_id)}/{q(event_id)}")
            self.assertLess(code, 500, f"{answer}{self.log()}")
            if code == 200:
                check_pdus(f"/event_auth of {event_id}", answer["auth_chain"])
        _, joined = self.hostile.join(room.room_id, self.fresh("witness"))
        check_pdus("send_join", joined["state"] + joined["auth_chain"])

    def refused(self, room: HostileRoom, *pdus: dict[str, Any],
                one_per_transaction: bool = False) -> None:
        """Send `pdus`; after a marker none is shown or served and the state is as before."""
        state_before = self.state_map(room.room_id)
        since = self.sync_token()
        if one_per_transaction:
            for pdu in pdus:
                self.send_hostile(pdu)
        else:
            self.send_hostile(*pdus)
        at = self.marker(room)
        bad = {compute_event_id(p, room.version) for p in pdus
               if p.get("room_id") == room.room_id}
        self.assert_nothing_served(room, bad, since, state_before)
        self.assert_federation_clean(room, at, bad)

    def standard_auth(self, room: HostileRoom) -> list[str]:
        """The auth events of a message by mallory."""
        return self.hostile.auth_events_for(room, self.hostile.user("mallory"),
                                            "m.room.message", None, {})

    def create_auth(self, room: HostileRoom) -> list[str]:
        """The create event, where the room version lists it in auth events."""
        return [] if room.version.room_id_from_create_event else [room.state[CREATE]]

    def promote_mallory(self, room: HostileRoom) -> None:
        """Alice gives mallory power level 100, so state events of his are allowed."""
        content = copy.deepcopy(self.hostile.events[room.state[PL]]["content"])
        content.setdefault("users", {})[self.hostile.user("mallory")] = 100
        event_id = self.alice.ok("PUT", f"/rooms/{q(room.room_id)}/state/m.room.power_levels/",
                                 content)["event_id"]
        self.hostile.absorb(room, event_id)


class AuthEventCases(HostileHelpers):
    """1. auth_events citing what they must not."""

    def test_auth_event_of_another_room(self) -> None:
        """A message citing another room's power levels as an auth event is refused and
        nothing of the other room is served for this one."""
        room, other = self.public_room(), self.public_room()
        auth = [other.state[PL] if a == room.state[PL] else a
                for a in self.standard_auth(room)]
        bad, pdu = self.hostile.message(room, "cites another room", auth_events=auth)
        state_before, since = self.state_map(room.room_id), self.sync_token()
        self.send_hostile(pdu)
        at = self.marker(room)
        self.assert_nothing_served(room, {bad}, since, state_before)
        foreign = {e for e, r in self.hostile.event_room.items() if r == other.room_id}
        self.assert_federation_clean(room, at, {bad}, foreign)

    def test_rejected_auth_event(self) -> None:
        """A message citing a rejected event (mallory's self-promotion) is refused."""
        room = self.public_room()
        state_before, since = self.state_map(room.room_id), self.sync_token()
        forged = copy.deepcopy(self.hostile.events[room.state[PL]]["content"])
        forged.setdefault("users", {})[self.hostile.user("mallory")] = 100
        rejected, pl = self.hostile.build(room, "mallory", "m.room.power_levels", forged, "")
        self.send_hostile(pl)
        self.marker(room)
        auth = [rejected if a == room.state[PL] else a for a in self.standard_auth(room)]
        bad, pdu = self.hostile.message(room, "cites a rejected event", auth_events=auth)
        self.send_hostile(pdu)
        at = self.marker(room)
        self.assert_nothing_served(room, {rejected, bad}, since, state_before)
        self.assert_federation_clean(room, at, {rejected, bad})

    def test_duplicate_auth_events(self) -> None:
        """A message citing two member events of its sender is refused."""
        room = self.public_room()
        mallory = self.hostile.user("mallory")
        first = room.state[("m.room.member", mallory)]
        renamed, pdu = self.hostile.build(room, "mallory", "m.room.member", {
            "membership": "join", "displayname": "Mallory again"}, mallory)
        self.assertEqual(self.hostile.send([pdu])[0], 200)
        self.wait_visible(room.room_id, renamed)
        self.hostile.accept(room, renamed)
        _, pdu = self.hostile.message(room, "two member events", auth_events=[
            *self.create_auth(room), room.state[PL], first, renamed])
        self.refused(room, pdu)

    def test_auth_event_the_event_does_not_need(self) -> None:
        """A message citing an unrelated user's (alice's) member event is refused."""
        room = self.public_room()
        auth = [*self.standard_auth(room), room.state[("m.room.member", self.alice.user_id)]]
        _, pdu = self.hostile.message(room, "cites alice", auth_events=auth)
        self.refused(room, pdu)


class GapCases(HostileHelpers):
    """2. Gaps and prev events: state served for a gap is not trusted."""

    def check_forged_gap(self, forger: str) -> None:
        """X's prev is served by /get_missing_events, but that one's own prev is withheld;
        the state then served for the gap has a power-levels event "sent by `forger`"
        (signed by the hostile server only) putting mallory at 100. It must not become
        the room's power levels, and mallory's room name change citing it is refused."""
        room = self.public_room()
        h, mallory = self.hostile, self.hostile.user("mallory")
        real_pl = room.state[PL]
        content = copy.deepcopy(h.events[real_pl]["content"])
        content.setdefault("users", {})[mallory] = 100
        forged, _ = h.build(room, "mallory", "m.room.power_levels", content, "",
                            sender=forger)
        withheld, _ = h.message(room, "withheld")
        h.withheld.add(withheld)
        lie = dict(room.state)
        lie[PL] = forged
        gap, _ = h.message(room, "after the gap", prev_events=[withheld],
                           depth=room.depth + 2)
        h.state_before[withheld] = h.state_before[gap] = lie
        on_gap, x = h.message(room, "on top", prev_events=[gap], depth=room.depth + 3)
        state_before, since = self.state_map(room.room_id), self.sync_token()
        mark = h.mark()
        self.send_hostile(x)
        takeover, y = h.build(room, "mallory", "m.room.name", {"name": "taken over"}, "",
                              prev_events=[on_gap], depth=room.depth + 4, auth_events=[
                                  *self.create_auth(room), forged,
                                  room.state[("m.room.member", mallory)]])
        self.send_hostile(y)
        at = self.marker(room)
        # The target did ask for the state at the gap, so it was offered the forgery.
        self.assertGreaterEqual(h.count("state", "state_ids", since=mark), 1,
                                h.requests_since(mark))
        self.assertEqual(self.state_map(room.room_id)[PL], real_pl, self.log())
        self.assert_nothing_served(room, {forged, takeover}, since, state_before)
        self.assert_federation_clean(room, at, {forged, takeover})

    def test_forged_power_levels_in_a_gap(self) -> None:
        """Gap state with mallory's own power-levels event promoting himself (it fails
        the auth rules) changes nothing."""
        self.check_forged_gap(self.hostile.user("mallory"))

    def test_gap_power_levels_forged_in_the_local_users_name(self) -> None:
        """Gap state with a power-levels event claiming to be alice's (not signed by her
        server) changes nothing."""
        self.check_forged_gap(self.alice.user_id)

    def test_prev_events_in_another_room(self) -> None:
        """A message whose prev event is in another room is refused."""
        room, other = self.public_room(), self.public_room()
        _, pdu = self.hostile.message(room, "prev elsewhere", prev_events=other.latest,
                                      depth=max(room.depth, other.depth) + 1)
        self.refused(room, pdu)


class LimitCases(HostileHelpers):
    """3. The spec's size and count limits, and a full valid transaction."""

    def test_pdu_over_64_kib(self) -> None:
        """A PDU over 65,536 bytes of canonical JSON is refused."""
        room = self.public_room()
        _, pdu = self.hostile.message(room, "x" * MAX_PDU_BYTES)
        self.assertGreater(len(canonical_json(pdu)), MAX_PDU_BYTES)
        self.refused(room, pdu)

    def test_21_prev_events(self) -> None:
        """A message with 21 prev events (all known, valid) is refused."""
        room = self.public_room()
        siblings = [self.hostile.message(room, f"sibling {i}") for i in range(21)]
        self.assertEqual(self.hostile.send([p for _, p in siblings])[0], 200)
        for event_id, _ in siblings:
            self.wait_visible(room.room_id, event_id)
        _, pdu = self.hostile.message(room, "21 prevs", prev_events=[e for e, _ in siblings],
                                      depth=room.depth + 2)
        self.refused(room, pdu)

    def test_11_auth_events(self) -> None:
        """A message with 11 auth events (state events of the room) is refused."""
        room = self.public_room()
        mallory = self.hostile.user("mallory")
        renames = []
        for i in range(8):
            event_id, pdu = self.hostile.build(room, "mallory", "m.room.member", {
                "membership": "join", "displayname": f"Mallory {i}"}, mallory)
            self.hostile.accept(room, event_id)
            renames.append((event_id, pdu))
        self.assertEqual(self.hostile.send([p for _, p in renames])[0], 200)
        self.wait_visible(room.room_id, renames[-1][0])
        state = [e for k, e in room.state.items()
                 if k != CREATE or not room.version.room_id_from_create_event]
        auth = list(dict.fromkeys([*state, *(e for e, _ in renames)]))[:11]
        self.assertEqual(len(auth), 11)
        _, pdu = self.hostile.message(room, "11 auth events", auth_events=auth)
        self.refused(room, pdu)

    def test_fields_over_255_bytes(self) -> None:
        """type, state_key, sender or room_id over 255 bytes: each PDU is refused."""
        room = self.public_room()
        self.promote_mallory(room)
        long_sender = "@" + "m" * 256 + ":" + self.hostile.server_name
        long_room = "!" + "r" * 256 + ":" + self.target.server_name
        pdus = [
            self.hostile.build(room, "mallory", "t" * 256, {"body": "long type"})[1],
            self.hostile.build(room, "mallory", "org.example.field", {}, "k" * 256)[1],
            self.hostile.message(room, "long sender", sender=long_sender)[1],
            self.hostile.message(room, "long room",
                                 tweak=lambda p: p.update(room_id=long_room))[1],
        ]
        self.refused(room, *pdus, one_per_transaction=True)

    def test_depth_2_to_the_53(self) -> None:
        """A PDU with depth 2**53 (beyond canonical JSON's integers) is refused."""
        room = self.public_room()
        _, pdu = self.hostile.message(room, "deep", depth=2**53)
        self.refused(room, pdu)

    def test_transaction_of_51_pdus_or_101_edus(self) -> None:
        """A transaction of 51 PDUs or of 101 EDUs is refused as a whole (400)."""
        room = self.public_room()
        state_before, since = self.state_map(room.room_id), self.sync_token()
        pdus = [self.hostile.message(room, f"one of 51: {i}") for i in range(51)]
        code, answer = self.hostile.send([p for _, p in pdus])
        self.assertEqual(code, 400, answer)
        mallory = self.hostile.user("mallory")
        typing = {"edu_type": "m.typing", "content": {
            "room_id": room.room_id, "user_id": mallory, "typing": True}}
        code, answer = self.hostile.send(edus=[typing] * 101)
        self.assertEqual(code, 400, answer)
        self.marker(room)
        self.assert_nothing_served(room, {e for e, _ in pdus}, since, state_before)
        answer = self.alice.ok("GET", f"/sync?timeout=0&since={q(since)}")
        ephemeral = answer["rooms"]["join"].get(room.room_id, {}).get("ephemeral", {})
        typists = [u for e in ephemeral.get("events", []) if e["type"] == "m.typing"
                   for u in e["content"].get("user_ids", [])]
        self.assertNotIn(mallory, typists)

    def test_full_transaction_of_large_pdus_is_accepted(self) -> None:
        """A valid transaction of 50 PDUs of nearly 64 KiB each (about 3 MB) lands whole."""
        room = self.public_room()
        pdus = []
        for i in range(50):
            event_id, pdu = self.hostile.message(room, f"{i:02d} " + "y" * 63_000)
            self.assertLess(len(canonical_json(pdu)), MAX_PDU_BYTES)
            self.hostile.accept(room, event_id)
            pdus.append((event_id, pdu))
        body = self.hostile.transaction([p for _, p in pdus])
        self.assertGreater(len(json.dumps(body)), 3_000_000)
        code, answer = self.hostile.send([p for _, p in pdus])
        self.assertEqual(code, 200, f"{str(answer)[:500]}{self.log()}")
        self.wait_visible(room.room_id, pdus[-1][0], timeout=60)
        shown = set(self.timeline_ids(room.room_id, limit=60))
        self.assertEqual({e for e, _ in pdus} - shown, set())


class BoundedWorkCases(HostileHelpers):
    """4. Unknown prev events cost the target a bounded number of requests."""

    def test_200_unknown_prev_events(self) -> None:
        """A PDU with 200 unknown prev events is refused after a handful of requests."""
        room = self.public_room()
        fakes = [fake_event_id(f"{room.room_id}/{i}") for i in range(200)]
        _, pdu = self.hostile.message(room, "200 prevs", prev_events=fakes)
        mark = self.hostile.mark()
        self.refused(room, pdu)
        asked = [r for r in self.hostile.requests_since(mark) if r[1] in ROOM_DATA_KINDS]
        self.assertLessEqual(len(asked), 3, asked)

    def check_unknown_prevs(self, n: int) -> tuple[str, int, int]:
        room = self.public_room()
        prevs = [self.hostile.message(room, f"unknown {i}")[0] for i in range(n)]
        x, pdu = self.hostile.message(room, f"{n} unknown prevs", prev_events=prevs,
                                      depth=room.depth + 2)
        mark = self.hostile.mark()
        self.send_hostile(pdu)
        self.marker(room)
        gme = self.hostile.count("get_missing_events", since=mark)
        state = self.hostile.count("state", "state_ids", since=mark)
        self.assertLessEqual(gme, 1, self.hostile.requests_since(mark))
        self.assertLessEqual(state, n, self.hostile.requests_since(mark))
        return x, gme, state

    def test_one_unknown_prev_event(self) -> None:
        """One unknown prev event: one /get_missing_events at most, which fills the gap."""
        x, _, _ = self.check_unknown_prevs(1)
        self.assertIn(x, self.timeline_ids(self.hostile.event_room[x]))

    def test_20_unknown_prev_events(self) -> None:
        """20 unknown prev events: one /get_missing_events and one state fetch per gap."""
        self.check_unknown_prevs(20)


class BodyCases(HostileHelpers):
    """5. Hostile request bodies."""

    def test_json_nested_20000_deep(self) -> None:
        """A transaction nested 20,000 deep (validly signed) is a 400, not a 500."""
        code, answer = self.hostile.call(
            "PUT", f"{FED}/v1/send/{q(self.hostile.next_txn())}", raw=nested_json(20_000))
        self.assertEqual(code, 400, f"{answer}{self.log()}")

    def test_answer_nested_20000_deep(self) -> None:
        """A /get_missing_events answer nested 20,000 deep costs no 5xx and the target
        goes on serving the room."""
        room = self.public_room()
        prev, _ = self.hostile.message(room, "behind a deep answer")
        _, pdu = self.hostile.message(room, "on it", prev_events=[prev], depth=room.depth + 2)
        deep = nested_json(20_000, "events")
        self.hostile.on("get_missing_events", lambda rest, query, body: (200, deep))
        mark = self.hostile.mark()
        self.send_hostile(pdu)
        self.marker(room)
        self.assertGreaterEqual(self.hostile.count("get_missing_events", since=mark), 1)

    def test_same_transaction_twice_concurrently(self) -> None:
        """The same transaction sent twice at once: no 5xx, the event lands once."""
        room = self.public_room()
        event_id, pdu = self.hostile.message(room, "only once")
        txn = self.hostile.next_txn()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: self.hostile.send([pdu], txn_id=txn),
                                    range(2)))
        for code, answer in answers:
            self.assertLess(code, 500, f"{answer}{self.log()}")
        self.assertIn(200, [code for code, _ in answers])
        self.wait_visible(room.room_id, event_id)
        self.hostile.accept(room, event_id)
        self.marker(room)
        self.assertEqual(self.timeline_ids(room.room_id).count(event_id), 1)


class HostilePeerCases(AuthEventCases, GapCases, LimitCases, BoundedWorkCases, BodyCases):
    """Every case of issue 9's hostile-peer list; subclasses pick the target."""


class AxonHostilePeerTest(HostilePeerCases, unittest.TestCase):
    """The hostile peer against an Axon process (SQLite)."""

    @classmethod
    def make_target(cls) -> Any:
        return federating_server()


class AxonV10AuthEventsTest(AuthEventCases, unittest.TestCase):
    """The auth-event cases in a v10 room (the create event listed in auth events)."""

    room_version = "10"

    @classmethod
    def make_target(cls) -> Any:
        return federating_server()


class AxonPostgresHostilePeerTest(AuthEventCases, BodyCases, unittest.TestCase):
    """The auth-event and body cases against an Axon process on PostgreSQL."""

    @classmethod
    def make_target(cls) -> Any:
        return federating_server("psycopg2")


class SynapseHostilePeerTest(HostilePeerCases, unittest.TestCase):
    """The hostile peer against Synapse 1.163: each case is a rule Synapse applies."""

    target_config = {"rc_room_creation": {"per_second": 1000, "burst_count": 1000}}

    @classmethod
    def make_target(cls) -> Any:
        return SynapseProcess()


class SynapseV10AuthEventsTest(AuthEventCases, unittest.TestCase):
    """The auth-event cases in a v10 room, against Synapse."""

    room_version = "10"
    target_config = SynapseHostilePeerTest.target_config

    @classmethod
    def make_target(cls) -> Any:
        return SynapseProcess()


# Low enough that a burst of 40 requests trips it (Synapse's semantics: beyond
# `sleep_limit` requests per `window_size` ms wait `sleep_delay` ms; more than
# `reject_limit` waiting are refused).
LOW_RC_FEDERATION = {"window_size": 1000, "sleep_limit": 2, "sleep_delay": 250,
                     "reject_limit": 2, "concurrent": 1}


class RateLimitCases(TargetMixin):
    """6. A burst of federation requests beyond `rc_federation` gets 429s."""

    target_config = {"rc_federation": LOW_RC_FEDERATION}

    def test_burst_beyond_rc_federation(self) -> None:
        """A burst from one origin gets some 429 M_LIMIT_EXCEEDED with retry_after_ms,
        no 5xx, and the origin is served again once it waits."""
        path = f"{FED}/v1/query/profile?user_id={q(self.alice.user_id)}"
        self.assertEqual(self.hostile.call("GET", path)[0], 200, self.log())
        time.sleep(1.5)
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(lambda _: self.hostile.call("GET", path), range(40)))
        codes = sorted(code for code, _ in answers)
        self.assertFalse([c for c in codes if c >= 500], f"{codes}{self.log()}")
        limited = [answer for code, answer in answers if code == 429]
        self.assertTrue(limited, codes)
        for answer in limited:
            self.assertEqual(answer["errcode"], "M_LIMIT_EXCEEDED")
            self.assertIsInstance(answer["retry_after_ms"], int)
        time.sleep(min(max(a["retry_after_ms"] for a in limited) / 1000, 10) + 1.5)
        self.assertEqual(self.hostile.call("GET", path)[0], 200)


class AxonRateLimitTest(RateLimitCases, unittest.TestCase):
    @classmethod
    def make_target(cls) -> Any:
        return federating_server()


class SynapseRateLimitTest(RateLimitCases, unittest.TestCase):
    @classmethod
    def make_target(cls) -> Any:
        return SynapseProcess()

