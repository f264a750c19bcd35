"""Presence: GET/PUT /presence/{userId}/status, the presence stream for /sync, timers."""

from __future__ import annotations

from typing import Any

from handlers.presence import (
    IDLE_TIMER_MS,
    LAST_ACTIVE_GRANULARITY_MS,
    OFFLINE_AFTER_MS,
    TIMEOUT_CHECK_START_DELAY_S,
)
from homeserver.config import HomeServerConfig
from homeserver.errors import ConfigError
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import DEFAULT_CONFIG, HomeserverTestCase, override_config


class PresenceTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.carol = self.register_user("carol")
        self.carol_token = self.login("carol")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, self.room_id)
        self.presence = hs.get_presence_handler()

    def put(self, user_id: str, body: Any, token: str | None = None) -> Any:
        return self.make_request("PUT", f"{CLIENT}/presence/{user_id}/status", body,
                                 access_token=token or self.alice_token)

    def get(self, user_id: str, token: str | None = None) -> Any:
        return self.make_request("GET", f"{CLIENT}/presence/{user_id}/status",
                                 access_token=token or self.alice_token)

    def sync_presence(self, user_id: str, from_key: int | None) -> dict[str, dict[str, Any]]:
        events = self.get_success(self.presence.get_presence_for_sync(
            user_id, from_key, self.presence.get_current_key()))
        for e in events:
            self.assertEqual(e["type"], "m.presence")
        return {e["sender"]: e["content"] for e in events}

    # -- PUT / GET --

    def test_put_and_get_own_presence(self) -> None:
        """PUT sets state and status message; GET returns them with activity fields."""
        channel = self.put(self.alice, {"presence": "online", "status_msg": "here"})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        self.reactor.advance(2)
        channel = self.get(self.alice)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"presence": "online", "status_msg": "here",
                                             "currently_active": True,
                                             "last_active_ago": 2000})

    def test_put_unavailable_then_clear_status(self) -> None:
        """Setting `unavailable` is not activity; omitting status_msg clears it."""
        self.put(self.alice, {"presence": "online", "status_msg": "x"})
        self.reactor.advance(10)
        self.assertEqual(self.put(self.alice, {"presence": "unavailable"}).code, 200)
        body = self.get(self.alice).json_body
        self.assertEqual(body["presence"], "unavailable")
        self.assertNotIn("status_msg", body)
        self.assertFalse(body["currently_active"])
        self.assertEqual(body["last_active_ago"], 10_000)

    def test_get_never_set(self) -> None:
        """A user who never had presence is offline, without activity fields."""
        channel = self.get(self.bob)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"presence": "offline", "currently_active": False})

    def test_put_other_user_forbidden(self) -> None:
        """Setting another user's presence is 403 M_FORBIDDEN."""
        self.assert_error(self.put(self.bob, {"presence": "online"}), 403, "M_FORBIDDEN")
        self.assertEqual(self.get(self.bob).json_body["presence"], "offline")

    def test_put_bad_input(self) -> None:
        """Bad values and types give 400 with the matching errcode."""
        self.assert_error(self.put(self.alice, {"presence": "busy"}), 400, "M_INVALID_PARAM")
        self.assert_error(self.put(self.alice, {"presence": 1}), 400, "M_BAD_JSON")
        self.assert_error(self.put(self.alice, {"presence": "online", "status_msg": 5}),
                          400, "M_BAD_JSON")
        self.assert_error(self.put(self.alice, {}), 400, "M_MISSING_PARAM")
        self.assert_error(self.put(self.alice, ["online"]), 400, "M_BAD_JSON")
        self.assert_error(self.put(self.alice, b"{nope"), 400, "M_NOT_JSON")
        self.assertEqual(self.get(self.alice).json_body["presence"], "offline")

    def test_needs_token(self) -> None:
        """Both endpoints need an access token."""
        channel = self.make_request("GET", f"{CLIENT}/presence/{self.alice}/status")
        self.assert_error(channel, 401, "M_MISSING_TOKEN")
        channel = self.make_request("PUT", f"{CLIENT}/presence/{self.alice}/status",
                                    {"presence": "online"})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    def test_get_visibility(self) -> None:
        """GET works for room-mates and oneself; 403 without a shared room."""
        self.put(self.alice, {"presence": "online"})
        self.assertEqual(self.get(self.alice, self.bob_token).json_body["presence"], "online")
        self.assertEqual(self.get(self.carol, self.carol_token).code, 200)
        self.assert_error(self.get(self.alice, self.carol_token), 403, "M_FORBIDDEN")
        # An invite is not enough; a join is.
        self.invite(self.alice, self.room_id, self.carol)
        self.assert_error(self.get(self.alice, self.carol_token), 403, "M_FORBIDDEN")
        self.join(self.carol, self.room_id)
        self.assertEqual(self.get(self.alice, self.carol_token).code, 200)

    def test_unknown_users_look_like_strangers(self) -> None:
        """An unknown user, local or remote, gets the very answer of a real user sharing
        no room (403, same body), so presence does not tell who has an account."""
        stranger = self.get(self.alice, self.carol_token)
        self.assert_error(stranger, 403, "M_FORBIDDEN")
        for user_id in ("@nobody:test", "@someone:elsewhere.org"):
            channel = self.get(user_id, self.carol_token)
            self.assertEqual((channel.code, channel.json_body),
                             (stranger.code, stranger.json_body))

    # -- /sync stream --

    def test_sync_changes_only_to_room_mates(self) -> None:
        """A change reaches the user and room-mates, not users sharing no room."""
        start = self.presence.get_current_key()
        self.put(self.alice, {"presence": "online", "status_msg": "hi"})
        self.assertGreater(self.presence.get_current_key(), start)
        bob_view = self.sync_presence(self.bob, start)
        self.assertEqual(bob_view, {self.alice: {"presence": "online", "status_msg": "hi",
                                                 "currently_active": True,
                                                 "last_active_ago": 0}})
        self.assertIn(self.alice, self.sync_presence(self.alice, start))
        self.assertEqual(self.sync_presence(self.carol, start), {})
        # Nothing new since the current position.
        self.assertEqual(self.sync_presence(self.bob, self.presence.get_current_key()), {})
        # A user in no room still sees their own changes.
        start = self.presence.get_current_key()
        self.put(self.carol, {"presence": "unavailable"}, self.carol_token)
        self.assertEqual(set(self.sync_presence(self.carol, start)), {self.carol})
        self.assertEqual(self.sync_presence(self.alice, start), {})

    def test_sync_range_is_half_open(self) -> None:
        """Only changes in (from_key, to_key] are returned."""
        self.put(self.alice, {"presence": "online"})
        mid = self.presence.get_current_key()
        self.put(self.bob, {"presence": "unavailable"}, self.bob_token)
        end = self.presence.get_current_key()
        events = self.get_success(self.presence.get_presence_for_sync(self.alice, mid, end))
        self.assertEqual([e["sender"] for e in events], [self.bob])
        events = self.get_success(self.presence.get_presence_for_sync(self.alice, 0, mid))
        self.assertEqual([e["sender"] for e in events], [self.alice])

    def test_initial_sync_skips_offline(self) -> None:
        """An initial sync lists current non-offline presence of room-mates and self."""
        self.put(self.alice, {"presence": "online"})
        self.put(self.bob, {"presence": "offline", "status_msg": "gone"}, self.bob_token)
        self.assertEqual(set(self.sync_presence(self.alice, None)), {self.alice})
        self.put(self.bob, {"presence": "unavailable"}, self.bob_token)
        self.assertEqual(set(self.sync_presence(self.alice, None)), {self.alice, self.bob})
        self.assertEqual(self.sync_presence(self.carol, None), {})

    def test_leaving_the_room_stops_updates(self) -> None:
        """After leaving the only shared room, changes are no longer sent."""
        self.leave(self.bob, self.room_id)
        start = self.presence.get_current_key()
        self.put(self.alice, {"presence": "online"})
        self.assertEqual(self.sync_presence(self.bob, start), {})

    def test_notifier_wakes_room_mates(self) -> None:
        """A change wakes the user and room-mates' syncs, not others'."""
        notifier = self.hs.get_notifier()
        version = notifier.current_version()
        self.put(self.alice, {"presence": "online"})
        self.assertEqual(notifier.positions["presence"], self.presence.get_current_key())

        def woken(user_id: str) -> bool:
            result: bool = self.get_success(notifier.wait_for_events(user_id, [], version, 0))
            return result

        self.assertTrue(woken(self.alice))
        self.assertTrue(woken(self.bob))
        self.assertFalse(woken(self.carol))

    def test_no_stream_change_without_visible_change(self) -> None:
        """Repeating the same state while currently active does not advance the stream."""
        self.put(self.alice, {"presence": "online"})
        key = self.presence.get_current_key()
        self.reactor.advance(5)
        self.put(self.alice, {"presence": "online"})
        self.assertEqual(self.presence.get_current_key(), key)

    # -- syncing and timers --

    def test_user_syncing_brings_online(self) -> None:
        """A sync with set_presence=online brings an offline user online and active."""
        self.get_success(self.presence.user_syncing(self.alice, "online"))
        body = self.get(self.alice).json_body
        self.assertEqual(body["presence"], "online")
        self.assertTrue(body["currently_active"])

    def test_user_syncing_unavailable_and_offline(self) -> None:
        """set_presence=unavailable marks unavailable; offline leaves presence alone."""
        key = self.presence.get_current_key()
        self.get_success(self.presence.user_syncing(self.alice, "offline"))
        self.assertEqual(self.presence.get_current_key(), key)
        self.assertEqual(self.get(self.alice).json_body["presence"], "offline")
        self.get_success(self.presence.user_syncing(self.alice, "online"))
        self.get_success(self.presence.user_syncing(self.alice, "unavailable"))
        self.assertEqual(self.get(self.alice).json_body["presence"], "unavailable")

    def test_sync_keeps_status_msg(self) -> None:
        """A sync does not touch the status message."""
        self.put(self.alice, {"presence": "unavailable", "status_msg": "lunch"})
        self.get_success(self.presence.user_syncing(self.alice, "online"))
        self.assertEqual(self.get(self.alice).json_body["status_msg"], "lunch")

    def keep_syncing(self, user_id: str, seconds: int) -> None:
        for _ in range(seconds // 30):
            self.reactor.advance(30)
            self.get_success(self.presence.user_syncing(user_id, "online"))

    def test_idle_timeout(self) -> None:
        """A syncing user with no activity for 5 minutes becomes unavailable; currently
        active ends after a minute, and each step is sent to room-mates."""
        self.put(self.alice, {"presence": "online"})
        self.get_success(self.presence.user_syncing(self.alice, "online"))
        key = self.presence.get_current_key()
        self.keep_syncing(self.alice, LAST_ACTIVE_GRANULARITY_MS // 1000 + 30)
        body = self.get(self.alice).json_body
        self.assertEqual(body["presence"], "online")
        self.assertFalse(body["currently_active"])
        self.assertEqual(self.sync_presence(self.bob, key)[self.alice]["currently_active"],
                         False)
        self.keep_syncing(self.alice, IDLE_TIMER_MS // 1000)
        self.assertEqual(self.get(self.alice).json_body["presence"], "unavailable")
        self.assertEqual(self.sync_presence(self.bob, key)[self.alice]["presence"],
                         "unavailable")
        # Being active again brings them back.
        self.get_success(self.presence.bump_presence_active_time(self.alice))
        self.assertEqual(self.get(self.alice).json_body["presence"], "online")

    def test_offline_after_syncs_stop(self) -> None:
        """Without syncs the user goes offline, keeping the status message."""
        self.put(self.alice, {"presence": "online", "status_msg": "brb"})
        self.get_success(self.presence.user_syncing(self.alice, "online"))
        self.reactor.advance(OFFLINE_AFTER_MS / 1000 - 5)
        self.assertNotEqual(self.get(self.alice).json_body["presence"], "offline")
        key = self.presence.get_current_key()
        self.reactor.advance(10)
        self.assertEqual(self.get(self.alice).json_body,
                         {"presence": "offline", "status_msg": "brb",
                          "currently_active": False,
                          "last_active_ago": OFFLINE_AFTER_MS + 5000})
        self.assertEqual(self.sync_presence(self.bob, key)[self.alice]["presence"], "offline")
        # Syncing again brings them online.
        self.get_success(self.presence.user_syncing(self.alice, "online"))
        self.assertEqual(self.get(self.alice).json_body["presence"], "online")

    def test_timers_stop_on_shutdown(self) -> None:
        """The looping check starts after a delay and is stopped by the shutdown."""
        self.assertIsNone(self.presence._loop)
        self.reactor.advance(TIMEOUT_CHECK_START_DELAY_S)
        loop = self.presence._loop
        self.assertTrue(loop.running)
        self.hs.shutdown()
        self.assertFalse(loop.running)

    def test_shutdown_before_timers_start(self) -> None:
        """A shutdown before the first check cancels it."""
        self.hs.shutdown()
        self.reactor.advance(TIMEOUT_CHECK_START_DELAY_S * 2)
        self.assertIsNone(self.presence._loop)

    # -- disabled --

    @override_config({"presence": {"enabled": False}})
    def test_disabled(self) -> None:
        """With presence disabled, PUT is accepted but nothing is stored or sent."""
        key = self.presence.get_current_key()
        self.assertEqual(self.put(self.alice, {"presence": "unavailable"}).code, 200)
        self.assert_error(self.put(self.alice, {"presence": "busy"}), 400, "M_INVALID_PARAM")
        self.get_success(self.presence.user_syncing(self.alice, "online"))
        self.assertEqual(self.presence.get_current_key(), key)
        self.assertEqual(self.get(self.alice).json_body, {"presence": "offline"})
        self.assertEqual(self.get(self.alice, self.bob_token).json_body,
                         {"presence": "offline"})
        self.assertEqual(self.sync_presence(self.alice, None), {})
        self.assertEqual(self.sync_presence(self.bob, 0), {})
        self.reactor.advance(TIMEOUT_CHECK_START_DELAY_S * 2)
        self.assertIsNone(self.presence._loop)


class PresenceConfigTestCase(HomeserverTestCase):
    def test_config(self) -> None:
        """`presence.enabled` defaults to true and must be a boolean."""
        self.assertTrue(self.config.presence_enabled)
        raw = dict(DEFAULT_CONFIG, presence={"enabled": False})
        self.assertFalse(HomeServerConfig.parse(raw, "/tmp").presence_enabled)
        with self.assertRaises(ConfigError):
            HomeServerConfig.parse(dict(DEFAULT_CONFIG, presence={"enabled": "no"}), "/tmp")
        with self.assertRaises(ConfigError):
            HomeServerConfig.parse(dict(DEFAULT_CONFIG, presence=True), "/tmp")
