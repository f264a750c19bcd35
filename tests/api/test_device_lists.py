"""The device-list stream: positions, notifications and `device_lists` for /sync."""

from __future__ import annotations

from typing import Any

from storage.stores.device_lists import DeviceListStore
from tests.api.room_helpers import CLIENT, RoomHelpers
from tests.harness import HomeserverTestCase


class DeviceListsTestCase(RoomHelpers, HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.handler = hs.get_device_list_handler()
        self.events = hs.get_datastores().events
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice", device_id="ALICE1")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob", device_id="BOB1")
        self.carol = self.register_user("carol")
        self.carol_token = self.login("carol", device_id="CAROL1")
        self.room_id = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, self.room_id)

    # -- helpers --

    def position(self) -> tuple[int, int]:
        """(device-list key, room key) of a sync token taken now."""
        return self.handler.get_current_key(), self.events.get_room_max_stream_ordering()

    def changes(self, user_id: str, since: tuple[int, int] | None
                ) -> tuple[list[str], list[str]]:
        now_key, now_room = self.position()
        result: tuple[list[str], list[str]] = self.get_success(
            self.handler.get_changes_for_sync(
                user_id, since[0] if since else None, since[1] if since else None,
                now_key, now_room))
        return result

    def count_queries(self) -> list[str]:
        """Record every database interaction from now on (their descriptions)."""
        db = self.hs.get_datastores().db
        calls: list[str] = []
        original = db.run_interaction

        async def counting(desc: str, func: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(desc)
            return await original(desc, func, *args, **kwargs)

        db.run_interaction = counting
        self.addCleanup(setattr, db, "run_interaction", original)
        return calls

    # -- device changes --

    def test_initial_sync_is_empty(self) -> None:
        """No since token: nothing is changed or left, even after changes."""
        self.login("bob")
        self.assertEqual(self.changes(self.alice, None), ([], []))

    def test_login_of_room_mate_is_changed(self) -> None:
        """A new device of a room-mate: the room-mate is in `changed` (for them too)."""
        since = self.position()
        self.login("bob")
        self.assertEqual(self.changes(self.alice, since), ([self.bob], []))
        self.assertEqual(self.changes(self.bob, since), ([self.bob], []))
        self.assertEqual(self.changes(self.carol, since), ([], []))

    def test_login_of_stranger_is_not_changed(self) -> None:
        """A user sharing no room: their login is not reported to alice, only to them."""
        since = self.position()
        self.login("carol")
        self.assertEqual(self.changes(self.alice, since), ([], []))
        self.assertEqual(self.changes(self.carol, since), ([self.carol], []))

    def test_own_login_is_changed(self) -> None:
        """The syncing user's own new device is reported to them."""
        since = self.position()
        self.login("alice")
        self.assertEqual(self.changes(self.alice, since), ([self.alice], []))

    def test_login_with_existing_device_changes_nothing(self) -> None:
        """Logging in again with a known device ID creates no device: no position."""
        since = self.position()
        self.login("bob", device_id="BOB1")
        self.assertEqual(self.position(), since)
        self.assertEqual(self.changes(self.alice, since), ([], []))

    def test_registration_device_is_changed(self) -> None:
        """Registering through the API creates a device: a stream position."""
        before = self.handler.get_current_key()
        channel = self.make_request("POST", f"{CLIENT}/register", {
            "username": "dave", "password": "password-dave-1",
            "auth": {"type": "m.login.dummy"}})
        if channel.code == 401:  # UIA session first
            channel = self.make_request("POST", f"{CLIENT}/register", {
                "username": "dave", "password": "password-dave-1",
                "auth": {"type": "m.login.dummy",
                         "session": channel.json_body["session"]}})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertGreater(self.handler.get_current_key(), before)

    def test_logout_is_changed(self) -> None:
        """Logging out deletes the device: room-mates see bob in `changed`."""
        since = self.position()
        channel = self.make_request("POST", f"{CLIENT}/logout", {},
                                    access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.changes(self.alice, since), ([self.bob], []))

    def test_logout_all_is_changed(self) -> None:
        """logout/all deletes every device: one change for the user."""
        self.login("bob", device_id="BOB2")
        since = self.position()
        channel = self.make_request("POST", f"{CLIENT}/logout/all", {},
                                    access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.changes(self.alice, since), ([self.bob], []))

    def test_delete_devices(self) -> None:
        """Deleting a device is a change; deleting unknown devices is none."""
        self.login("bob", device_id="BOB2")
        devices = self.hs.get_device_handler()
        since = self.position()
        self.get_success(devices.delete_devices(self.bob, ["NOPE"]))
        self.assertEqual(self.position(), since)
        self.get_success(devices.delete_devices(self.bob, ["BOB2", "NOPE"]))
        self.assertEqual(self.changes(self.alice, since), ([self.bob], []))

    def test_deactivation_is_changed(self) -> None:
        """Deactivation deletes every device and parts every room: room-mates hear
        about it, as a user they no longer share a room with (`left`)."""
        since = self.position()
        self.get_success(self.hs.get_account_handler().deactivate(self.bob))
        self.assertEqual(self.changes(self.alice, since), ([], [self.bob]))

    def test_rename_is_changed(self) -> None:
        """PUT /devices/{id} with a display name is a change."""
        since = self.position()
        channel = self.make_request("PUT", f"{CLIENT}/devices/BOB1",
                                    {"display_name": "phone"}, access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.changes(self.alice, since), ([self.bob], []))

    def test_bad_renames_change_nothing(self) -> None:
        """Unknown devices (404), other users' devices (404), wrong types (400), too
        long names (400) and empty bodies leave the stream where it was."""
        since = self.position()
        put = self.make_request
        self.assert_error(put("PUT", f"{CLIENT}/devices/NOPE", {"display_name": "x"},
                              access_token=self.bob_token), 404, "M_NOT_FOUND")
        self.assert_error(put("PUT", f"{CLIENT}/devices/ALICE1", {"display_name": "x"},
                              access_token=self.bob_token), 404, "M_NOT_FOUND")
        self.assert_error(put("PUT", f"{CLIENT}/devices/BOB1", {"display_name": 5},
                              access_token=self.bob_token), 400, "M_BAD_JSON")
        self.assert_error(put("PUT", f"{CLIENT}/devices/BOB1", {"display_name": "x" * 101},
                              access_token=self.bob_token), 400, "M_TOO_LARGE")
        channel = put("PUT", f"{CLIENT}/devices/BOB1", {}, access_token=self.bob_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.position()[0], since[0])
        self.assertEqual(self.changes(self.alice, since), ([], []))

    # -- membership changes --

    def test_user_joining_shared_room_is_changed(self) -> None:
        """carol joins alice's room: alice must fetch carol's devices."""
        since = self.position()
        self.join(self.carol, self.room_id)
        self.assertEqual(self.changes(self.alice, since), ([self.carol], []))

    def test_joining_a_room_reports_its_members(self) -> None:
        """carol joins a room: every member is new to her (but not herself)."""
        since = self.position()
        self.join(self.carol, self.room_id)
        self.assertEqual(self.changes(self.carol, since), ([self.alice, self.bob], []))

    def test_invite_is_not_changed(self) -> None:
        """An invite is not a joined room: nothing to report yet."""
        since = self.position()
        self.invite(self.alice, self.room_id, self.carol)
        self.assertEqual(self.changes(self.alice, since), ([], []))
        self.assertEqual(self.changes(self.carol, since), ([], []))

    def test_other_leaving_only_shared_room_is_left(self) -> None:
        """bob leaves the only room he shares with alice: bob is `left` for alice."""
        since = self.position()
        self.leave(self.bob, self.room_id)
        self.assertEqual(self.changes(self.alice, since), ([], [self.bob]))

    def test_leaving_only_shared_room_is_left_for_leaver(self) -> None:
        """bob leaves: from bob's side, alice is `left`."""
        since = self.position()
        self.leave(self.bob, self.room_id)
        self.assertEqual(self.changes(self.bob, since), ([], [self.alice]))

    def test_kick_is_left(self) -> None:
        """A kicked user no longer shares the room: `left`."""
        since = self.position()
        self.set_membership(self.alice, self.room_id, self.bob, "leave")
        self.assertEqual(self.changes(self.alice, since), ([], [self.bob]))

    def test_leaving_one_of_two_shared_rooms_is_not_left(self) -> None:
        """Still sharing another room: not `left`."""
        other = self.create_room(self.alice_token, {"preset": "public_chat"})
        self.join(self.bob, other)
        since = self.position()
        self.leave(self.bob, self.room_id)
        self.assertEqual(self.changes(self.alice, since), ([], []))
        self.assertEqual(self.changes(self.bob, since), ([], []))

    def test_leave_and_rejoin_is_changed_not_left(self) -> None:
        """Left and came back within one sync: `changed`, not `left`."""
        since = self.position()
        self.leave(self.bob, self.room_id)
        self.join(self.bob, self.room_id)
        self.assertEqual(self.changes(self.alice, since), ([self.bob], []))

    def test_device_change_after_leaving_is_not_changed(self) -> None:
        """A user who left (and changed devices) is `left`, not `changed`."""
        since = self.position()
        self.leave(self.bob, self.room_id)
        self.login("bob")
        self.assertEqual(self.changes(self.alice, since), ([], [self.bob]))

    def test_changes_after_now_are_not_reported(self) -> None:
        """Changes past the `now` positions wait for the next sync."""
        since = self.position()
        now = self.position()
        self.login("bob")
        self.join(self.carol, self.room_id)
        result = self.get_success(self.handler.get_changes_for_sync(
            self.alice, since[0], since[1], now[0], now[1]))
        self.assertEqual(result, ([], []))
        self.assertEqual(self.changes(self.alice, now), ([self.bob, self.carol], []))

    # -- cost, positions, notifications --

    def test_nothing_changed_reads_nothing(self) -> None:
        """Neither position moved: empty, and no database query at all."""
        since = self.position()
        calls = self.count_queries()
        self.assertEqual(self.changes(self.alice, since), ([], []))
        self.assertEqual(calls, [])

    def test_messages_only_is_empty(self) -> None:
        """The room stream moved without membership changes: nothing reported, and the
        device-list table is not read."""
        since = self.position()
        self.send_message(self.alice_token, self.room_id)
        calls = self.count_queries()
        self.assertEqual(self.changes(self.alice, since), ([], []))
        self.assertNotIn("get_device_list_users_changed", calls)

    def test_positions_grow_and_survive_restart(self) -> None:
        """Each change takes a higher position; a new store restarts at the same one."""
        first = self.handler.get_current_key()
        self.login("bob")
        second = self.handler.get_current_key()
        self.make_request("PUT", f"{CLIENT}/devices/BOB1", {"display_name": "x"},
                          access_token=self.bob_token)
        third = self.handler.get_current_key()
        self.assertLess(first, second)
        self.assertLess(second, third)
        restarted = DeviceListStore(self.hs.get_datastores().db)
        self.assertEqual(restarted.get_current_position(), third)

    def test_notifier_wakes_room_mates(self) -> None:
        """A device change wakes the user and their room-mates, not strangers."""
        notifier = self.hs.get_notifier()
        version = notifier.current_version()
        self.login("bob")
        self.assertEqual(notifier.positions["device_list"], self.handler.get_current_key())

        def woken(user_id: str) -> bool:
            result: bool = self.get_success(notifier.wait_for_events(user_id, [], version, 0))
            return result

        self.assertTrue(woken(self.bob))
        self.assertTrue(woken(self.alice))
        self.assertFalse(woken(self.carol))

    def test_users_joined_to_any_chunks(self) -> None:
        """The store's sharing filter answers for long user lists (chunked IN lists)."""
        store = self.hs.get_datastores().device_lists
        users = [f"@u{i}:test" for i in range(900)] + [self.bob, self.carol]
        found = self.get_success(store.get_users_joined_to_any(users, [self.room_id]))
        self.assertEqual(found, {self.bob})
        self.assertEqual(self.get_success(store.get_users_joined_to_any([], [self.room_id])),
                         set())
