"""The notifier wakes waiters by user and by room, never misses an announcement made
between computing an answer and starting to wait, and times out."""

from __future__ import annotations

import unittest
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock as ReactorClock

from handlers.notifier import Notifier
from homeserver.clock import Clock


class _HS:
    def __init__(self, reactor: Any) -> None:
        self._clock = Clock(reactor)

    def get_clock(self) -> Clock:
        return self._clock


class NotifierTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.reactor = ReactorClock()
        self.notifier = Notifier(_HS(self.reactor))  # type: ignore[arg-type]

    def wait(self, user: str, rooms: list[str], timeout_ms: int) -> defer.Deferred[bool]:
        version = self.notifier.current_version()
        return defer.ensureDeferred(
            self.notifier.wait_for_events(user, rooms, version, timeout_ms))

    def test_wakes_by_room_and_user_only(self) -> None:
        by_room = self.wait("@a:x", ["!r:x"], 30000)
        by_user = self.wait("@b:x", [], 30000)
        other = self.wait("@c:x", ["!other:x"], 30000)
        self.notifier.on_new_event("room", 5, rooms=["!r:x"])
        self.assertFalse(by_room.called)  # woken on the next reactor turn
        self.reactor.advance(0)
        self.assertTrue(by_room.called)
        self.assertFalse(by_user.called)
        self.notifier.on_new_event("to_device", 1, users=["@b:x"])
        self.reactor.advance(0)
        self.assertTrue(by_user.called)
        self.assertFalse(other.called)
        self.assertEqual(self.notifier.waiting_count(), 1)
        self.assertEqual(self.notifier.positions, {"room": 5, "to_device": 1})

    def test_announcement_before_waiting_is_not_missed(self) -> None:
        version = self.notifier.current_version()
        self.notifier.on_new_event("receipt", 1, rooms=["!r:x"])
        d = defer.ensureDeferred(
            self.notifier.wait_for_events("@a:x", ["!r:x"], version, 30000))
        self.assertTrue(d.called)
        results: list[bool] = []
        d.addCallback(results.append)
        self.assertEqual(results, [True])

    def test_timeout(self) -> None:
        d = self.wait("@a:x", ["!r:x"], 2000)
        self.reactor.advance(1.9)
        self.assertFalse(d.called)
        self.reactor.advance(0.2)
        results: list[bool] = []
        d.addCallback(results.append)
        self.assertEqual(results, [False])
        self.assertEqual(self.notifier.waiting_count(), 0)
