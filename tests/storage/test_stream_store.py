"""StreamStore: reading a room's events by stream position (used by /messages, /context
and /sync timelines), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.api.room_helpers import RoomHelpers
from tests.harness import HomeserverTestCase


class StreamStoreTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.token = self.login_new("alice")
        stores = hs.get_datastores()
        self.stream = stores.stream
        self.events = stores.events
        self.room_a = self.create_room(self.token)
        self.room_b = self.create_room(self.token)

    def login_new(self, localpart: str) -> str:
        self.register_user(localpart)
        return self.login(localpart)

    def pos(self, event_id: str) -> int:
        position: int = self.get_success(self.events.get_stream_ordering(event_id))
        return position

    def test_between(self) -> None:
        """Backwards: <= from, > to, newest first; forwards: > from, <= to, oldest first;
        other rooms' events never appear."""
        sent = [self.send_message(self.token, self.room_a, f"m{i}") for i in range(6)]
        self.send_message(self.token, self.room_b, "elsewhere")
        p = [self.pos(e) for e in sent]
        back = self.get_success(self.stream.get_room_events_between(
            self.room_a, p[4], p[1], "b", 10))
        self.assertEqual(back, [(sent[i], p[i]) for i in (4, 3, 2)])
        fwd = self.get_success(self.stream.get_room_events_between(
            self.room_a, p[1], p[4], "f", 10))
        self.assertEqual(fwd, [(sent[i], p[i]) for i in (2, 3, 4)])
        limited = self.get_success(self.stream.get_room_events_between(
            self.room_a, p[1], None, "f", 2))
        self.assertEqual([e for e, _ in limited], sent[2:4])
        self.assertEqual(self.get_success(self.stream.get_room_events_between(
            self.room_a, p[5], None, "f", 5)), [])
        with self.assertRaises(ValueError):
            self.get_success(self.stream.get_room_events_between(
                self.room_a, 0, None, "x", 5))

    def test_last_event_before(self) -> None:
        """The newest event at or before a position; None before the room existed."""
        first = self.send_message(self.token, self.room_a, "1")
        self.send_message(self.token, self.room_b, "b")
        self.assertEqual(self.get_success(self.stream.get_last_event_before(
            self.room_a, self.pos(first) + 1)), first)
        self.assertEqual(self.get_success(self.stream.get_last_event_before(
            self.room_a, self.pos(first))), first)
        self.assertIsNone(self.get_success(self.stream.get_last_event_before(
            self.room_a, 0)))

    def test_rooms_changed(self) -> None:
        """Only rooms with events in (from, to], each with its highest position there."""
        start = self.events.get_room_max_stream_ordering()
        a1 = self.send_message(self.token, self.room_a, "a1")
        a2 = self.send_message(self.token, self.room_a, "a2")
        mid = self.events.get_room_max_stream_ordering()
        b1 = self.send_message(self.token, self.room_b, "b1")
        end = self.events.get_room_max_stream_ordering()
        rooms = [self.room_a, self.room_b, "!unknown:test"]
        self.assertEqual(self.get_success(self.stream.get_rooms_changed(rooms, start, end)),
                         {self.room_a: self.pos(a2), self.room_b: self.pos(b1)})
        self.assertEqual(self.get_success(self.stream.get_rooms_changed(rooms, mid, end)),
                         {self.room_b: self.pos(b1)})
        self.assertEqual(self.get_success(self.stream.get_rooms_changed(
            rooms, start, self.pos(a1))), {self.room_a: self.pos(a1)})
        self.assertEqual(self.get_success(self.stream.get_rooms_changed([], start, end)), {})
        self.assertEqual(self.get_success(self.stream.get_rooms_changed(rooms, end, end)), {})
        # Many rooms: chunked under the bound-parameter limit.
        many = [f"!r{i}:test" for i in range(1200)] + [self.room_b]
        self.assertEqual(self.get_success(self.stream.get_rooms_changed(many, mid, end)),
                         {self.room_b: self.pos(b1)})
