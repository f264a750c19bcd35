"""POST /user_directory/search: matching and ranking (over all users), and who may be
found (shared and public rooms, `user_directory` config)."""

from __future__ import annotations

import os
from typing import Any

from homeserver.server import HomeServer
from storage.prepare import SCHEMA_DIR, _split_statements
from tests.api.room_helpers import RoomHelpers
from tests.harness import FakeChannel, HomeserverTestCase, override_config

SEARCH = "/_matrix/client/v3/user_directory/search"


class UserDirectoryTestCase(HomeserverTestCase):
    """Matching and ranking, with every local user searchable."""

    def make_config(self) -> dict[str, Any]:
        return {**super().make_config(), "user_directory": {"search_all_users": True}}

    def prepare(self, reactor: Any, hs: HomeServer) -> None:
        self.searcher = self.register_user("searcher")
        self.token = self.login("searcher")

    def set_displayname(self, localpart: str, name: str) -> None:
        token = self.login(localpart)
        channel = self.make_request("PUT", f"/_matrix/client/v3/profile/@{localpart}:test/"
                                    "displayname", {"displayname": name}, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)

    def search(self, term: Any, limit: Any = None) -> FakeChannel:
        body: dict[str, Any] = {"search_term": term}
        if limit is not None:
            body["limit"] = limit
        return self.make_request("POST", SEARCH, body, access_token=self.token)

    def found(self, term: str, limit: Any = None) -> list[str]:
        channel = self.search(term, limit)
        self.assertEqual(channel.code, 200, channel.result)
        return [r["user_id"] for r in channel.json_body["results"]]

    def test_requires_auth(self) -> None:
        """Searching without a token is 401 M_MISSING_TOKEN."""
        channel = self.make_request("POST", SEARCH, {"search_term": "a"})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    def test_bad_bodies(self) -> None:
        """Missing or mistyped search_term / limit are 400 with the spec's codes."""
        cases: list[tuple[Any, str]] = [
            ({}, "M_MISSING_PARAM"),
            ({"limit": 5}, "M_MISSING_PARAM"),
            ({"search_term": 5}, "M_BAD_JSON"),
            ({"search_term": None}, "M_BAD_JSON"),
            ({"search_term": "a", "limit": "5"}, "M_BAD_JSON"),
            ({"search_term": "a", "limit": 2.5}, "M_BAD_JSON"),
            ({"search_term": "a", "limit": True}, "M_BAD_JSON"),
            (["a"], "M_BAD_JSON"),
            (b"not json", "M_NOT_JSON"),
        ]
        for content, errcode in cases:
            channel = self.make_request("POST", SEARCH, content, access_token=self.token)
            self.assert_error(channel, 400, errcode)

    def test_result_shape(self) -> None:
        """A result carries user_id, display_name and avatar_url (when set); limited is false."""
        user_id = self.register_user("alice")
        self.set_displayname("alice", "Alice Liddell")
        token = self.login("alice")
        self.make_request("PUT", f"/_matrix/client/v3/profile/{user_id}/avatar_url",
                          {"avatar_url": "mxc://test/abc"}, access_token=token)
        channel = self.search("liddell")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {
            "results": [{"user_id": "@alice:test", "display_name": "Alice Liddell",
                         "avatar_url": "mxc://test/abc"}],
            "limited": False,
        })

    def test_matches_localpart_and_displayname_case_insensitively(self) -> None:
        """Localpart and display name words match by prefix, ignoring case."""
        self.register_user("jdoe")
        self.set_displayname("jdoe", "Jane Doe")
        self.register_user("mary.smith")
        self.register_user("other")
        self.assertEqual(self.found("JDO"), ["@jdoe:test"])
        self.assertEqual(self.found("jane"), ["@jdoe:test"])
        self.assertEqual(self.found("DOE"), ["@jdoe:test"])
        self.assertEqual(self.found("smi"), ["@mary.smith:test"])
        self.assertEqual(self.found("mary.sm"), ["@mary.smith:test"])
        self.assertEqual(self.found("  Jane D "), ["@jdoe:test"])
        self.assertEqual(self.found("zzz"), [])
        self.assertEqual(self.found("ane"), [])  # not a prefix of any word

    def test_multiple_words_must_all_match(self) -> None:
        """Every word of a multi-word term must match some token of the user."""
        for localpart, name in (("u1", "Anna Berg"), ("u2", "Anna Carlsson"),
                                ("u3", "Berg Anna")):
            self.register_user(localpart)
            self.set_displayname(localpart, name)
        self.assertEqual(sorted(self.found("anna berg")), ["@u1:test", "@u3:test"])
        self.assertEqual(self.found("anna carl"), ["@u2:test"])

    def test_display_name_change_reindexes(self) -> None:
        """After a display name change the old name no longer matches and the new one does."""
        self.register_user("chris")
        self.set_displayname("chris", "Old Name")
        self.assertEqual(self.found("old"), ["@chris:test"])
        self.set_displayname("chris", "Fresh Name")
        self.assertEqual(self.found("old"), [])
        self.assertEqual(self.found("fresh"), ["@chris:test"])
        self.assertEqual(self.found("chris"), ["@chris:test"])  # the localpart still matches

    def test_ranking(self) -> None:
        """Exact matches come first, then whole-name prefixes, then word prefixes."""
        self.register_user("zed")
        self.set_displayname("zed", "Anne Bob")  # word prefix of "bob" only
        self.register_user("bobby")  # localpart prefix
        self.register_user("bob")  # exact localpart
        self.register_user("xavier")
        self.set_displayname("xavier", "Bob")  # exact display name
        self.register_user("bo")  # too short: not a match
        found = self.found("bob")
        self.assertEqual(set(found[:2]), {"@bob:test", "@xavier:test"})
        self.assertEqual(found[2:], ["@bobby:test", "@zed:test"])

    def test_like_wildcards_are_literal(self) -> None:
        """`%` and `_` in the term are literal characters, not wildcards matching everyone."""
        for name in ("alice", "bob", "carol"):
            self.register_user(name)
        self.assertEqual(self.found("%"), [])
        self.assertEqual(self.found("_"), [])
        # As LIKE wildcards these would match alice and carol.
        self.assertEqual(self.found("al%e"), [])
        self.assertEqual(self.found("c_rol"), [])
        self.assertEqual(self.found("\\"), [])
        self.register_user("under_score")
        self.set_displayname("under_score", "100% Real")
        self.assertEqual(self.found("under_s"), ["@under_score:test"])
        self.assertEqual(self.found("100%"), ["@under_score:test"])
        self.assertEqual(self.found("und%core"), [])

    def test_excludes_deactivated_guest_and_support_users(self) -> None:
        """Deactivated, guest, locked and support users are not listed."""
        users = self.hs.get_datastores().users
        for localpart, column in (("dave1", "deactivated"), ("dave2", "is_guest"),
                                  ("dave3", "locked")):
            user_id = self.register_user(localpart)
            self.get_success(users.set_flags(user_id, **{column: True}))
        user_id = self.register_user("dave4")
        self.get_success(users.set_flags(user_id, user_type="support"))
        self.register_user("dave5")
        self.assertEqual(self.found("dave"), ["@dave5:test"])

    def test_limit_and_limited(self) -> None:
        """limit caps the results (default 10, at most 50) and limited says so."""
        for i in range(55):
            self.register_user(f"user{i:02d}")
        channel = self.search("user")
        self.assertEqual(len(channel.json_body["results"]), 10)
        self.assertTrue(channel.json_body["limited"])
        channel = self.search("user", limit=100)
        self.assertEqual(len(channel.json_body["results"]), 50)
        self.assertTrue(channel.json_body["limited"])
        channel = self.search("user0", limit=10)
        self.assertEqual(len(channel.json_body["results"]), 10)
        self.assertFalse(channel.json_body["limited"])
        channel = self.search("user", limit=-1)
        self.assertEqual(channel.json_body, {"results": [], "limited": True})

    def test_search_by_full_user_id(self) -> None:
        """A full local user ID, or a prefix of one, finds the user (ranked first)."""
        self.register_user("alice")
        self.register_user("alicia")
        self.assertEqual(self.found("@alice:test"), ["@alice:test"])
        self.assertEqual(self.found("@alice:te")[0], "@alice:test")
        self.assertEqual(sorted(self.found("@ali")), ["@alice:test", "@alicia:test"])
        self.assertEqual(self.found("@alice:elsewhere.example"), [])

    def test_blank_term(self) -> None:
        """An empty or blank term matches nobody."""
        self.assertEqual(self.found(""), [])
        self.assertEqual(self.found("   "), [])

    def test_unicode_names(self) -> None:
        """Non-ASCII display names match case-insensitively."""
        self.register_user("zoe")
        self.set_displayname("zoe", "Zoë Ångström")
        self.assertEqual(self.found("ÅNG"), ["@zoe:test"])
        self.assertEqual(self.found("zoë"), ["@zoe:test"])


class UserDirectoryVisibilityTestCase(RoomHelpers, HomeserverTestCase):
    """Who may be found with the default `search_all_users: false` (as Synapse)."""

    def prepare(self, reactor: Any, hs: HomeServer) -> None:
        self.register_user("searcher")
        self.token = self.login("searcher")
        self.register_user("target")
        self.target = self.login("target")

    def found(self, term: str = "target", token: str | None = None) -> list[str]:
        channel = self.make_request("POST", SEARCH, {"search_term": term},
                                    access_token=token or self.token)
        self.assertEqual(channel.code, 200, channel.result)
        return [r["user_id"] for r in channel.json_body["results"]]

    def test_unrelated_users_are_not_found(self) -> None:
        """A user sharing no room and in no public room is not found; a private room of
        their own does not change that."""
        self.assertEqual(self.found(), [])
        self.create_room(self.target, {"preset": "private_chat"})
        self.assertEqual(self.found(), [])

    def test_room_mates_vanish_after_leaving(self) -> None:
        """A room-mate of a private room is found, and no longer once either leaves."""
        room = self.create_room(self.target, {"preset": "private_chat"})
        self.invite("@target:test", room, "@searcher:test")
        self.assertEqual(self.found(), [])  # invited is not joined
        self.join("@searcher:test", room)
        self.assertEqual(self.found(), ["@target:test"])
        self.leave("@target:test", room)
        self.assertEqual(self.found(), [])
        other = self.create_room(self.target, {"preset": "private_chat"})
        self.invite("@target:test", other, "@searcher:test")
        self.join("@searcher:test", other)
        self.assertEqual(self.found(), ["@target:test"])
        self.leave("@searcher:test", other)
        self.assertEqual(self.found(), [])

    def test_public_room_members_are_found(self) -> None:
        """Members of a room with join rule public, or with world_readable history, are
        found by anyone, until the room stops being public."""
        room = self.create_room(self.target, {"preset": "public_chat"})
        self.assertEqual(self.found(), ["@target:test"])
        self.send_state(self.target, room, "m.room.join_rules", {"join_rule": "invite"})
        self.assertEqual(self.found(), [])
        self.send_state(self.target, room, "m.room.history_visibility",
                        {"history_visibility": "world_readable"})
        self.assertEqual(self.found(), ["@target:test"])
        self.leave("@target:test", room)
        self.assertEqual(self.found(), [])

    @override_config({"user_directory": {"search_all_users": True}})
    def test_search_all_users(self) -> None:
        """`search_all_users: true` finds every local user."""
        self.assertEqual(self.found(), ["@target:test"])

    @override_config({"user_directory": {"enabled": False}})
    def test_disabled(self) -> None:
        """`enabled: false` finds nobody, not even room-mates."""
        self.create_room(self.target, {"preset": "public_chat"})
        self.assertEqual(self.found(), [])

    def test_fill_migration_finds_existing_public_rooms(self) -> None:
        """The schema delta that fills the public-room table recognises public and
        world-readable rooms on this engine (and no others)."""
        public = self.create_room(self.target, {"preset": "public_chat"})
        readable = self.create_room(self.target, {"preset": "private_chat"})
        self.send_state(self.target, readable, "m.room.history_visibility",
                        {"history_visibility": "world_readable"})
        self.create_room(self.target, {"preset": "private_chat"})
        pool = self.hs.get_datastores().db
        suffix = "sqlite" if pool.engine.name == "sqlite3" else "postgres"
        path = os.path.join(SCHEMA_DIR, "4", f"11_user_directory_public_rooms_fill.{suffix}")
        with open(path, encoding="utf-8") as f:
            fill = f.read()

        def refill(txn: Any) -> list[str]:
            txn.execute("DELETE FROM user_directory_public_rooms")
            for statement in _split_statements(fill):
                txn.execute(statement)
            return sorted(r[0] for r in txn.select_all(
                "SELECT room_id FROM user_directory_public_rooms"))

        self.assertEqual(self.get_success(pool.run_interaction("refill", refill)),
                         sorted([public, readable]))
