"""The in-memory index of rooms' newest events answers only what it fully knows."""

from __future__ import annotations

import unittest

from storage.recent_events import RecentRoomEvents


class RecentRoomEventsTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.recent = RecentRoomEvents(earliest=100, per_room=3)
        for pos, room in ((101, "!a"), (102, "!b"), (103, "!a"), (104, "!a")):
            self.recent.add(room, f"${pos}", pos, {"@u": (True, pos == 104, "main")})

    def test_rooms_changed(self) -> None:
        self.assertEqual(self.recent.rooms_changed(["!a", "!b", "!c"], 102), {"!a"})
        self.assertEqual(self.recent.rooms_changed(["!a", "!b", "!c"], 100), {"!a", "!b"})
        self.assertIsNone(self.recent.rooms_changed(["!a"], 99))
        self.assertEqual(self.recent.last_position("!c"), 100)

    def test_events_between(self) -> None:
        self.assertEqual(self.recent.events_between("!a", 101, 104, 10),
                         [("$104", 104), ("$103", 103)])
        self.assertEqual(self.recent.events_between("!a", 100, 103, 1), [("$103", 103)])
        self.assertIsNone(self.recent.events_between("!a", 99, 104, 10))
        self.assertIsNone(self.recent.events_between("!a", None, 104, 10))

    def test_eviction_raises_the_floor(self) -> None:
        self.recent.add("!a", "$105", 105, {})
        # $101 fell out: a token at 100 can no longer be answered, one at 101 can.
        self.assertIsNone(self.recent.events_between("!a", 100, 105, 10))
        self.assertEqual([e for e, _ in self.recent.events_between("!a", 101, 105, 10) or []],
                         ["$105", "$104", "$103"])

    def test_push_counts(self) -> None:
        self.assertEqual(self.recent.push_counts_between("!a", "@u", 100, 104),
                         {"main": (3, 1)})
        self.assertEqual(self.recent.push_counts_between("!a", "@u", 103, 103), {})
        self.assertEqual(self.recent.push_counts_between("!a", "@other", 100, 104), {})
        self.recent.add("!a", "$105", 105, None)  # actions unknown
        self.assertIsNone(self.recent.push_counts_between("!a", "@u", 103, 105))
        self.assertEqual(self.recent.push_counts_between("!a", "@u", 103, 104),
                         {"main": (1, 1)})
