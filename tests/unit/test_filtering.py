"""Filters (client-server API "Filtering"): validation, matching, event_fields."""

from __future__ import annotations

import unittest
from typing import Any

from handlers.filtering import (
    Filter,
    FilterCollection,
    RoomEventFilter,
    apply_event_fields,
    parse_room_event_filter_param,
    split_field_path,
)
from homeserver.errors import MatrixError


def ev(event_type: str = "m.room.message", sender: str = "@a:test", room_id: str = "!r:test",
       content: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": event_type, "sender": sender, "room_id": room_id,
            "content": content if content is not None else {"body": "x"}}


class ParseTestCase(unittest.TestCase):
    def assert_bad(self, obj: Any, errcode: str = "M_BAD_JSON") -> None:
        with self.assertRaises(MatrixError) as cm:
            FilterCollection.parse(obj)
        self.assertEqual((cm.exception.code, cm.exception.errcode), (400, errcode), obj)

    def test_default(self) -> None:
        """No filter: everything, timeline limit 10, client format, no leave."""
        f = FilterCollection.default()
        self.assertEqual(f.timeline.limit, 10)
        self.assertFalse(f.include_leave)
        self.assertIsNone(f.event_fields)
        self.assertEqual(f.event_format, "client")
        self.assertTrue(f.include_room("!any:test"))
        self.assertTrue(f.timeline.matches(ev()))
        self.assertFalse(f.timeline.lazy_load_members)
        self.assertEqual(FilterCollection.parse({}), f)

    def test_full_filter(self) -> None:
        """Every documented field lands where /sync reads it."""
        f = FilterCollection.parse({
            "event_fields": ["type", "content.body"],
            "event_format": "federation",
            "presence": {"types": ["m.presence"], "not_senders": ["@spam:test"]},
            "account_data": {"types": ["m.push_rules"]},
            "room": {
                "rooms": ["!a:test", "!b:test"], "not_rooms": ["!b:test"],
                "include_leave": True,
                "timeline": {"limit": 3, "lazy_load_members": True,
                             "include_redundant_members": True,
                             "unread_thread_notifications": True},
                "state": {"types": ["m.room.*"], "lazy_load_members": True},
                "ephemeral": {"types": ["m.receipt"]},
                "account_data": {"not_types": ["m.tag"]},
            },
            "unknown_key": 1,
        })
        self.assertEqual(f.event_fields, ["type", "content.body"])
        self.assertEqual(f.event_format, "federation")
        self.assertTrue(f.include_leave)
        self.assertTrue(f.include_room("!a:test"))
        self.assertFalse(f.include_room("!b:test"))
        self.assertFalse(f.include_room("!c:test"))
        self.assertEqual(f.timeline.limit, 3)
        self.assertTrue(f.timeline.lazy_load_members)
        self.assertTrue(f.timeline.include_redundant_members)
        self.assertTrue(f.timeline.unread_thread_notifications)
        self.assertTrue(f.state.lazy_load_members)
        self.assertTrue(f.state.matches(ev("m.room.name")))
        self.assertFalse(f.state.matches(ev("org.custom")))
        self.assertTrue(f.ephemeral.matches({"type": "m.receipt", "content": {}}))
        self.assertFalse(f.ephemeral.matches({"type": "m.typing", "content": {}}))
        self.assertFalse(f.room_account_data.matches({"type": "m.tag", "content": {}}))
        self.assertTrue(f.account_data.matches({"type": "m.push_rules", "content": {}}))
        self.assertFalse(f.account_data.matches({"type": "m.direct", "content": {}}))
        self.assertFalse(f.presence.matches(
            {"type": "m.presence", "sender": "@spam:test", "content": {}}))
        self.assertTrue(f.presence.matches(
            {"type": "m.presence", "sender": "@ok:test", "content": {}}))

    def test_bad_filters(self) -> None:
        """Wrong types and bad values are 400 M_BAD_JSON."""
        for bad in (
            [], "x", None, 3,
            {"event_fields": "type"}, {"event_fields": [1]},
            {"event_format": "xml"}, {"event_format": 1},
            {"presence": []}, {"presence": {"types": "m.presence"}},
            {"presence": {"senders": ["not-a-user"]}},
            {"account_data": {"limit": "5"}},
            {"room": []}, {"room": {"rooms": "!a:test"}}, {"room": {"rooms": [1]}},
            {"room": {"not_rooms": ["a:test"]}}, {"room": {"include_leave": "yes"}},
            {"room": {"timeline": {"limit": -1}}}, {"room": {"timeline": {"limit": 1.5}}},
            {"room": {"timeline": {"limit": True}}},
            {"room": {"timeline": {"types": [None]}}},
            {"room": {"timeline": {"not_senders": "@a:test"}}},
            {"room": {"timeline": {"contains_url": "true"}}},
            {"room": {"state": {"lazy_load_members": 1}}},
            {"room": {"ephemeral": {"rooms": ["x"]}}},
            {"room": {"account_data": 5}},
        ):
            self.assert_bad(bad)

    def test_limit_zero_allowed(self) -> None:
        """A timeline limit of 0 is accepted (bots use it for a state-only sync)."""
        self.assertEqual(FilterCollection.parse({"room": {"timeline": {"limit": 0}}})
                         .timeline.limit, 0)

    def test_room_event_filter_param(self) -> None:
        """The /messages `filter` text: None, JSON, not JSON, bad filter."""
        self.assertIsNone(parse_room_event_filter_param(None))
        f = parse_room_event_filter_param('{"contains_url": true, "limit": 4}')
        assert f is not None
        self.assertTrue(f.contains_url)
        self.assertEqual(f.limit, 4)
        for text, errcode in (("{nope", "M_NOT_JSON"), ("NaN", "M_NOT_JSON"),
                              ("[1]", "M_BAD_JSON"), ('{"types": "x"}', "M_BAD_JSON")):
            with self.assertRaises(MatrixError) as cm:
                parse_room_event_filter_param(text)
            self.assertEqual(cm.exception.errcode, errcode, text)


class MatchTestCase(unittest.TestCase):
    def test_types_and_wildcards(self) -> None:
        """`*` matches any run of characters, anywhere in the pattern."""
        f = RoomEventFilter.parse({"types": ["m.room.*", "org.*.thing"]})
        self.assertTrue(f.matches(ev("m.room.message")))
        self.assertTrue(f.matches(ev("org.x.y.thing")))
        self.assertFalse(f.matches(ev("m.reaction")))
        self.assertFalse(f.matches(ev("org.x.thingy")))
        # `.` is literal, not a regex wildcard
        self.assertFalse(RoomEventFilter.parse({"types": ["m.room.name"]})
                         .matches(ev("mxroomxname")))

    def test_not_wins_over_include(self) -> None:
        """A `not_*` entry excludes even what the positive list includes."""
        f = RoomEventFilter.parse({
            "types": ["m.*"], "not_types": ["m.room.member"],
            "senders": ["@a:test", "@b:test"], "not_senders": ["@b:test"],
            "rooms": ["!r:test", "!s:test"], "not_rooms": ["!s:test"]})
        self.assertTrue(f.matches(ev()))
        self.assertFalse(f.matches(ev("m.room.member")))
        self.assertFalse(f.matches(ev(sender="@b:test")))
        self.assertFalse(f.matches(ev(sender="@c:test")))
        self.assertFalse(f.matches(ev(room_id="!s:test")))
        self.assertFalse(f.matches(ev(room_id="!t:test")))

    def test_empty_lists_match_nothing(self) -> None:
        """An empty `types` list matches no event; absent matches every event."""
        self.assertFalse(RoomEventFilter.parse({"types": []}).matches(ev()))
        self.assertTrue(RoomEventFilter.parse({"not_types": []}).matches(ev()))

    def test_contains_url(self) -> None:
        """contains_url true: only string `content.url`; false: only without one."""
        with_url = ev(content={"url": "mxc://a/b"})
        bad_url = ev(content={"url": 5})
        yes = RoomEventFilter.parse({"contains_url": True})
        no = RoomEventFilter.parse({"contains_url": False})
        self.assertTrue(yes.matches(with_url))
        self.assertFalse(yes.matches(ev()))
        self.assertFalse(yes.matches(bad_url))
        self.assertFalse(no.matches(with_url))
        self.assertTrue(no.matches(ev()))
        self.assertTrue(RoomEventFilter().matches(with_url))

    def test_filter_keeps_order(self) -> None:
        """filter() returns the matching events in their order."""
        events = [ev(sender=f"@u{i}:test") for i in range(5)]
        f = RoomEventFilter.parse({"not_senders": ["@u1:test", "@u3:test"]})
        self.assertEqual([e["sender"] for e in f.filter(events)],
                         ["@u0:test", "@u2:test", "@u4:test"])

    def test_presence_sender_in_content(self) -> None:
        """Events without `sender` are matched on `content.user_id` (old presence form)."""
        f = Filter(senders=("@a:test",))
        self.assertTrue(f.matches({"type": "m.presence", "content": {"user_id": "@a:test"}}))
        self.assertFalse(f.matches({"type": "m.presence", "content": {"user_id": "@b:test"}}))
        self.assertFalse(f.matches({"type": "m.direct", "content": {}}))


class EventFieldsTestCase(unittest.TestCase):
    def test_split(self) -> None:
        """`\\.` is a literal dot, `\\\\` a backslash, other escapes stay as written."""
        self.assertEqual(split_field_path("content.body"), ["content", "body"])
        self.assertEqual(split_field_path(r"content.m\.relates_to"),
                         ["content", "m.relates_to"])
        self.assertEqual(split_field_path(r"content.m\\foo"), ["content", r"m\foo"])
        self.assertEqual(split_field_path(r"content.a\xb"), ["content", r"a\xb"])

    def test_apply(self) -> None:
        """Only the listed paths survive; missing or non-object paths are skipped."""
        event = {"type": "m.room.message", "sender": "@a:test", "event_id": "$e",
                 "content": {"body": "hi", "msgtype": "m.text",
                             "m.relates_to": {"rel_type": "m.thread"}}}
        out = apply_event_fields(event, ["type", "content.body", r"content.m\.relates_to",
                                         "content.body.deeper", "nope", "unsigned.age"])
        self.assertEqual(out, {"type": "m.room.message",
                               "content": {"body": "hi",
                                           "m.relates_to": {"rel_type": "m.thread"}}})
        self.assertIs(apply_event_fields(event, None), event)
        self.assertIs(apply_event_fields(event, []), event)
