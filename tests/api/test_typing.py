"""PUT /rooms/{roomId}/typing/{userId} and the in-memory typing stream for /sync."""

from __future__ import annotations

from typing import Any

from handlers.typing import TypingHandler
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


class TypingTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.carol = self.register_user("carol")
        self.carol_token = self.login("carol")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, self.room_id)
        self.handler = hs.get_typing_handler()

    def typing(self, body: Any, user_id: str | None = None, token: str | None = None,
               room_id: str | None = None) -> Any:
        return self.make_request(
            "PUT", f"{CLIENT}/rooms/{room_id or self.room_id}/typing/{user_id or self.alice}",
            body, access_token=token or self.alice_token)

    def ok_typing(self, body: Any, user_id: str | None = None,
                  token: str | None = None) -> None:
        channel = self.typing(body, user_id, token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})

    def sync(self, from_key: int | None, room_ids: list[str] | None = None
             ) -> dict[str, Any]:
        result: dict[str, Any] = self.handler.get_typing_for_sync(
            room_ids or [self.room_id], from_key, self.handler.get_current_key())
        return result

    def typers(self, from_key: int | None = None) -> list[str] | None:
        event = self.sync(from_key).get(self.room_id)
        if event is None:
            return None
        self.assertEqual(event["type"], "m.typing")
        users: list[str] = event["content"]["user_ids"]
        return users

    # -- success paths --

    def test_start_and_stop(self) -> None:
        """Typing shows in the room's m.typing; stopping sends an empty list after it."""
        key0 = self.handler.get_current_key()
        self.ok_typing({"typing": True, "timeout": 30000})
        key1 = self.handler.get_current_key()
        self.assertGreater(key1, key0)
        self.assertEqual(self.typers(), [self.alice])
        self.assertEqual(self.typers(key0), [self.alice])
        self.assertIsNone(self.typers(key1))
        self.ok_typing({"typing": True, "timeout": 30000}, self.bob, self.bob_token)
        self.assertEqual(self.typers(), sorted([self.alice, self.bob]))
        key2 = self.handler.get_current_key()
        self.ok_typing({"typing": False}, self.bob, self.bob_token)
        self.ok_typing({"typing": False})
        self.assertEqual(self.typers(key2), [])
        # An initial sync leaves out rooms where nobody types.
        self.assertIsNone(self.typers())
        # Stopping when not typing changes nothing.
        key3 = self.handler.get_current_key()
        self.ok_typing({"typing": False})
        self.assertEqual(self.handler.get_current_key(), key3)

    def test_expiry(self) -> None:
        """Typing ends at the timeout: the stream advances and the room is announced."""
        self.ok_typing({"typing": True, "timeout": 10000})
        key = self.handler.get_current_key()
        notifier = self.hs.get_notifier()
        version = notifier.current_version()
        self.reactor.advance(9)
        self.assertEqual(self.typers(), [self.alice])
        self.assertEqual(self.handler.get_current_key(), key)
        self.reactor.advance(2)
        self.assertIsNone(self.typers())
        self.assertEqual(self.typers(key), [])
        self.assertGreater(self.handler.get_current_key(), key)
        self.assertTrue(self.get_success(
            notifier.wait_for_events(self.bob, [self.room_id], version, 0)))
        self.assertEqual(notifier.positions["typing"], self.handler.get_current_key())

    def test_renewal_extends_timeout(self) -> None:
        """Typing again restarts the timer without a new stream change."""
        self.ok_typing({"typing": True, "timeout": 10000})
        key = self.handler.get_current_key()
        self.reactor.advance(8)
        self.ok_typing({"typing": True, "timeout": 10000})
        self.assertEqual(self.handler.get_current_key(), key)
        self.reactor.advance(5)
        self.assertEqual(self.typers(), [self.alice])
        self.reactor.advance(6)
        self.assertIsNone(self.typers())

    def test_timeout_capped(self) -> None:
        """A huge timeout is capped at 120 seconds."""
        self.ok_typing({"typing": True, "timeout": 10**12})
        self.reactor.advance(119)
        self.assertEqual(self.typers(), [self.alice])
        self.reactor.advance(2)
        self.assertIsNone(self.typers())

    def test_stop_cancels_timer(self) -> None:
        """Stopping then typing again: the first timer does not end the second typing."""
        self.ok_typing({"typing": True, "timeout": 10000})
        self.reactor.advance(5)
        self.ok_typing({"typing": False})
        self.ok_typing({"typing": True, "timeout": 10000})
        self.reactor.advance(7)
        self.assertEqual(self.typers(), [self.alice])

    def test_leaving_stops_typing(self) -> None:
        """A member who leaves stops typing."""
        self.ok_typing({"typing": True, "timeout": 30000}, self.bob, self.bob_token)
        key = self.handler.get_current_key()
        self.leave(self.bob, self.room_id)
        self.assertEqual(self.typers(key), [])
        self.assertEqual(self.handler.get_typing_users(self.room_id), [])

    def test_sync_filters_rooms(self) -> None:
        """Only the rooms asked about appear; other rooms' changes are not reported."""
        other = self.create_room(self.alice_token)
        key = self.handler.get_current_key()
        channel = self.typing({"typing": True, "timeout": 30000}, room_id=other)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.sync(key), {})
        self.assertEqual(self.sync(None), {})
        both = self.sync(key, [self.room_id, other])
        self.assertEqual(list(both), [other])
        self.assertEqual(both[other]["content"]["user_ids"], [self.alice])
        # The large-side path (more rooms asked than ever changed) agrees.
        many = [self.room_id, other] + [f"!x{i}:test" for i in range(10)]
        self.assertEqual(self.sync(key, many), both)

    def test_positions_grow_across_restart(self) -> None:
        """The stream starts at the boot time in ms and keeps growing past it."""
        boot_ms = self.hs.get_clock().time_msec()
        first = TypingHandler(self.hs)
        self.assertGreaterEqual(first.get_current_key(), boot_ms)
        for _ in range(5):
            self.get_success(first.set_typing(self.alice, self.alice, self.room_id, True, 1000))
            self.get_success(first.set_typing(self.alice, self.alice, self.room_id, False,
                                              None))
        before_restart = first.get_current_key()
        self.reactor.advance(1)
        second = TypingHandler(self.hs)
        self.assertGreater(second.get_current_key(), before_restart)
        self.get_success(second.set_typing(self.alice, self.alice, self.room_id, True,
                                           100_000))
        # A token from before the "restart" still sees the new typing.
        self.assertEqual(list(second.get_typing_for_sync(
            [self.room_id], before_restart, second.get_current_key())), [self.room_id])
        # Positions also follow the clock when it moves on.
        self.reactor.advance(60)
        key = second.get_current_key()
        self.get_success(second.set_typing(self.alice, self.alice, self.room_id, False, None))
        self.assertGreaterEqual(second.get_current_key(), self.hs.get_clock().time_msec())
        self.assertGreater(second.get_current_key(), key)
        first.stop()
        second.stop()

    # -- errors --

    def test_other_user(self) -> None:
        """Setting another user's typing: 403 M_FORBIDDEN."""
        self.assert_error(self.typing({"typing": True, "timeout": 1000}, self.bob), 403,
                          "M_FORBIDDEN")
        self.assertIsNone(self.typers())

    def test_not_joined(self) -> None:
        """Non-members, left members and unknown rooms: 403 M_FORBIDDEN."""
        self.assert_error(self.typing({"typing": True, "timeout": 1000}, self.carol,
                                      self.carol_token), 403, "M_FORBIDDEN")
        self.assert_error(self.typing({"typing": True, "timeout": 1000},
                                      room_id="!nope:test"), 403, "M_FORBIDDEN")
        self.leave(self.bob, self.room_id)
        self.assert_error(self.typing({"typing": True, "timeout": 1000}, self.bob,
                                      self.bob_token), 403, "M_FORBIDDEN")
        self.assertIsNone(self.typers())

    def test_bad_body(self) -> None:
        """Wrong types: 400 M_BAD_JSON; missing fields: 400 M_MISSING_PARAM."""
        for body in ({"typing": "yes", "timeout": 1000}, {"typing": 1, "timeout": 1000},
                     {"typing": True, "timeout": "1000"}, {"typing": True, "timeout": 1.5},
                     {"typing": True, "timeout": True}, [True]):
            self.assert_error(self.typing(body), 400, "M_BAD_JSON")
        self.assert_error(self.typing({"timeout": 1000}), 400, "M_MISSING_PARAM")
        self.assert_error(self.typing({"typing": True}), 400, "M_MISSING_PARAM")
        self.assert_error(self.typing({"typing": True, "timeout": -1}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.typing(b"nope"), 400, "M_NOT_JSON")
        self.assertIsNone(self.typers())

    def test_needs_token(self) -> None:
        """Without an access token: 401 M_MISSING_TOKEN."""
        channel = self.make_request(
            "PUT", f"{CLIENT}/rooms/{self.room_id}/typing/{self.alice}", {"typing": False})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")
