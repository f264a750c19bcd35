"""State resolution v2 (rooms/v2.md): classic scenarios and the algorithm's pieces."""

from __future__ import annotations

import unittest

import attrs

from homeserver.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.state_res import resolve_events
from homeserver.state_res.common import EventSource, auth_chain
from homeserver.state_res.v2 import (
    auth_difference,
    is_power_event,
    lexicographic_topological_sort,
    mainline_order,
    reverse_topological_power_order,
    separate,
)
from tests.unit.state_res_dsl import (
    ALICE,
    BOB,
    CHARLIE,
    EVELYN,
    ZARA,
    Ev,
    Room,
    eid,
    join_rules,
    member,
    message,
    power,
    run,
    topic,
)

V2_VERSIONS = tuple(str(n) for n in range(2, 12))


class ClassicScenariosTest(unittest.TestCase):
    """Scenarios of forked rooms and the state expected where the forks meet."""

    def check(self, scenario: list[Ev], edges: list[list[str]], expected: list[str],
              versions: tuple[str, ...] = V2_VERSIONS) -> None:
        for version in versions:
            with self.subTest(version=version):
                room = Room(version)
                self.assertEqual(room.build(scenario, edges), room.state_with(expected))

    def test_ban_beats_concurrent_power_levels_change(self) -> None:
        """Bob's power-levels change loses to Alice banning him in a parallel fork."""
        self.check(
            [power("PA", ALICE, {ALICE: 100, BOB: 50}), member("MA", ALICE, "join"),
             member("MB", ALICE, "ban", BOB), power("PB", BOB, {ALICE: 100, BOB: 50})],
            [["END", "MB", "MA", "PA", "START"], ["END", "PB", "PA"]],
            ["PA", "MA", "MB"])

    def test_join_rules_change_beats_concurrent_join(self) -> None:
        """Evelyn's join in parallel with the room going private does not survive."""
        self.check(
            [join_rules("JR", ALICE, "private"), member("ME", EVELYN, "join")],
            [["END", "JR", "START"], ["END", "ME", "START"]],
            ["JR"])

    def test_offtopic_power_levels_chain_is_kept(self) -> None:
        """A chain of valid power-level changes in one fork wins over its own base."""
        self.check(
            [power("PA", ALICE, {ALICE: 100, BOB: 50}),
             power("PB", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50}),
             power("PC", CHARLIE, {ALICE: 100, BOB: 50, CHARLIE: 0})],
            [["END", "PC", "PB", "PA", "START"], ["END", "PA"]],
            ["PC"])

    def test_topic_basic(self) -> None:
        """Alice demotes Bob while Bob sets a topic: Alice's levels and topic win."""
        self.check(
            [topic("T1", ALICE), power("PA1", ALICE, {ALICE: 100, BOB: 50}),
             topic("T2", ALICE), power("PA2", ALICE, {ALICE: 100, BOB: 0}),
             power("PB", BOB, {ALICE: 100, BOB: 50}), topic("T3", BOB)],
            [["END", "PA2", "T2", "PA1", "T1", "START"], ["END", "T3", "PB", "PA1"]],
            ["PA2", "T2"])

    def test_topic_reset(self) -> None:
        """A topic set by Bob before he was banned is dropped; the older topic returns."""
        self.check(
            [topic("T1", ALICE), power("PA", ALICE, {ALICE: 100, BOB: 50}),
             topic("T2", BOB), member("MB", ALICE, "ban", BOB)],
            [["END", "MB", "T2", "PA", "T1", "START"], ["END", "T1"]],
            ["T1", "MB", "PA"])

    def test_topic_after_merge(self) -> None:
        """A topic sent after an earlier merge survives the final merge."""
        self.check(
            [topic("T1", ALICE), power("PA1", ALICE, {ALICE: 100, BOB: 50}),
             topic("T2", ALICE), power("PA2", ALICE, {ALICE: 100, BOB: 0}),
             power("PB", BOB, {ALICE: 100, BOB: 50}), topic("T3", BOB),
             message("MZ1", ZARA), topic("T4", ALICE)],
            [["END", "T4", "MZ1", "PA2", "T2", "PA1", "T1", "START"],
             ["END", "MZ1", "T3", "PB", "PA1"]],
            ["T4", "PA2"])

    def test_mainline_sort_of_topics(self) -> None:
        """The topic based on the newer mainline power levels wins over a later topic."""
        self.check(
            [topic("T1", ALICE), power("PA1", ALICE, {ALICE: 100, BOB: 50}),
             topic("T2", ALICE), power("PA2", ALICE, {ALICE: 100, BOB: 0}),
             power("PB", BOB, {ALICE: 100, BOB: 50}), topic("T3", ALICE),
             topic("T4", ALICE)],
            [["END", "T3", "PA2", "T2", "PA1", "T1", "START"], ["END", "T4", "PB", "PA1"]],
            ["T3", "PA2"])


class ResolutionPropertiesTest(unittest.TestCase):
    """Properties of `resolve_events` that hold whatever the DAG."""

    def setUp(self) -> None:
        self.room = Room("10")
        self.room.build([Ev("NB", BOB, "m.room.name", "", {"name": "bob's"}),
                         topic("TB", BOB), topic("T1", ALICE), topic("T2", ALICE)],
                        [["END", "T1", "TB", "NB", "START"], ["END", "T2", "TB"]])

    def test_no_conflict_returns_the_state_without_loading(self) -> None:
        """Identical state sets come back unchanged and nothing is loaded."""
        state = self.room.state_after["T1"]
        calls = len(self.room.load_calls)
        self.assertEqual(self.room.resolve([state, dict(state)]), state)
        self.assertEqual(len(self.room.load_calls), calls)

    def test_unconflicted_state_is_kept_even_if_it_fails_auth(self) -> None:
        """An unconflicted entry wins even where auth would reject its event."""
        # Bob (level 0) could not name the room, yet NB is in both states.
        resolved = self.room.resolve([self.room.state_after["T1"],
                                      self.room.state_after["T2"]])
        self.assertEqual(resolved[("m.room.name", "")], eid("NB"))
        self.assertEqual(resolved[("m.room.topic", "")], eid("T2"))

    def test_rejected_event_never_wins(self) -> None:
        """A rejected event that would otherwise be ordered last is not admitted."""
        room = Room("10")
        room.build([topic("T1", ALICE), topic("T2", ALICE, rejected=True)],
                   [["END", "T1", "START"], ["END", "T2", "START"]])
        resolved = room.resolve([room.state_after["T1"], room.state_after["T2"]])
        self.assertEqual(resolved[("m.room.topic", "")], eid("T1"))

    def test_key_missing_from_one_state_is_conflicted(self) -> None:
        """A key only some states have is resolved, so an unauthorised event drops out."""
        s1 = dict(self.room.state_after["START"])
        s2 = {**s1, ("m.room.topic", ""): eid("TB")}
        resolved = self.room.resolve([s1, s2])
        self.assertNotIn(("m.room.topic", ""), resolved)

    def test_events_from_event_map_are_not_loaded(self) -> None:
        """Events passed in `event_map` are used without asking `load_events`."""
        event_map = {ev.event_id: ev for ev in self.room.events.values()}
        calls = len(self.room.load_calls)
        resolved = self.room.resolve([self.room.state_after["T1"],
                                      self.room.state_after["T2"]], event_map)
        self.assertEqual(resolved[("m.room.topic", "")], eid("T2"))
        self.assertEqual(len(self.room.load_calls), calls)

    def test_missing_auth_events_are_tolerated(self) -> None:
        """Auth events that cannot be loaded are skipped, not fatal."""
        t3 = attrs.evolve(self.room.events["T2"], event_id=eid("T3"),
                          auth_event_ids=(*self.room.events["T2"].auth_event_ids,
                                          eid("NOWHERE")))
        self.room.events["T3"] = t3
        s3 = {**self.room.state_after["T1"], ("m.room.topic", ""): t3.event_id}
        resolved = self.room.resolve([self.room.state_after["T1"], s3])
        self.assertEqual(resolved[("m.room.topic", "")], t3.event_id)

    def test_empty_input(self) -> None:
        """No state sets resolve to the empty state."""
        version = KNOWN_ROOM_VERSIONS["10"]
        self.assertEqual(run(resolve_events(version, [], {}, self.room.load)), {})


class PiecesTest(unittest.TestCase):
    """The definitions of rooms/v2.md one at a time."""

    def setUp(self) -> None:
        self.room = Room("10")
        self.room.build(
            [power("PA", ALICE, {ALICE: 100, BOB: 50}), topic("TA", ALICE),
             power("PB", BOB, {ALICE: 100, BOB: 50, CHARLIE: 10}), topic("TB", BOB),
             member("KC", BOB, "leave", CHARLIE), member("LZ", ZARA, "leave")],
            [["END", "TA", "PA", "START"], ["END", "KC", "TB", "PB", "PA"],
             ["END", "LZ", "START"]])
        self.source = EventSource({ev.event_id: ev for ev in self.room.events.values()},
                                  self.room.load)

    def ids(self, *names: str) -> list[str]:
        return [eid(n) for n in names]

    def test_separate(self) -> None:
        """Same value everywhere is unconflicted; differing or missing keys conflict."""
        k1, k2, k3 = ("a", ""), ("b", ""), ("c", "")
        unconflicted, conflicted = separate([{k1: "$1", k2: "$2"}, {k1: "$1", k2: "$3",
                                                                    k3: "$4"}])
        self.assertEqual(unconflicted, {k1: "$1"})
        self.assertEqual(conflicted, {k2: {"$2", "$3"}, k3: {"$4"}})

    def test_power_events(self) -> None:
        """Power levels, join rules, kicks and bans of others are power events."""
        events = self.room.events
        for name, expected in [("PA", True), ("IJR", True), ("KC", True), ("LZ", False),
                               ("TA", False), ("IMB", False), ("CREATE", True)]:
            with self.subTest(name):
                self.assertEqual(is_power_event(events[name]), expected)

    def test_auth_chain(self) -> None:
        """The auth chain follows auth_events transitively and excludes the event."""
        chain = run(auth_chain(self.source, [eid("TB")], include_roots=False))
        self.assertEqual(chain, set(self.ids("CREATE", "IMA", "IPOWER", "IJR", "IMB", "PA",
                                         "PB")))

    def test_auth_difference(self) -> None:
        """Events not in every state set's auth chain form the auth difference."""
        s1, s2 = self.room.state_after["TA"], self.room.state_after["KC"]
        diff = run(auth_difference(self.source, [s1, s2]))
        self.assertEqual(diff, set(self.ids("TA", "PB", "TB", "KC")))

    def test_topological_sort_respects_edges_then_key(self) -> None:
        """Kahn's algorithm emits auth ancestors first and breaks ties by the key."""
        graph = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}
        keys = {"a": 3, "b": 2, "c": 1, "d": 0, "e": 4}
        order = lexicographic_topological_sort(graph, lambda n: (keys[n], 0, n))
        self.assertEqual(order, ["a", "c", "b", "d", "e"])

    def test_power_order_tie_breaks(self) -> None:
        """Higher sender power first, then earlier origin_server_ts, then event ID."""
        base = self.room.events["IJR"]
        variants = [attrs.evolve(base, event_id=eid(name), sender=sender, origin_server_ts=ts)
                    for name, sender, ts in [("X2", BOB, 5), ("X1", ALICE, 9),
                                             ("X4", CHARLIE, 7), ("X3", CHARLIE, 7),
                                             ("X5", ZARA, 6)]]
        source = EventSource({ev.event_id: ev for ev in
                              [*self.room.events.values(), *variants]}, self.room.load)
        ids = {ev.event_id for ev in variants}
        # Power from IPOWER in their auth events: Alice 100, everyone else 0.
        order = reverse_topological_power_order(source, ids, ids)
        self.assertEqual(order, self.ids("X1", "X2", "X5", "X3", "X4"))

    def test_mainline_order(self) -> None:
        """Events based on older mainline power levels sort first; then by timestamp."""
        order = run(mainline_order(self.source, self.ids("TB", "TA", "IMZ", "KC"),
                                   eid("PA")))
        # IMZ cites IPOWER (mainline 1); TA cites PA (0); TB and KC cite PB, not on the
        # mainline, whose parent is PA (0): ordered by timestamp among themselves.
        self.assertEqual(order, self.ids("IMZ", "TA", "TB", "KC"))

    def test_mainline_order_without_power_levels(self) -> None:
        """With no resolved power levels every event is at infinity: timestamp order."""
        order = run(mainline_order(self.source, self.ids("TB", "IMZ", "TA"), None))
        self.assertEqual(order, self.ids("IMZ", "TA", "TB"))


if __name__ == "__main__":
    unittest.main()
