"""StreamStore: reading a room's events by stream position (/sync timelines) and in
topological order (/messages, /context), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from typing import Any

from storage.prepare import SCHEMA_DIR, _split_statements
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


class TopologicalReadTestCase(HomeserverTestCase):
    """get_room_events_topological over hand-made rows: live events and backfilled ones
    (negative stream orderings) interleaved by depth."""

    ROWS = (  # name, stream_ordering, depth, outlier, room
        ("e1", 10, 1, 0, "!a:test"), ("e2", 11, 2, 0, "!a:test"),
        ("b1", -3, 3, 0, "!a:test"), ("b2", -2, 4, 0, "!a:test"),
        ("e3", 12, 5, 0, "!a:test"), ("e4", 13, 5, 0, "!a:test"),
        ("o", 14, 4, 1, "!a:test"), ("x", 15, 3, 0, "!b:test"),
    )

    def prepare(self, reactor: Any, hs: Any) -> None:
        self.stream = hs.get_datastores().stream
        db = hs.get_datastores().events.db

        def insert(txn: Any) -> None:
            for name, ordering, depth, outlier, room in self.ROWS:
                txn.insert("events", {
                    "stream_ordering": ordering, "event_id": f"${name}", "room_id": room,
                    "type": "m.room.message", "sender": "@a:test", "depth": depth,
                    "origin_server_ts": 0, "received_ts": 0, "json": "{}",
                    "outlier": outlier})

        db.run_sync("insert_rows", insert)

    def read(self, from_bound: Any, to_bound: Any, direction: str, limit: int = 10,
             max_stream: int = 100) -> list[str]:
        rows = self.get_success(self.stream.get_room_events_topological(
            "!a:test", from_bound, to_bound, direction, limit, max_stream))
        return [r.event_id[1:] for r in rows]

    def test_backwards(self) -> None:
        """Deepest first, ties by stream ordering; a topological bound is inclusive."""
        self.assertEqual(self.read(None, None, "b"), ["e4", "e3", "b2", "b1", "e2", "e1"])
        self.assertEqual(self.read((5, 12), None, "b"), ["e3", "b2", "b1", "e2", "e1"])
        self.assertEqual(self.read(None, (3, -3), "b"), ["e4", "e3", "b2"])
        self.assertEqual(self.read((5, 13), (2, 11), "b", limit=2), ["e4", "e3"])

    def test_stream_bound(self) -> None:
        """A stream position (a /sync token) bounds stream orderings only: backfilled
        events below it are in, wherever their depth is."""
        self.assertEqual(self.read((None, 11), None, "b"), ["b2", "b1", "e2", "e1"])
        self.assertEqual(self.read((None, 11), None, "f"), ["e3", "e4"])

    def test_forwards(self) -> None:
        """Shallowest first, after the `from` bound, at or before the `to` bound."""
        self.assertEqual(self.read((3, -3), None, "f"), ["b2", "e3", "e4"])
        self.assertEqual(self.read((2, 11), (5, 12), "f"), ["b1", "b2", "e3"])
        self.assertEqual(self.read(None, None, "f", limit=2), ["e1", "e2"])

    def test_max_stream_and_last_event(self) -> None:
        """Nothing above `max_stream`; the last event at a topological position."""
        self.assertEqual(self.read(None, None, "b", max_stream=12),
                         ["e3", "b2", "b1", "e2", "e1"])
        self.assertEqual(self.get_success(self.stream.get_last_event_at("!a:test", (4, 0))),
                         "$b2")
        self.assertIsNone(self.get_success(self.stream.get_last_event_at("!a:test", (0, 5))))
        with self.assertRaises(ValueError):
            self.read(None, None, "x")

    def test_backward_extremities_migration_fill(self) -> None:
        """The schema file fills the table from the stored edges: prev events missing
        from the history or held only as outliers, of history events only."""
        db = self.hs.get_datastores().events.db
        edges = [("$e2", "$e1"), ("$b1", "$gone"), ("$e3", "$o"), ("$o", "$gone2"),
                 ("$x", "$elsewhere")]
        path = os.path.join(SCHEMA_DIR, "4", "65_backward_extremities.sql")
        with open(path) as f:
            fill = [s for s in _split_statements(f.read()) if s.startswith("INSERT")]

        def run(txn: Any) -> list[tuple[Any, ...]]:
            txn.execute("DELETE FROM event_backward_extremities")
            room_of = {name: room for name, _, _, _, room in self.ROWS}
            txn.executemany(
                "INSERT INTO event_edges (event_id, prev_event_id, room_id) VALUES (?, ?, ?)",
                [(e, p, room_of[e[1:]]) for e, p in edges])
            for statement in fill:
                txn.execute(statement)
            return txn.select_all("SELECT room_id, event_id FROM event_backward_extremities"
                                  " ORDER BY room_id, event_id")

        self.assertEqual(db.run_sync("fill", run), [
            ("!a:test", "$gone"), ("!a:test", "$o"), ("!b:test", "$elsewhere")])
