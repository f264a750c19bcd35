"""State resolution v1 (rooms/v1.md, "State resolution"): depth and sha1 ordering."""

from __future__ import annotations

import hashlib
import unittest

from homeserver.state_res.v1 import separate
from tests.unit.state_res_dsl import (
    ALICE,
    BOB,
    Room,
    eid,
    member,
    message,
    power,
    topic,
)

TOPIC = ("m.room.topic", "")
POWER = ("m.room.power_levels", "")


def sha1(name: str) -> str:
    return hashlib.sha1(eid(name).encode()).hexdigest()


class StateResV1Test(unittest.TestCase):
    """Resolution in room version 1 rooms."""

    def test_separate_ignores_keys_missing_from_some_states(self) -> None:
        """Only differing event IDs for one key are a conflict in v1."""
        k1, k2, k3 = ("a", ""), ("b", ""), ("c", "")
        unconflicted, conflicted = separate([{k1: "$1", k2: "$2"},
                                             {k1: "$1", k2: "$3", k3: "$4"}])
        self.assertEqual(unconflicted, {k1: "$1", k3: "$4"})
        self.assertEqual(conflicted, {k2: {"$2", "$3"}})

    def test_key_missing_from_one_state_passes_unchecked(self) -> None:
        """A key only one state has is kept even if its event would fail auth."""
        room = Room("1")
        room.build([topic("TB", BOB)], [["END", "TB", "START"]])
        resolved = room.resolve([room.state_after["START"], room.state_after["TB"]])
        self.assertEqual(resolved[TOPIC], eid("TB"))

    def test_deepest_topic_wins_over_later_timestamp(self) -> None:
        """Among ordinary events the greatest depth wins, whatever the timestamps."""
        room = Room("1")
        room.build([message("M1"), message("M2"), topic("TX", ALICE), topic("TY", ALICE)],
                   [["END", "TX", "M2", "M1", "START"], ["END", "TY", "START"]])
        self.assertGreater(room.events["TY"].origin_server_ts,
                           room.events["TX"].origin_server_ts)
        self.assertEqual(room.state_after["END"][TOPIC], eid("TX"))

    def test_same_depth_lowest_sha1_wins(self) -> None:
        """At equal depth the event with the lowest sha1(event_id) wins."""
        room = Room("1")
        room.build([topic("TA", ALICE), topic("TZ", ALICE)],
                   [["END", "TA", "START"], ["END", "TZ", "START"]])
        winner = min(("TA", "TZ"), key=sha1)
        self.assertEqual(room.state_after["END"][TOPIC], eid(winner))

    def test_unauthorised_deepest_event_falls_back(self) -> None:
        """The deepest event that fails auth in R is passed over for the next one."""
        room = Room("1")
        room.build([topic("T1", ALICE), message("M1"), topic("TB", BOB)],
                   [["END", "T1", "START"], ["END", "TB", "M1", "START"]])
        self.assertEqual(room.state_after["END"][TOPIC], eid("T1"))

    def test_all_unauthorised_keeps_least_deep(self) -> None:
        """When no candidate passes auth the one with the least depth is kept."""
        room = Room("1")
        room.build([topic("TB1", BOB), message("M1"), topic("TB2", BOB)],
                   [["END", "TB1", "START"], ["END", "TB2", "M1", "START"]])
        self.assertEqual(room.state_after["END"][TOPIC], eid("TB1"))

    def test_power_levels_stop_at_first_unauthorised(self) -> None:
        """Power levels apply in ascending depth and stop at the first one not allowed."""
        room = Room("1")
        room.build(
            [power("P1", ALICE, {ALICE: 100, BOB: 10}), message("M1"),
             power("P2", BOB, {ALICE: 100, BOB: 10}), message("M2"), message("M3"),
             power("P3", ALICE, {ALICE: 100, BOB: 20})],
            [["END", "P1", "START"], ["END", "P2", "M1", "START"],
             ["END", "P3", "M3", "M2", "START"]])
        # P3 would be allowed after P1, but P2 (Bob has 10 < 50) stops the walk first.
        self.assertEqual(room.state_after["END"][POWER], eid("P1"))

    def test_power_levels_later_allowed_change_wins(self) -> None:
        """A deeper power-levels change allowed after the shallower one replaces it."""
        room = Room("1")
        room.build(
            [power("P1", ALICE, {ALICE: 100, BOB: 10}), message("M1"),
             power("P3", ALICE, {ALICE: 100, BOB: 20})],
            [["END", "P1", "START"], ["END", "P3", "M1", "START"]])
        self.assertEqual(room.state_after["END"][POWER], eid("P3"))

    def test_topic_reset(self) -> None:
        """A topic set by Bob before he was banned is dropped for the older topic."""
        room = Room("1")
        end = room.build(
            [topic("T1", ALICE), power("PA", ALICE, {ALICE: 100, BOB: 50}),
             topic("T2", BOB), member("MB", ALICE, "ban", BOB)],
            [["END", "MB", "T2", "PA", "T1", "START"], ["END", "T1"]])
        self.assertEqual(end, room.state_with(["T1", "MB", "PA"]))

    def test_rejected_event_never_wins(self) -> None:
        """A rejected candidate is not chosen even when it is the deepest."""
        room = Room("1")
        room.build([topic("T1", ALICE), message("M1"), topic("T2", ALICE, rejected=True)],
                   [["END", "T1", "START"], ["END", "T2", "M1", "START"]])
        self.assertEqual(room.state_after["END"][TOPIC], eid("T1"))

    def test_single_state_set_is_returned_as_is(self) -> None:
        """One state set needs no resolution."""
        room = Room("1")
        room.build([], [["END", "START"]])
        state = room.state_after["START"]
        self.assertEqual(room.resolve([state]), state)


if __name__ == "__main__":
    unittest.main()
