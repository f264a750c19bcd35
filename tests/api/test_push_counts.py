"""Push actions written with each event, and the unread counts derived from them."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


class PushCountsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.carol = self.register_user("carol")
        self.carol_token = self.login("carol")
        self.room = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, self.room)
        self.join(self.carol, self.room)
        self.push = hs.get_push_rules_handler()
        self._txn = 0

    def send(self, token: str, room_id: str, content: dict[str, Any],
             event_type: str = "m.room.message") -> str:
        self._txn += 1
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{room_id}/send/{event_type}/t{self._txn}", content,
            access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        event_id: str = channel.json_body["event_id"]
        return event_id

    def text(self, token: str, room_id: str, body: str, **extra: Any) -> str:
        return self.send(token, room_id, {"msgtype": "m.text", "body": body, **extra})

    def ordering(self, event_id: str) -> int:
        pos = self.get_success(self.hs.get_datastores().events.get_stream_ordering(event_id))
        assert pos is not None
        return int(pos)

    def counts(self, user_id: str, rooms: list[str] | None = None,
               read: dict[str, int] | None = None) -> Any:
        return self.get_success(self.push.get_unread_counts(
            user_id, read or {}, rooms or [self.room]))

    def pair(self, user_id: str, room_id: str | None = None) -> tuple[int, int]:
        room_id = room_id or self.room
        c = self.counts(user_id, [room_id]).get(room_id)
        return (c.notification_count, c.highlight_count) if c else (0, 0)

    # -- tests --

    def test_plain_message_in_group_room(self) -> None:
        """Every other member gets a notification (.m.rule.message); never the sender."""
        self.text(self.alice_token, self.room, "hello all")
        self.assertEqual(self.pair(self.bob), (1, 0))
        self.assertEqual(self.pair(self.carol), (1, 0))
        self.assertEqual(self.pair(self.alice), (0, 0))
        self.assertEqual(self.counts(self.alice), {})

    def test_mentions_highlight(self) -> None:
        """m.mentions of one user highlights for that user only; legacy body mentions
        highlight when there is no m.mentions."""
        self.text(self.alice_token, self.room, "hey", **{"m.mentions": {"user_ids": [self.bob]}})
        self.assertEqual(self.pair(self.bob), (1, 1))
        self.assertEqual(self.pair(self.carol), (1, 0))
        self.text(self.alice_token, self.room, "carol, look")
        self.assertEqual(self.pair(self.carol), (2, 1))
        self.text(self.alice_token, self.room, "carol again", **{"m.mentions": {}})
        self.assertEqual(self.pair(self.carol), (3, 1))

    def test_room_mention_needs_power(self) -> None:
        """@room (m.mentions.room) highlights when the sender has the `room` level."""
        self.text(self.bob_token, self.room, "everyone!", **{"m.mentions": {"room": True}})
        self.assertEqual(self.pair(self.carol), (1, 0))
        self.text(self.alice_token, self.room, "everyone!", **{"m.mentions": {"room": True}})
        self.assertEqual(self.pair(self.carol), (2, 1))
        self.assertEqual(self.pair(self.bob), (1, 1))

    def test_one_to_one_vs_group(self) -> None:
        """With .m.rule.message off, only the 2-member room notifies (room_one_to_one)."""
        channel = self.make_request(
            "PUT", f"{CLIENT}/pushrules/global/underride/.m.rule.message/enabled",
            {"enabled": False}, access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        dm = self.create_room(self.alice_token)
        self.invite(self.alice, dm, self.bob)
        self.join(self.bob, dm)
        self.text(self.alice_token, dm, "psst")
        self.text(self.alice_token, self.room, "public")
        counts = self.counts(self.bob, [dm, self.room])
        self.assertEqual(counts[dm].notification_count, 1)
        self.assertNotIn(self.room, counts)
        self.assertEqual(self.pair(self.carol), (1, 0))

    def test_user_rule_mutes_room(self) -> None:
        """A room rule with no actions stops notifications there (cache invalidated)."""
        self.text(self.alice_token, self.room, "one")
        channel = self.make_request("PUT", f"{CLIENT}/pushrules/global/room/{self.room}",
                                    {"actions": []}, access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.text(self.alice_token, self.room, "two")
        self.assertEqual(self.pair(self.bob), (1, 0))
        self.assertEqual(self.pair(self.carol), (2, 0))
        channel = self.make_request("DELETE", f"{CLIENT}/pushrules/global/room/{self.room}",
                                    access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.text(self.alice_token, self.room, "three")
        self.assertEqual(self.pair(self.bob), (2, 0))

    def test_master_rule(self) -> None:
        """Enabling .m.rule.master silences everything, mentions included."""
        channel = self.make_request(
            "PUT", f"{CLIENT}/pushrules/global/override/.m.rule.master/enabled",
            {"enabled": True}, access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.text(self.alice_token, self.room, "hey", **{"m.mentions": {"user_ids": [self.bob]}})
        self.assertEqual(self.pair(self.bob), (0, 0))

    def test_read_positions(self) -> None:
        """Only notifications after the read position count."""
        first = self.text(self.alice_token, self.room, "1")
        second = self.text(self.alice_token, self.room, "2",
                           **{"m.mentions": {"user_ids": [self.bob]}})
        self.text(self.alice_token, self.room, "3")
        self.assertEqual(self.pair(self.bob), (3, 1))
        counts = self.counts(self.bob, read={self.room: self.ordering(first)})
        self.assertEqual((counts[self.room].notification_count,
                          counts[self.room].highlight_count), (2, 1))
        counts = self.counts(self.bob, read={self.room: self.ordering(second)})
        self.assertEqual((counts[self.room].notification_count,
                          counts[self.room].highlight_count), (1, 0))
        last = self.text(self.alice_token, self.room, "4")
        self.assertEqual(self.counts(self.bob, read={self.room: self.ordering(last)}), {})

    def test_many_rooms_one_call(self) -> None:
        """Counts for several rooms, each with its own read position."""
        other = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, other)
        a1 = self.text(self.alice_token, self.room, "a1")
        self.text(self.alice_token, self.room, "a2")
        self.text(self.alice_token, other, "b1")
        quiet = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, quiet)
        counts = self.counts(self.bob, [self.room, other, quiet],
                             read={self.room: self.ordering(a1)})
        self.assertEqual(counts[self.room].notification_count, 1)
        self.assertEqual(counts[other].notification_count, 1)
        self.assertNotIn(quiet, counts)
        self.assertEqual(self.get_success(self.push.get_unread_counts(self.bob, {}, [])), {})

    def test_threads(self) -> None:
        """Thread replies count per thread; the room totals include them."""
        root = self.text(self.alice_token, self.room, "root")
        self.text(self.alice_token, self.room, "in thread", **{
            "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
        self.text(self.alice_token, self.room, "mention in thread", **{
            "m.relates_to": {"rel_type": "m.thread", "event_id": root},
            "m.mentions": {"user_ids": [self.bob]}})
        c = self.counts(self.bob)[self.room]
        self.assertEqual((c.notification_count, c.highlight_count), (3, 1))
        self.assertEqual((c.main_notification_count, c.main_highlight_count), (1, 0))
        self.assertEqual(c.threads, {root: (2, 1)})
        rows = self.get_success(self.hs.get_datastores().db.execute(
            "t", "SELECT thread_id, recipients FROM event_push_actions WHERE room_id = ?"
            " ORDER BY stream_ordering", self.room))
        mine = [(thread, json.loads(recipients)[self.bob]) for thread, recipients in rows
                if self.bob in json.loads(recipients)]
        self.assertEqual(mine, [("main", 1), (root, 1), (root, 2)])

    def test_non_notifying_events(self) -> None:
        """Notices, edits, reactions and membership changes store nothing."""
        target = self.text(self.alice_token, self.room, "x")
        base = self.pair(self.bob)
        self.send(self.alice_token, self.room, {"msgtype": "m.notice", "body": "bot"})
        self.text(self.alice_token, self.room, "* y", **{
            "m.relates_to": {"rel_type": "m.replace", "event_id": target},
            "m.new_content": {"msgtype": "m.text", "body": "y"}})
        self.send(self.alice_token, self.room, {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": target, "key": "👍"}}, "m.reaction")
        dave = self.register_user("dave")
        self.join(dave, self.room)
        self.assertEqual(self.pair(self.bob), base)

    def test_invite_not_counted(self) -> None:
        """An invite leaves no unread count for the invitee (they are not joined)."""
        room = self.create_room(self.alice_token)
        dave = self.register_user("dave")
        self.invite(self.alice, room, dave)
        rows = self.get_success(self.hs.get_datastores().db.execute(
            "t", "SELECT recipients FROM event_push_actions WHERE room_id = ?", room))
        self.assertEqual(rows, [])
        self.join(dave, room)
        self.assertEqual(self.counts(dave, [room]), {})

    def test_display_name_mention(self) -> None:
        """The room display name in the body highlights (legacy rule)."""
        self.get_success(self.hs.get_room_member_handler().update_membership(
            self.bob, self.room, self.bob, "join", extra_content={"displayname": "Robert"}))
        self.text(self.alice_token, self.room, "ask robert.")
        self.assertEqual(self.pair(self.bob), (1, 1))
        self.text(self.alice_token, self.room, "ask roberta")
        self.assertEqual(self.pair(self.bob), (2, 1))

    def test_left_members_not_counted(self) -> None:
        """Members who left get nothing for later events."""
        self.leave(self.carol, self.room)
        self.text(self.alice_token, self.room, "after")
        self.assertEqual(self.pair(self.carol), (0, 0))
        self.assertEqual(self.pair(self.bob), (1, 0))

    def test_bulk_timing(self) -> None:
        """Prints the cost of evaluating one message for 50 local members (no assert on
        time: a figure for docs/sync.md)."""
        room = self.create_room(self.alice_token, {"preset": "public_chat"})
        for i in range(50):
            self.join(self.register_user(f"member{i}"), room)
        self.send(self.alice_token, room, {"msgtype": "m.text", "body": "warm up"})
        stores = self.hs.get_datastores()
        ids = self.get_success(stores.state.get_current_state_ids(room))
        event = self.get_success(stores.events.get_event(
            self.get_success(stores.events.get_forward_extremities(room))[0][0]))
        assert event is not None and ids
        bulk = self.hs.get_bulk_push_rule_evaluator()
        n = 1000
        start = time.perf_counter()
        for _ in range(n):
            actions = self.get_success(bulk.actions_for_event(event))
        elapsed = time.perf_counter() - start
        self.assertEqual(len(actions), 50)
        print(f"\nbulk push: {n} events x 50 members in {elapsed:.3f}s "
              f"({elapsed / n * 1e6:.0f} us/event, {elapsed / n / 50 * 1e6:.1f} us/member)"
              f" [{self.db_engine}]")


class SharedDefaultAnswerTestCase(RoomHelpers, HomeserverTestCase):
    """Users on the default rules share one evaluation unless the event may name them:
    the shared answer must never hide a mention."""

    def test_mentions_still_highlight_among_many_members(self) -> None:
        from handlers.bulk_push import _may_name
        from homeserver.push_rules import user_context

        alice = self.register_user("alice")
        token = self.login("alice")
        room_id = self.create_room(token, {"preset": "public_chat"})
        names = [self.register_user(f"member{i}") for i in range(6)]
        for user_id in names:
            self.join(user_id, room_id)
        evaluator = self.hs.get_bulk_push_rule_evaluator()
        events = self.hs.get_datastores().events
        plain = self.send_message(token, room_id, "hello everyone")
        named = self.send_message(token, room_id, "hey member3, look")
        for event_id, highlighted in ((plain, set()), (named, {names[3]})):
            event = self.get_success(events.get_event(event_id))
            actions = self.get_success(evaluator.actions_for_event(event))
            self.assertEqual({a[0] for a in actions}, set(names))
            self.assertEqual({a[0] for a in actions if a[2]}, highlighted)
            self.assertNotIn(alice, {a[0] for a in actions})
        # The pre-check is a superset: it may say yes wrongly, never no wrongly.
        user = user_context("@bob:test", "Bobby Tables")
        self.assertTrue(_may_name(user, "ask bobby tables", frozenset(), None))
        self.assertTrue(_may_name(user, "nothing", frozenset({"@bob:test"}), None))
        self.assertTrue(_may_name(user, "", frozenset(), "@bob:test"))
        self.assertFalse(_may_name(user, "hello world", frozenset(), None))
