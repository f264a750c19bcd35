"""GET/PUT/DELETE /profile/{userId} and /profile/{userId}/{keyName}."""

from __future__ import annotations

import urllib.parse
from typing import Any

from homeserver.server import HomeServer
from tests.harness import FakeChannel, HomeserverTestCase

PROFILE = "/_matrix/client/v3/profile"


def path(user_id: str, key: str | None = None) -> str:
    p = f"{PROFILE}/{urllib.parse.quote(user_id, safe='@:')}"
    return p if key is None else f"{p}/{urllib.parse.quote(key, safe='')}"


class ProfileTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: HomeServer) -> None:
        self.alice = self.register_user("alice")
        self.alice_token = self.login("alice")
        self.bob = self.register_user("bob")
        self.bob_token = self.login("bob")

    def put(self, key: str, content: Any, user_id: str | None = None,
            token: str | None = None) -> FakeChannel:
        return self.make_request("PUT", path(user_id or self.alice, key), content,
                                 access_token=token or self.alice_token)

    # -- reading --

    def test_get_profile_of_new_user(self) -> None:
        """A new user's profile has the localpart as display name and no avatar."""
        channel = self.make_request("GET", path(self.alice))
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"displayname": "alice"})

    def test_get_profile_needs_no_auth(self) -> None:
        """Profile look-ups work without an access token (and with one)."""
        self.assertEqual(self.make_request("GET", path(self.bob)).code, 200)
        self.assertEqual(self.make_request("GET", path(self.bob, "displayname"),
                                           access_token=self.alice_token).code, 200)

    def test_get_unknown_user_not_found(self) -> None:
        """An unknown local user gives 404 M_NOT_FOUND (remote users: the federation
        tests)."""
        for user_id in ("@nobody:test",):
            self.assert_error(self.make_request("GET", path(user_id)), 404, "M_NOT_FOUND")
            self.assert_error(self.make_request("GET", path(user_id, "displayname")), 404,
                              "M_NOT_FOUND")

    def test_get_malformed_user_id(self) -> None:
        """A malformed user ID is 400 M_INVALID_PARAM on every profile endpoint."""
        for bad in ("alice", "@alice", "@:test", "@al ice:test", "@alice:bad_host!"):
            self.assert_error(self.make_request("GET", path(bad)), 400, "M_INVALID_PARAM")
            self.assert_error(self.make_request("GET", path(bad, "displayname")), 400,
                              "M_INVALID_PARAM")
            self.assert_error(self.put("displayname", {"displayname": "x"}, user_id=bad), 400,
                              "M_INVALID_PARAM")

    def test_get_unset_field_not_found(self) -> None:
        """An unset field (avatar, custom key) is 404 M_NOT_FOUND."""
        self.assert_error(self.make_request("GET", path(self.alice, "avatar_url")), 404,
                          "M_NOT_FOUND")
        self.assert_error(self.make_request("GET", path(self.alice, "com.example.x")), 404,
                          "M_NOT_FOUND")

    def test_empty_profile_not_found(self) -> None:
        """A profile with nothing set is 404, as in Synapse."""
        self.assertEqual(self.put("displayname", {"displayname": ""}).code, 200)
        self.assert_error(self.make_request("GET", path(self.alice)), 404, "M_NOT_FOUND")

    # -- display name and avatar --

    def test_set_displayname_and_avatar(self) -> None:
        """PUT displayname/avatar_url show up in both the field and the full profile."""
        self.assertEqual(self.put("displayname", {"displayname": "  Alice L. "}).code, 200)
        self.assertEqual(self.put("avatar_url", {"avatar_url": "mxc://test/abc_DEF-1"}).code,
                         200)
        channel = self.make_request("GET", path(self.alice, "displayname"))
        self.assertEqual(channel.json_body, {"displayname": "Alice L."})
        channel = self.make_request("GET", path(self.alice, "avatar_url"))
        self.assertEqual(channel.json_body, {"avatar_url": "mxc://test/abc_DEF-1"})
        channel = self.make_request("GET", path(self.alice))
        self.assertEqual(channel.json_body,
                         {"displayname": "Alice L.", "avatar_url": "mxc://test/abc_DEF-1"})

    def test_empty_avatar_unsets(self) -> None:
        """An empty avatar_url removes the avatar."""
        self.put("avatar_url", {"avatar_url": "mxc://test/abc"})
        self.assertEqual(self.put("avatar_url", {"avatar_url": ""}).code, 200)
        self.assertEqual(self.make_request("GET", path(self.alice)).json_body,
                         {"displayname": "alice"})

    def test_put_requires_auth(self) -> None:
        """PUT and DELETE without a token are 401 M_MISSING_TOKEN; a bad token M_UNKNOWN_TOKEN."""
        channel = self.make_request("PUT", path(self.alice, "displayname"), {"displayname": "x"})
        self.assert_error(channel, 401, "M_MISSING_TOKEN")
        channel = self.make_request("DELETE", path(self.alice, "m.tz"))
        self.assert_error(channel, 401, "M_MISSING_TOKEN")
        channel = self.make_request("PUT", path(self.alice, "displayname"), {"displayname": "x"},
                                    access_token="nope")
        self.assert_error(channel, 401, "M_UNKNOWN_TOKEN")

    def test_cannot_edit_other_users_profile(self) -> None:
        """PUT or DELETE on someone else's profile is 403 M_FORBIDDEN and changes nothing."""
        self.assert_error(self.put("displayname", {"displayname": "pwned"}, user_id=self.bob),
                          403, "M_FORBIDDEN")
        self.assert_error(self.put("com.example.x", {"com.example.x": 1}, user_id=self.bob),
                          403, "M_FORBIDDEN")
        self.assert_error(self.make_request("DELETE", path(self.bob, "displayname"),
                                            access_token=self.alice_token), 403, "M_FORBIDDEN")
        self.assert_error(self.put("displayname", {"displayname": "x"},
                                   user_id="@alice:elsewhere.example"), 403, "M_FORBIDDEN")
        self.assertEqual(self.make_request("GET", path(self.bob)).json_body,
                         {"displayname": "bob"})

    def test_bad_bodies(self) -> None:
        """Missing key, wrong types, null and non-JSON bodies get the spec's 400 codes."""
        cases: list[tuple[str, Any, str]] = [
            ("displayname", {}, "M_MISSING_PARAM"),
            ("displayname", {"avatar_url": "mxc://test/a"}, "M_MISSING_PARAM"),
            ("avatar_url", {}, "M_MISSING_PARAM"),
            ("displayname", {"displayname": 5}, "M_BAD_JSON"),
            ("displayname", {"displayname": None}, "M_BAD_JSON"),
            ("displayname", {"displayname": ["a"]}, "M_BAD_JSON"),
            ("avatar_url", {"avatar_url": True}, "M_BAD_JSON"),
            ("m.tz", {"m.tz": 1}, "M_BAD_JSON"),
            ("displayname", [1], "M_BAD_JSON"),
            ("displayname", b"{nope", "M_NOT_JSON"),
            ("com.example.x", {"com.example.x": None}, "M_INVALID_PARAM"),
        ]
        for key, content, errcode in cases:
            self.assert_error(self.put(key, content), 400, errcode)
        self.assertEqual(self.make_request("GET", path(self.alice)).json_body,
                         {"displayname": "alice"})

    def test_displayname_length_limit(self) -> None:
        """256 characters are accepted as a display name; 257 are 400 M_INVALID_PARAM."""
        self.assertEqual(self.put("displayname", {"displayname": "é" * 256}).code, 200)
        self.assert_error(self.put("displayname", {"displayname": "x" * 257}), 400,
                          "M_INVALID_PARAM")

    def test_avatar_url_validation(self) -> None:
        """avatar_url must be an mxc URI with a valid server and media ID, at most 1000 chars."""
        for bad in ("https://example.com/a.png", "mxc://", "mxc://test", "mxc://test/",
                    "mxc://test/../etc/passwd", "mxc://bad_host!/abc", "mxc://test/a b",
                    "mxc://test/" + "a" * 990):
            self.assert_error(self.put("avatar_url", {"avatar_url": bad}), 400,
                              "M_INVALID_PARAM")
        self.assertEqual(self.put("avatar_url", {"avatar_url": "mxc://test/" + "a" * 989}).code,
                         200)

    def test_guest_may_only_set_displayname(self) -> None:
        """A guest may change its display name but not other fields (403)."""
        self.get_success(self.hs.get_datastores().users.set_flags(self.alice, is_guest=True))
        self.assertEqual(self.put("displayname", {"displayname": "Guesty"}).code, 200)
        self.assert_error(self.put("avatar_url", {"avatar_url": "mxc://test/a"}), 403,
                          "M_GUEST_ACCESS_FORBIDDEN")

    def test_suspended_user_cannot_edit(self) -> None:
        """A suspended user gets 403 M_USER_SUSPENDED on profile changes."""
        self.get_success(self.hs.get_datastores().users.set_flags(self.alice, suspended=True))
        self.assert_error(self.put("displayname", {"displayname": "x"}), 403,
                          "M_USER_SUSPENDED")

    # -- extended fields (v1.16) --

    def test_custom_fields_round_trip(self) -> None:
        """m.tz and custom keys of any JSON type are stored, listed and returned."""
        value = {"nested": [1, 2.5, "three", None, True], "é": "ü"}
        self.assertEqual(self.put("m.tz", {"m.tz": "Europe/London"}).code, 200)
        self.assertEqual(self.put("com.example.obj", {"com.example.obj": value}).code, 200)
        self.assertEqual(self.put("org.example.n", {"org.example.n": 0}).code, 200)
        channel = self.make_request("GET", path(self.alice, "com.example.obj"))
        self.assertEqual(channel.json_body, {"com.example.obj": value})
        channel = self.make_request("GET", path(self.alice, "org.example.n"))
        self.assertEqual(channel.json_body, {"org.example.n": 0})
        channel = self.make_request("GET", path(self.alice))
        self.assertEqual(channel.json_body, {
            "displayname": "alice", "m.tz": "Europe/London",
            "com.example.obj": value, "org.example.n": 0,
        })

    def test_custom_field_overwrite_and_delete(self) -> None:
        """PUT replaces a field; DELETE removes it, and deleting again is still 200."""
        self.put("com.example.x", {"com.example.x": "one"})
        self.put("com.example.x", {"com.example.x": "two"})
        channel = self.make_request("GET", path(self.alice, "com.example.x"))
        self.assertEqual(channel.json_body, {"com.example.x": "two"})
        for _ in range(2):
            channel = self.make_request("DELETE", path(self.alice, "com.example.x"),
                                        access_token=self.alice_token)
            self.assertEqual(channel.code, 200, channel.result)
            self.assertEqual(channel.json_body, {})
        self.assert_error(self.make_request("GET", path(self.alice, "com.example.x")), 404,
                          "M_NOT_FOUND")

    def test_delete_displayname_and_avatar(self) -> None:
        """DELETE on displayname/avatar_url unsets them."""
        self.put("avatar_url", {"avatar_url": "mxc://test/a"})
        self.put("com.example.keep", {"com.example.keep": 1})
        for key in ("displayname", "avatar_url"):
            channel = self.make_request("DELETE", path(self.alice, key),
                                        access_token=self.alice_token)
            self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.make_request("GET", path(self.alice)).json_body,
                         {"com.example.keep": 1})

    def test_custom_fields_are_per_user(self) -> None:
        """One user's custom field does not appear in another's profile."""
        self.put("com.example.x", {"com.example.x": "alice's"})
        self.assertEqual(self.make_request("GET", path(self.bob)).json_body,
                         {"displayname": "bob"})

    def test_invalid_key_names(self) -> None:
        """Keys outside the namespaced grammar are 400 M_INVALID_PARAM on GET, PUT, DELETE."""
        for key in ("Com.Example", "1abc", "com.example.ü", ".x", "com example", "a/b"):
            self.assert_error(self.put(key, {key: "v"}), 400, "M_INVALID_PARAM")
            self.assert_error(self.make_request("GET", path(self.alice, key)), 400,
                              "M_INVALID_PARAM")
            self.assert_error(self.make_request("DELETE", path(self.alice, key),
                                                access_token=self.alice_token),
                              400, "M_INVALID_PARAM")

    def test_key_too_large(self) -> None:
        """A key of 255 bytes is accepted; 256 bytes is 400 M_KEY_TOO_LARGE."""
        ok = "com." + "a" * 251
        self.assertEqual(self.put(ok, {ok: 1}).code, 200)
        too_long = "com." + "a" * 252
        self.assert_error(self.put(too_long, {too_long: 1}), 400, "M_KEY_TOO_LARGE")
        self.assert_error(self.make_request("GET", path(self.alice, too_long)), 400,
                          "M_KEY_TOO_LARGE")

    def test_profile_size_limit(self) -> None:
        """A write that would take the whole profile over 64 KiB is M_PROFILE_TOO_LARGE."""
        self.assertEqual(self.put("com.example.a", {"com.example.a": "x" * 40_000}).code, 200)
        channel = self.put("com.example.b", {"com.example.b": "y" * 30_000})
        self.assert_error(channel, 400, "M_PROFILE_TOO_LARGE")
        self.assert_error(self.make_request("GET", path(self.alice, "com.example.b")), 404,
                          "M_NOT_FOUND")
        # Replacing a field counts its new size, not old + new.
        self.assertEqual(self.put("com.example.a", {"com.example.a": "z" * 60_000}).code, 200)
        # Even a small display name change is refused once the profile is full.
        self.assertEqual(self.put("com.example.a", {"com.example.a": "z" * 65_480}).code, 200)
        self.assert_error(self.put("displayname", {"displayname": "a" * 200}), 400,
                          "M_PROFILE_TOO_LARGE")
        # Deleting frees space again.
        self.make_request("DELETE", path(self.alice, "com.example.a"),
                          access_token=self.alice_token)
        self.assertEqual(self.put("com.example.b", {"com.example.b": "y" * 30_000}).code, 200)

    def test_v3_and_r0_prefixes(self) -> None:
        """The endpoints also answer under the legacy r0 prefix."""
        channel = self.make_request("GET", f"/_matrix/client/r0/profile/{self.alice}")
        self.assertEqual(channel.code, 200, channel.result)

    def test_user_id_with_escaped_slash(self) -> None:
        """A localpart containing '/' is addressed percent-encoded and round-trips."""
        user_id = self.register_user("a/b")
        token = self.login("a/b")
        channel = self.make_request("PUT", path(user_id, "displayname"), {"displayname": "AB"},
                                    access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.make_request("GET", path(user_id)).json_body,
                         {"displayname": "AB"})
