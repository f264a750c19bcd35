"""The history-visibility decision for one event (client-server API, "Room History
Visibility", server behaviour rules 1-5, with Synapse's reading of rule 3)."""

from __future__ import annotations

import unittest
from typing import Any

from handlers.visibility import (
    SHARED,
    is_event_visible,
    most_permissive,
    visibility_from_content,
)
from homeserver.events import Event
from homeserver.room_versions import KNOWN_ROOM_VERSIONS

ME = "@me:test"


def make_event(event_type: str = "m.room.message", state_key: str | None = None,
               content: dict[str, Any] | None = None) -> Event:
    return Event(event_id="$e", room_id="!r:test", type=event_type, state_key=state_key,
                 sender="@other:test", content=content or {}, prev_event_ids=("$p",),
                 auth_event_ids=(), depth=5, origin_server_ts=1,
                 room_version=KNOWN_ROOM_VERSIONS["12"])


# (visibility, membership at the event, peeking now, expected)
TABLE: list[tuple[str, str | None, bool, bool]] = [
    # 1. world_readable: everyone, member or not.
    ("world_readable", None, True, True),
    ("world_readable", "leave", True, True),
    ("world_readable", "ban", False, True),
    # 2. joined at the event: always.
    ("joined", "join", True, True),
    ("invited", "join", True, True),
    ("shared", "join", True, True),
    # 3. shared: current members see it whatever their membership then; peekers not.
    ("shared", None, False, True),
    ("shared", "invite", False, True),
    ("shared", "leave", False, True),
    ("shared", None, True, False),
    ("shared", "invite", True, False),
    # 4. invited: invited at the event.
    ("invited", "invite", True, True),
    ("invited", "invite", False, True),
    ("invited", None, False, False),
    ("invited", "leave", False, False),
    ("invited", "knock", False, False),
    # 5. otherwise deny.
    ("joined", "invite", False, False),
    ("joined", None, False, False),
    ("joined", "leave", True, False),
    ("joined", "ban", False, False),
]


class VisibilityRuleTestCase(unittest.TestCase):
    def test_rule_table(self) -> None:
        """Each visibility x membership-at-event x peeking combination decides as the spec."""
        event = make_event()
        for visibility, membership, peeking, expected in TABLE:
            with self.subTest(visibility=visibility, membership=membership, peeking=peeking):
                self.assertEqual(
                    is_event_visible(ME, event, visibility, membership, peeking), expected)

    def test_own_membership_always_visible(self) -> None:
        """A user sees their own m.room.member events even where history is hidden."""
        for membership in ("invite", "join", "leave", "ban", "knock"):
            event = make_event("m.room.member", ME, {"membership": membership})
            self.assertTrue(is_event_visible(ME, event, "joined", None, True))
        other = make_event("m.room.member", "@you:test", {"membership": "join"})
        self.assertFalse(is_event_visible(ME, other, "joined", None, True))

    def test_visibility_from_content(self) -> None:
        """Missing, non-string or unknown history_visibility values mean `shared`."""
        self.assertEqual(visibility_from_content(None), SHARED)
        self.assertEqual(visibility_from_content({}), SHARED)
        self.assertEqual(visibility_from_content({"history_visibility": 3}), SHARED)
        self.assertEqual(visibility_from_content({"history_visibility": "nope"}), SHARED)
        for value in ("world_readable", "shared", "invited", "joined"):
            self.assertEqual(visibility_from_content({"history_visibility": value}), value)

    def test_most_permissive(self) -> None:
        """Before/after of a history_visibility change: the more open value wins."""
        self.assertEqual(most_permissive(["joined", "world_readable"]), "world_readable")
        self.assertEqual(most_permissive(["invited", "joined"]), "invited")
        self.assertEqual(most_permissive(["joined", "shared", "invited"]), "shared")
        self.assertEqual(most_permissive([]), SHARED)
