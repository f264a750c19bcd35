"""Account data (global and per room), room tags, ignored users, and the account-data
stream that /sync reads."""

from __future__ import annotations

from typing import Any

from storage.stores.account_data import AccountDataStore
from tests.api.room_helpers import CLIENT
from tests.harness import HomeserverTestCase

ROOM = "!room:test"
OTHER_ROOM = "!other:test"


class AccountDataTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")
        self.handler = hs.get_account_data_handler()

    # -- helpers --

    def put(self, path: str, body: Any, token: str | None = None) -> Any:
        return self.make_request("PUT", f"{CLIENT}/user/{path}", body,
                                 access_token=token or self.alice_token)

    def get(self, path: str, token: str | None = None) -> Any:
        return self.make_request("GET", f"{CLIENT}/user/{path}",
                                 access_token=token or self.alice_token)

    def delete(self, path: str, token: str | None = None) -> Any:
        return self.make_request("DELETE", f"{CLIENT}/user/{path}",
                                 access_token=token or self.alice_token)

    def ok(self, channel: Any) -> Any:
        self.assertEqual(channel.code, 200, channel.result)
        return channel.json_body

    def for_sync(self, from_key: int | None, to_key: int | None = None,
                 user_id: str | None = None) -> tuple[list[Any], dict[str, list[Any]]]:
        if to_key is None:
            to_key = self.handler.get_current_key()
        result: tuple[list[Any], dict[str, list[Any]]] = self.get_success(
            self.handler.get_account_data_for_sync(user_id or self.alice, from_key, to_key))
        return result

    # -- global account data --

    def test_global_set_get_overwrite(self) -> None:
        """PUT stores global account data, GET returns it, a second PUT replaces it."""
        self.assertEqual(self.ok(self.put(f"{self.alice}/account_data/org.example.cfg",
                                          {"a": 1})), {})
        self.assertEqual(self.ok(self.get(f"{self.alice}/account_data/org.example.cfg")),
                         {"a": 1})
        self.ok(self.put(f"{self.alice}/account_data/org.example.cfg", {"b": [1, 2]}))
        self.assertEqual(self.ok(self.get(f"{self.alice}/account_data/org.example.cfg")),
                         {"b": [1, 2]})
        self.assertEqual(self.get_success(
            self.handler.get_global_account_data(self.alice, "org.example.cfg")), {"b": [1, 2]})
        # Bob's data of the same type is separate.
        self.assert_error(self.get(f"{self.bob}/account_data/org.example.cfg", self.bob_token),
                          404, "M_NOT_FOUND")

    def test_global_not_found(self) -> None:
        """GET of a type never set gives 404 M_NOT_FOUND."""
        self.assert_error(self.get(f"{self.alice}/account_data/org.example.none"), 404,
                          "M_NOT_FOUND")
        self.assertIsNone(self.get_success(
            self.handler.get_global_account_data(self.alice, "org.example.none")))

    # -- room account data --

    def test_room_set_get_no_fallback(self) -> None:
        """Room account data is per room and never falls back to global data."""
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/account_data/org.example.x", {"r": 1}))
        self.ok(self.put(f"{self.alice}/account_data/org.example.x", {"g": 1}))
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/account_data/"
                                          "org.example.x")), {"r": 1})
        self.assertEqual(self.ok(self.get(f"{self.alice}/account_data/org.example.x")),
                         {"g": 1})
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/account_data/org.example.x", {"r": 2}))
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/account_data/"
                                          "org.example.x")), {"r": 2})
        self.assert_error(self.get(f"{self.alice}/rooms/{OTHER_ROOM}/account_data/"
                                   "org.example.x"), 404, "M_NOT_FOUND")
        self.assert_error(self.get(f"{self.alice}/rooms/{ROOM}/account_data/org.example.y"),
                          404, "M_NOT_FOUND")

    def test_server_managed_types_readable(self) -> None:
        """`m.fully_read` set by the server (read markers) can be read by the client."""
        pos = self.get_success(self.handler.set_room_account_data(
            self.alice, ROOM, "m.fully_read", {"event_id": "$e"}))
        self.assertEqual(pos, self.handler.get_current_key())
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/account_data/"
                                          "m.fully_read")), {"event_id": "$e"})

    # -- errors --

    def test_other_users_data_forbidden(self) -> None:
        """Reading or writing another user's account data or tags: 403 M_FORBIDDEN."""
        self.ok(self.put(f"{self.alice}/account_data/org.example.x", {"a": 1}))
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/tags/u.work", {}))
        for channel in (
            self.get(f"{self.alice}/account_data/org.example.x", self.bob_token),
            self.put(f"{self.alice}/account_data/org.example.x", {"b": 1}, self.bob_token),
            self.get(f"{self.alice}/rooms/{ROOM}/account_data/org.example.x", self.bob_token),
            self.put(f"{self.alice}/rooms/{ROOM}/account_data/org.example.x", {},
                     self.bob_token),
            self.get(f"{self.alice}/rooms/{ROOM}/tags", self.bob_token),
            self.put(f"{self.alice}/rooms/{ROOM}/tags/u.x", {}, self.bob_token),
            self.delete(f"{self.alice}/rooms/{ROOM}/tags/u.work", self.bob_token),
            self.get("@nobody:test/account_data/org.example.x", self.bob_token),
        ):
            self.assert_error(channel, 403, "M_FORBIDDEN")
        # Nothing changed.
        self.assertEqual(self.ok(self.get(f"{self.alice}/account_data/org.example.x")),
                         {"a": 1})
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/tags")),
                         {"tags": {"u.work": {}}})

    def test_body_not_an_object(self) -> None:
        """A body that is JSON but not an object: 400 M_BAD_JSON; not JSON: M_NOT_JSON."""
        for path in (f"{self.alice}/account_data/org.example.x",
                     f"{self.alice}/rooms/{ROOM}/account_data/org.example.x",
                     f"{self.alice}/rooms/{ROOM}/tags/u.work"):
            for body in ([1, 2], "text", 3, None):
                channel = self.put(path, body if body is not None else b"null")
                self.assert_error(channel, 400, "M_BAD_JSON")
            self.assert_error(self.put(path, b"{not json"), 400, "M_NOT_JSON")
            self.assert_error(self.put(path, b""), 400, "M_NOT_JSON")
        self.assert_error(self.get(f"{self.alice}/account_data/org.example.x"), 404,
                          "M_NOT_FOUND")
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/tags")), {"tags": {}})

    def test_server_managed_types_rejected(self) -> None:
        """PUT of m.fully_read or m.push_rules through the account-data API: 405 M_BAD_JSON."""
        for data_type in ("m.fully_read", "m.push_rules"):
            self.assert_error(self.put(f"{self.alice}/account_data/{data_type}", {}), 405,
                              "M_BAD_JSON")
            self.assert_error(self.put(f"{self.alice}/rooms/{ROOM}/account_data/{data_type}",
                                       {"event_id": "$x"}), 405, "M_BAD_JSON")
        self.assert_error(self.get(f"{self.alice}/rooms/{ROOM}/account_data/m.fully_read"),
                          404, "M_NOT_FOUND")

    def test_invalid_room_id(self) -> None:
        """A malformed room ID: 400 M_INVALID_PARAM on every room-scoped endpoint."""
        for bad in ("not-a-room", "!nodomain", "%23alias:test"):
            for channel in (
                self.put(f"{self.alice}/rooms/{bad}/account_data/org.example.x", {}),
                self.get(f"{self.alice}/rooms/{bad}/account_data/org.example.x"),
                self.get(f"{self.alice}/rooms/{bad}/tags"),
                self.put(f"{self.alice}/rooms/{bad}/tags/u.work", {}),
                self.delete(f"{self.alice}/rooms/{bad}/tags/u.work"),
            ):
                self.assert_error(channel, 400, "M_INVALID_PARAM")

    def test_invalid_type(self) -> None:
        """An empty or over-long account data type: 400 M_INVALID_PARAM."""
        self.assert_error(self.put(f"{self.alice}/account_data/", {}), 400, "M_INVALID_PARAM")
        self.assert_error(self.put(f"{self.alice}/account_data/{'x' * 256}", {}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.put(f"{self.alice}/rooms/{ROOM}/account_data/", {}), 400,
                          "M_INVALID_PARAM")

    def test_requires_access_token(self) -> None:
        """Without an access token: 401 M_MISSING_TOKEN."""
        channel = self.make_request("GET", f"{CLIENT}/user/{self.alice}/account_data/x.y")
        self.assert_error(channel, 401, "M_MISSING_TOKEN")
        channel = self.make_request("PUT", f"{CLIENT}/user/{self.alice}/rooms/{ROOM}/tags/t",
                                    {})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    # -- tags --

    def test_tags_add_list_delete(self) -> None:
        """Tags are added, listed with their content, replaced, and deleted."""
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/tags")), {"tags": {}})
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/tags/m.favourite", {"order": 0.25}))
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/tags/u.work", {}))
        self.ok(self.put(f"{self.alice}/rooms/{OTHER_ROOM}/tags/u.home", {"order": 1}))
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/tags")),
                         {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}})
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/tags/u.work", {"order": 0.5, "x": "y"}))
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/tags"))["tags"]["u.work"],
                         {"order": 0.5, "x": "y"})
        self.ok(self.delete(f"{self.alice}/rooms/{ROOM}/tags/m.favourite"))
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/tags")),
                         {"tags": {"u.work": {"order": 0.5, "x": "y"}}})
        self.assertEqual(self.ok(self.get(f"{self.alice}/rooms/{OTHER_ROOM}/tags")),
                         {"tags": {"u.home": {"order": 1}}})
        # Bob sees none of Alice's tags on the same room.
        self.assertEqual(self.ok(self.get(f"{self.bob}/rooms/{ROOM}/tags", self.bob_token)),
                         {"tags": {}})

    def test_delete_unknown_tag(self) -> None:
        """Deleting a tag that is not set succeeds and gives /sync nothing to send."""
        before = self.handler.get_current_key()
        self.assertEqual(self.ok(self.delete(f"{self.alice}/rooms/{ROOM}/tags/u.none")), {})
        self.assertEqual(self.for_sync(before), ([], {}))
        self.assertEqual(self.for_sync(None), ([], {}))

    def test_tag_bad_input(self) -> None:
        """A non-numeric `order`: 400 M_BAD_JSON; a tag over 255 bytes: M_INVALID_PARAM."""
        for order in ("0.5", True, [0.5], {"v": 1}):
            self.assert_error(self.put(f"{self.alice}/rooms/{ROOM}/tags/u.work",
                                       {"order": order}), 400, "M_BAD_JSON")
        self.assert_error(self.put(f"{self.alice}/rooms/{ROOM}/tags/{'t' * 256}", {}), 400,
                          "M_INVALID_PARAM")
        self.assert_error(self.put(f"{self.alice}/rooms/{ROOM}/tags/", {}), 400,
                          "M_INVALID_PARAM")
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/tags/{'t' * 255}", {}))
        self.assertEqual(list(self.ok(self.get(f"{self.alice}/rooms/{ROOM}/tags"))["tags"]),
                         ["t" * 255])

    # -- the stream and /sync --

    def test_stream_positions_grow(self) -> None:
        """Every write (account data, room data, tag add/remove) advances one stream."""
        positions = [self.handler.get_current_key()]
        positions.append(self.get_success(
            self.handler.set_global_account_data(self.alice, "a.b", {})))
        positions.append(self.get_success(
            self.handler.set_room_account_data(self.alice, ROOM, "a.b", {})))
        positions.append(self.get_success(self.handler.add_tag(self.alice, ROOM, "u.t", {})))
        positions.append(self.get_success(self.handler.remove_tag(self.alice, ROOM, "u.t")))
        positions.append(self.get_success(
            self.handler.set_global_account_data(self.bob, "a.b", {})))
        self.assertEqual(positions, sorted(set(positions)))
        self.assertEqual(self.handler.get_current_key(), positions[-1])

    def test_sync_initial_returns_everything(self) -> None:
        """from_key None: all global data, all room data, one m.tag per tagged room."""
        self.ok(self.put(f"{self.alice}/account_data/a.one", {"v": 1}))
        self.ok(self.put(f"{self.alice}/account_data/a.two", {"v": 2}))
        self.ok(self.put(f"{self.alice}/account_data/a.one", {"v": 3}))
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/account_data/r.one", {"r": 1}))
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/tags/u.a", {"order": 0.1}))
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/tags/u.b", {}))
        self.ok(self.put(f"{self.alice}/rooms/{OTHER_ROOM}/tags/u.gone", {}))
        self.ok(self.delete(f"{self.alice}/rooms/{OTHER_ROOM}/tags/u.gone"))
        self.ok(self.put(f"{self.bob}/account_data/a.bob", {}, self.bob_token))

        global_events, rooms = self.for_sync(None)
        self.assertCountEqual(global_events, [{"type": "a.one", "content": {"v": 3}},
                                              {"type": "a.two", "content": {"v": 2}}])
        self.assertEqual(set(rooms), {ROOM})  # the room whose tags are all gone is left out
        self.assertCountEqual(rooms[ROOM], [
            {"type": "r.one", "content": {"r": 1}},
            {"type": "m.tag", "content": {"tags": {"u.a": {"order": 0.1}, "u.b": {}}}},
        ])

    def test_sync_incremental_only_changes(self) -> None:
        """from_key X: only what changed after X; a room's m.tag carries all its tags."""
        self.ok(self.put(f"{self.alice}/account_data/a.old", {}))
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/account_data/r.old", {}))
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/tags/u.old", {}))
        self.ok(self.put(f"{self.alice}/rooms/{OTHER_ROOM}/tags/u.keep", {}))
        since = self.handler.get_current_key()
        self.assertEqual(self.for_sync(since), ([], {}))

        self.ok(self.put(f"{self.alice}/account_data/a.new", {"n": 1}))
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/tags/u.new", {"order": 0.3}))
        self.ok(self.put(f"{self.bob}/account_data/a.bob", {}, self.bob_token))
        global_events, rooms = self.for_sync(since)
        self.assertEqual(global_events, [{"type": "a.new", "content": {"n": 1}}])
        self.assertEqual(rooms, {ROOM: [{"type": "m.tag", "content": {
            "tags": {"u.old": {}, "u.new": {"order": 0.3}}}}]})

        # The upper bound is respected.
        mid = self.handler.get_current_key()
        self.ok(self.put(f"{self.alice}/account_data/a.later", {}))
        self.assertEqual(self.for_sync(since, mid)[0],
                         [{"type": "a.new", "content": {"n": 1}}])
        self.assertEqual(self.for_sync(mid)[0], [{"type": "a.later", "content": {}}])

        # Removing the last tag of a room sends an empty m.tag for it.
        since = self.handler.get_current_key()
        self.ok(self.delete(f"{self.alice}/rooms/{OTHER_ROOM}/tags/u.keep"))
        self.assertEqual(self.for_sync(since),
                         ([], {OTHER_ROOM: [{"type": "m.tag", "content": {"tags": {}}}]}))
        # Bob's own view: only his data.
        self.assertEqual(self.for_sync(None, user_id=self.bob),
                         ([{"type": "a.bob", "content": {}}], {}))

    def test_stream_survives_restart(self) -> None:
        """A new store over the same database continues above both tables' maximum, even
        when the latest change was a tag removal."""
        self.get_success(self.handler.set_global_account_data(self.alice, "a.b", {}))
        self.get_success(self.handler.add_tag(self.alice, ROOM, "u.t", {}))
        last = self.get_success(self.handler.remove_tag(self.alice, ROOM, "u.t"))
        store = AccountDataStore(self.hs.get_datastores().db)
        self.assertEqual(store.get_current_position(), last)
        # And a restarted store still answers incremental reads from the database.
        self.assertTrue(store.may_have_changed(self.alice, last - 1))
        changes = self.get_success(store.get_tag_changes(self.alice, last - 1, last))
        self.assertEqual(changes, {ROOM: {}})
        nxt = self.get_success(store.set_account_data(self.alice, "", "a.c", {}))
        self.assertEqual(nxt, last + 1)

    def test_writes_wake_sync(self) -> None:
        """Each write announces the account-data stream to the user's waiting /sync."""
        notifier = self.hs.get_notifier()
        writes = (
            lambda: self.put(f"{self.alice}/account_data/a.b", {}),
            lambda: self.put(f"{self.alice}/rooms/{ROOM}/account_data/a.b", {}),
            lambda: self.put(f"{self.alice}/rooms/{ROOM}/tags/u.t", {}),
            lambda: self.delete(f"{self.alice}/rooms/{ROOM}/tags/u.t"),
        )
        for write in writes:
            version = notifier.current_version()
            self.assertFalse(self.get_success(
                notifier.wait_for_events(self.alice, [], version, 0)))
            self.ok(write())
            self.assertTrue(self.get_success(
                notifier.wait_for_events(self.alice, [], version, 0)))
            self.assertFalse(self.get_success(
                notifier.wait_for_events(self.bob, [], version, 0)))
            self.assertEqual(notifier.positions["account_data"],
                             self.handler.get_current_key())

    # -- ignored users --

    def test_ignored_users_follow_writes(self) -> None:
        """get_ignored_users reflects every write of m.ignored_user_list (cache invalidated)."""
        self.assertEqual(self.get_success(self.handler.get_ignored_users(self.alice)),
                         frozenset())
        self.ok(self.put(f"{self.alice}/account_data/m.ignored_user_list",
                         {"ignored_users": {self.bob: {}, "@eve:test": {}}}))
        self.assertEqual(self.get_success(self.handler.get_ignored_users(self.alice)),
                         frozenset({self.bob, "@eve:test"}))
        # Cached read, then a write through the handler must still be seen.
        self.assertEqual(self.get_success(self.handler.get_ignored_users(self.alice)),
                         frozenset({self.bob, "@eve:test"}))
        self.get_success(self.handler.set_global_account_data(
            self.alice, "m.ignored_user_list", {"ignored_users": {"@eve:test": {}}}))
        self.assertEqual(self.get_success(self.handler.get_ignored_users(self.alice)),
                         frozenset({"@eve:test"}))
        self.ok(self.put(f"{self.alice}/account_data/m.ignored_user_list", {}))
        self.assertEqual(self.get_success(self.handler.get_ignored_users(self.alice)),
                         frozenset())
        # Other users' lists are their own; other types do not count.
        self.ok(self.put(f"{self.alice}/rooms/{ROOM}/account_data/m.ignored_user_list",
                         {"ignored_users": {self.bob: {}}}))
        self.assertEqual(self.get_success(self.handler.get_ignored_users(self.alice)),
                         frozenset())
        self.assertEqual(self.get_success(self.handler.get_ignored_users(self.bob)),
                         frozenset())

    def test_ignored_users_must_be_object(self) -> None:
        """`ignored_users` that is not an object: 400 M_BAD_JSON, and nothing is stored."""
        self.ok(self.put(f"{self.alice}/account_data/m.ignored_user_list",
                         {"ignored_users": {self.bob: {}}}))
        for bad in ([self.bob], self.bob, 1, None):
            self.assert_error(self.put(f"{self.alice}/account_data/m.ignored_user_list",
                                       {"ignored_users": bad}), 400, "M_BAD_JSON")
        self.assertEqual(self.get_success(self.handler.get_ignored_users(self.alice)),
                         frozenset({self.bob}))
        self.assertEqual(self.ok(self.get(f"{self.alice}/account_data/m.ignored_user_list")),
                         {"ignored_users": {self.bob: {}}})
