"""History visibility on the read paths: each setting x each kind of member, through
GET /event, plus history_visibility changes and the batched filter's query count."""

from __future__ import annotations

from typing import Any

from handlers.visibility import VisibilityHandler
from homeserver.events import Event
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase

USERS = ("alice", "frank", "bob", "carol", "dave", "erin")

# Timeline (see `_build_room`): frank and dave join; E1; carol is invited; dave leaves;
# E2; bob joins; E3. erin is never a member. Expected visible messages per user:
EXPECTED: dict[str, dict[str, set[str]]] = {
    "world_readable": {"frank": {"E1", "E2", "E3"}, "bob": {"E1", "E2", "E3"},
                       "carol": {"E1", "E2", "E3"}, "dave": {"E1", "E2", "E3"},
                       "erin": {"E1", "E2", "E3"}},
    "shared": {"frank": {"E1", "E2", "E3"}, "bob": {"E1", "E2", "E3"},
               "carol": set(), "dave": {"E1"}, "erin": set()},
    "invited": {"frank": {"E1", "E2", "E3"}, "bob": {"E3"},
                "carol": {"E2", "E3"}, "dave": {"E1"}, "erin": set()},
    "joined": {"frank": {"E1", "E2", "E3"}, "bob": {"E3"},
               "carol": set(), "dave": {"E1"}, "erin": set()},
}


class VisibilityTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.tokens = {}
        for name in USERS:
            self.register_user(name)
            self.tokens[name] = self.login(name)

    def uid(self, name: str) -> str:
        return f"@{name}:test"

    def _build_room(self, visibility: str) -> tuple[str, dict[str, str]]:
        room_id = self.create_room(self.tokens["alice"], {"preset": "public_chat"})
        self.send_state(self.tokens["alice"], room_id, "m.room.history_visibility",
                        {"history_visibility": visibility})
        ids: dict[str, str] = {}
        self.join(self.uid("frank"), room_id)
        ids["dave_join"] = self.join(self.uid("dave"), room_id)
        ids["E1"] = self.send_message(self.tokens["alice"], room_id, "E1")
        ids["carol_invite"] = self.invite(self.uid("alice"), room_id, self.uid("carol"))
        ids["dave_leave"] = self.leave(self.uid("dave"), room_id)
        ids["E2"] = self.send_message(self.tokens["alice"], room_id, "E2")
        ids["bob_join"] = self.join(self.uid("bob"), room_id)
        ids["E3"] = self.send_message(self.tokens["alice"], room_id, "E3")
        return room_id, ids

    def can_see(self, name: str, room_id: str, event_id: str) -> bool:
        channel = self.make_request("GET", f"{CLIENT}/rooms/{room_id}/event/{event_id}",
                                    access_token=self.tokens[name])
        if channel.code == 404:
            self.assertEqual(channel.json_body["errcode"], "M_NOT_FOUND")
            return False
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["event_id"], event_id)
        return True

    def test_visibility_table(self) -> None:
        """Each history_visibility x joined before/after, invited, left, never member."""
        for visibility, per_user in EXPECTED.items():
            room_id, ids = self._build_room(visibility)
            for name, expected in per_user.items():
                with self.subTest(visibility=visibility, user=name):
                    seen = {m for m in ("E1", "E2", "E3")
                            if self.can_see(name, room_id, ids[m])}
                    self.assertEqual(seen, expected)

    def test_own_membership_events_visible(self) -> None:
        """Under `joined`, carol sees her invite and dave his leave; erin sees neither."""
        room_id, ids = self._build_room("joined")
        self.assertTrue(self.can_see("carol", room_id, ids["carol_invite"]))
        self.assertTrue(self.can_see("dave", room_id, ids["dave_leave"]))
        self.assertTrue(self.can_see("dave", room_id, ids["dave_join"]))
        self.assertFalse(self.can_see("erin", room_id, ids["carol_invite"]))
        self.assertFalse(self.can_see("carol", room_id, ids["dave_leave"]))
        # bob sees dave's leave? It happened before bob joined, under `joined`: no.
        self.assertFalse(self.can_see("bob", room_id, ids["dave_leave"]))

    def test_history_visibility_change_seen_from_either_side(self) -> None:
        """A non-member sees both the change to and the change from world_readable, but
        not a message sent after the room closed."""
        alice = self.tokens["alice"]
        room_id = self.create_room(alice, {"preset": "public_chat"})
        self.send_state(alice, room_id, "m.room.history_visibility",
                        {"history_visibility": "joined"})
        hidden = self.send_message(alice, room_id, "hidden")
        opened = self.send_state(alice, room_id, "m.room.history_visibility",
                                 {"history_visibility": "world_readable"})
        public = self.send_message(alice, room_id, "public")
        closed = self.send_state(alice, room_id, "m.room.history_visibility",
                                 {"history_visibility": "joined"})
        after = self.send_message(alice, room_id, "after")
        self.assertFalse(self.can_see("erin", room_id, hidden))
        self.assertTrue(self.can_see("erin", room_id, opened))
        self.assertTrue(self.can_see("erin", room_id, public))
        self.assertTrue(self.can_see("erin", room_id, closed))
        self.assertFalse(self.can_see("erin", room_id, after))

    def test_filter_keeps_order_and_drops_hidden(self) -> None:
        """filter_events_for_client returns the visible events in their given order."""
        room_id, ids = self._build_room("joined")
        events = self._events([ids["E3"], ids["E1"], ids["E2"], ids["carol_invite"]])
        handler = self.hs.get_visibility_handler()
        visible = self.get_success(handler.filter_events_for_client(self.uid("bob"), events))
        self.assertEqual([e.event_id for e in visible], [ids["E3"]])
        visible = self.get_success(handler.filter_events_for_client(self.uid("carol"), events))
        self.assertEqual([e.event_id for e in visible], [ids["carol_invite"]])
        visible = self.get_success(handler.filter_events_for_client(
            self.uid("erin"), events, always_include_ids={ids["E1"]}))
        self.assertEqual([e.event_id for e in visible], [ids["E1"]])

    def test_filter_100_events_query_count(self) -> None:
        """Filtering 100 events of one room batches its lookups: at most one query right
        after the sends, none warm, four with every cache dropped."""
        alice = self.tokens["alice"]
        room_id = self.create_room(alice, {"preset": "public_chat"})
        self.join(self.uid("bob"), room_id)
        event_ids = []
        for i in range(100):
            if i % 10 == 0:
                # Some state changes on the way, so the events span several state groups.
                event_ids.append(self.send_state(alice, room_id, "m.room.topic",
                                                 {"topic": f"t{i}"}))
            else:
                event_ids.append(self.send_message(alice, room_id, f"m{i}"))
        events = self._events(event_ids)
        handler: VisibilityHandler = self.hs.get_visibility_handler()

        # Fresh: right after the sends, the writes have primed the group caches; only the
        # m.room.history_visibility event (never read while sending) is fetched.
        fresh, fresh_result = self._count_interactions(
            lambda: handler.filter_events_for_client(self.uid("bob"), events))
        self.assertEqual(len(fresh_result), 100)
        self.assertLessEqual(fresh, 1)

        stores = self.hs.get_datastores()
        # Cold: drop every cache the filter reads through.
        stores.state._group_cache.clear()
        stores.state._event_group_cache.clear()
        stores.state._current_cache.clear()
        stores.events._event_cache.clear()
        cold, cold_result = self._count_interactions(
            lambda: handler.filter_events_for_client(self.uid("bob"), events))
        warm, warm_result = self._count_interactions(
            lambda: handler.filter_events_for_client(self.uid("bob"), events))
        self.assertEqual(len(cold_result), 100)
        self.assertEqual(len(warm_result), 100)
        # Cold: groups of the events, the snapshots, the state events, the current state.
        self.assertEqual(cold, 4)
        self.assertEqual(warm, 0)

    # -- helpers --

    def _events(self, event_ids: list[str]) -> list[Event]:
        found = self.get_success(self.hs.get_datastores().events.get_events(event_ids))
        return [found[e] for e in event_ids]

    def _count_interactions(self, call: Any) -> tuple[int, Any]:
        """(database transactions run, result) of awaiting `call()`."""
        db = self.hs.get_datastores().db
        original = db.run_interaction
        count = 0

        async def counting(desc: str, func: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal count
            count += 1
            return await original(desc, func, *args, **kwargs)

        db.run_interaction = counting  # type: ignore[method-assign]
        try:
            result = self.get_success(call())
        finally:
            del db.run_interaction
        return count, result
