"""State resolution v2.1 (rooms/v12.md): empty starting state, conflicted state subgraph."""

from __future__ import annotations

import unittest

from homeserver.state_res.common import EventSource, auth_event_ids
from homeserver.state_res.v2 import conflicted_subgraph, reverse_topological_power_order
from tests.unit.state_res_dsl import (
    ALICE,
    BOB,
    CHARLIE,
    Ev,
    Room,
    eid,
    member,
    power,
    run,
    topic,
)

POWER = ("m.room.power_levels", "")
BOB_MEMBER = ("m.room.member", BOB)


def ban_after_power_change(version: str) -> Room:
    """PA gives Bob 50, Bob's PB gives Charlie 50, then Alice bans Bob (MBB)."""
    room = Room(version)
    room.build([power("PA", ALICE, {ALICE: 100, BOB: 50}),
                power("PB", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50}),
                member("MBB", ALICE, "ban", BOB)],
               [["END", "MBB", "PB", "PA", "START"]])
    return room


def power_chain_with_topic(version: str) -> Room:
    """P1, then P2 giving Bob 50, a topic T citing P2, then Bob's P3 giving Charlie 50."""
    room = Room(version)
    room.build([power("P1", ALICE, {ALICE: 100}, ban=60),
                power("P2", ALICE, {ALICE: 100, BOB: 50}, ban=60),
                topic("T", ALICE),
                power("P3", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50}, ban=60)],
               [["END", "P3", "T", "P2", "P1", "START"]])
    return room


class StateResV21Test(unittest.TestCase):
    """Where v2.1 (room 12) and v2 (room 11) part ways, and where they agree."""

    def test_empty_start_keeps_power_change_made_before_a_ban(self) -> None:
        """Bob's PL change is re-checked without the later ban: v2 resets it, v2.1 keeps it."""
        for version, expected in (("11", "PA"), ("12", "PB")):
            with self.subTest(version=version):
                room = ban_after_power_change(version)
                current = room.state_after["MBB"]
                # Another fork's state: Bob banned, but the power levels reset to PA.
                reset = {**current, POWER: eid("PA")}
                resolved = room.resolve([current, reset])
                self.assertEqual(resolved[POWER], eid(expected))
                # The ban itself is unconflicted and stays in both versions.
                self.assertEqual(resolved[BOB_MEMBER], eid("MBB"))

    def test_conflicted_subgraph_replays_intermediate_power_levels(self) -> None:
        """P2 between the conflicted P1 and P3 is replayed in v2.1, so P3 stays valid."""
        for version, expected in (("11", "P1"), ("12", "P3")):
            with self.subTest(version=version):
                room = power_chain_with_topic(version)
                current = room.state_after["P3"]
                reset = {**current, POWER: eid("P1")}
                self.assertEqual(room.resolve([current, reset])[POWER], eid(expected))

    def test_conflicted_subgraph(self) -> None:
        """The subgraph holds the events on auth paths between conflicted events only."""
        room = power_chain_with_topic("12")
        source = EventSource({}, room.load)
        subgraph = run(conflicted_subgraph(source, {eid("P1"), eid("P3")}))
        # Not T (not in P3's auth chain), nor IMB / IPOWER (no path back to P1).
        self.assertEqual(subgraph, {eid("P1"), eid("P2"), eid("P3")})

    def test_conflicted_subgraph_of_unrelated_events(self) -> None:
        """Conflicted events with no auth path between them are the whole subgraph."""
        room = power_chain_with_topic("12")
        source = EventSource({}, room.load)
        subgraph = run(conflicted_subgraph(source, {eid("T"), eid("IMB")}))
        self.assertEqual(subgraph, {eid("T"), eid("IMB")})

    def test_create_event_is_an_implicit_auth_event(self) -> None:
        """v12 events do not list the create event; state res adds it from the room ID."""
        room = power_chain_with_topic("12")
        p3 = room.events["P3"]
        self.assertNotIn(eid("CREATE"), p3.auth_event_ids)
        self.assertIn(eid("CREATE"), auth_event_ids(p3))
        self.assertEqual(auth_event_ids(room.events["CREATE"]), ())

    def test_unconflicted_state_still_wins(self) -> None:
        """The unconflicted map is applied last even though the checks start empty."""
        room = Room("12")
        room.build([Ev("NB", BOB, "m.room.name", "", {"name": "bob's"}),
                    topic("T1", ALICE), topic("T2", ALICE)],
                   [["END", "T1", "NB", "START"], ["END", "T2", "NB"]])
        resolved = room.state_after["END"]
        self.assertEqual(resolved[("m.room.name", "")], eid("NB"))
        self.assertEqual(resolved[("m.room.topic", "")], eid("T2"))
        # Everything else is what both forks agree on.
        self.assertEqual(resolved, room.state_with(["NB", "T2"]))

    def test_rejected_event_never_wins(self) -> None:
        """A rejected event ordered last is still not admitted."""
        room = Room("12")
        room.build([topic("T1", ALICE), topic("T2", ALICE, rejected=True)],
                   [["END", "T1", "START"], ["END", "T2", "START"]])
        self.assertEqual(room.state_after["END"][("m.room.topic", "")], eid("T1"))

    def test_creator_power_orders_power_events(self) -> None:
        """A v12 creator (infinite power) sorts before a user at 100 with an earlier ts."""
        room = Room("12")
        room.build([power("PA", ALICE, {BOB: 100}),
                    power("PB1", BOB, {BOB: 100, CHARLIE: 50}),
                    power("PA1", ALICE, {BOB: 100, CHARLIE: 10})],
                   [["END", "PB1", "PA", "START"], ["END", "PA1", "PA"]])
        # PA1 (Alice, ∞) goes first despite its later timestamp, so Bob's PB1 (allowed
        # after PA1) is applied last and wins; by timestamp alone PA1 would win.
        source = EventSource({ev.event_id: ev for ev in room.events.values()}, room.load)
        ids = {eid("PB1"), eid("PA1")}
        self.assertEqual(reverse_topological_power_order(source, ids, ids),
                         [eid("PA1"), eid("PB1")])
        self.assertEqual(room.state_after["END"][POWER], eid("PB1"))


if __name__ == "__main__":
    unittest.main()
