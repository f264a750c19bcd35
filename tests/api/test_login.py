"""POST/GET /login and /refresh."""

from __future__ import annotations

from typing import Any
from unittest import mock

import bcrypt

from tests.harness import HomeserverTestCase, override_config


class LoginTestCase(HomeserverTestCase):
    def test_get_flows(self) -> None:
        """GET /login lists password login."""
        channel = self.make_request("GET", "/_matrix/client/v3/login")
        self.assertEqual(channel.code, 200)
        self.assertIn({"type": "m.login.password"}, channel.json_body["flows"])

    def test_password_login_localpart_and_full_id(self) -> None:
        """A user logs in by localpart and by full user ID, getting a device and token."""
        self.register_user("alice", "secret-pw")
        for user in ("alice", "@alice:test"):
            channel = self.make_request("POST", "/_matrix/client/v3/login", {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": "secret-pw",
            })
            self.assertEqual(channel.code, 200, channel.result)
            body = channel.json_body
            self.assertEqual(body["user_id"], "@alice:test")
            self.assertTrue(body["access_token"].startswith("axo_"))
            self.assertEqual(len(body["device_id"]), 10)
            self.assertNotIn("refresh_token", body)

    def test_wrong_password_forbidden(self) -> None:
        """A wrong password and an unknown user both give 403 M_FORBIDDEN."""
        self.register_user("alice", "secret-pw")
        for user, pw in (("alice", "nope"), ("bob", "secret-pw")):
            channel = self.make_request("POST", "/_matrix/client/v3/login", {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user}, "password": pw,
            })
            self.assert_error(channel, 403, "M_FORBIDDEN")

    def test_bad_bodies(self) -> None:
        """Malformed JSON, wrong types and unknown login types are 400s with the right code."""
        cases = [
            (b"{not json", "M_NOT_JSON"),
            (b"[1, 2]", "M_BAD_JSON"),
            ({"type": 5}, "M_BAD_JSON"),
            ({"identifier": {"type": "m.id.user", "user": "a"}}, "M_MISSING_PARAM"),
            ({"type": "m.login.password", "password": 123,
              "identifier": {"type": "m.id.user", "user": "a"}}, "M_BAD_JSON"),
            ({"type": "m.login.bogus"}, "M_UNKNOWN"),
        ]
        for content, errcode in cases:
            channel = self.make_request("POST", "/_matrix/client/v3/login", content)
            self.assert_error(channel, 400, errcode)

    def test_unknown_and_deactivated_users_cost_a_bcrypt_check(self) -> None:
        """Unknown and deactivated accounts run one bcrypt check at the real accounts'
        cost, as a wrong password does, so login time does not tell who exists."""
        alice = self.register_user("alice", "secret-pw")
        gone = self.register_user("gone", "secret-pw")
        self.get_success(self.hs.get_account_handler().deactivate(gone))
        real_hash = self.get_success(self.hs.get_datastores().users.get_user(alice)).password_hash
        cost = real_hash.split("$")[2]
        for user, errcode in (("alice", "M_FORBIDDEN"), ("nobody", "M_FORBIDDEN"),
                              ("gone", "M_USER_DEACTIVATED")):
            with self.subTest(user=user), \
                    mock.patch.object(bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw:
                channel = self.make_request("POST", "/_matrix/client/v3/login", {
                    "type": "m.login.password", "password": "wrong-pw",
                    "identifier": {"type": "m.id.user", "user": user}})
                self.assert_error(channel, 403, errcode)
                self.assertEqual(checkpw.call_count, 1)
                hashed: Any = checkpw.call_args.args[1]
                self.assertEqual(hashed.split(b"$")[2].decode(), cost)

    @override_config({"rc_login": {"address": {"per_second": 0.1, "burst_count": 2}}})
    def test_login_rate_limited_by_address(self) -> None:
        """The third login attempt from one address in a burst is 429 with retry_after_ms."""
        self.register_user("alice", "secret-pw")
        body = {"type": "m.login.password", "password": "secret-pw",
                "identifier": {"type": "m.id.user", "user": "alice"}}
        for _ in range(2):
            self.assertEqual(self.make_request("POST", "/_matrix/client/v3/login", body).code, 200)
        channel = self.make_request("POST", "/_matrix/client/v3/login", body)
        self.assert_error(channel, 429, "M_LIMIT_EXCEEDED")
        self.assertGreater(channel.json_body["retry_after_ms"], 0)
        self.assertIsNotNone(channel.header("Retry-After"))
        self.reactor.advance(channel.json_body["retry_after_ms"] / 1000)
        self.assertEqual(self.make_request("POST", "/_matrix/client/v3/login", body).code, 200)

    def test_refresh_token_rotation(self) -> None:
        """A refreshed pair replaces the old one once the new access token is used."""
        self.register_user("alice", "secret-pw")
        channel = self.make_request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "password": "secret-pw",
            "identifier": {"type": "m.id.user", "user": "alice"}, "refresh_token": True,
        })
        self.assertEqual(channel.code, 200, channel.result)
        first = channel.json_body
        self.assertEqual(first["expires_in_ms"], 300_000)
        self.assertTrue(first["refresh_token"].startswith("axr_"))

        channel = self.make_request("POST", "/_matrix/client/v3/refresh",
                                    {"refresh_token": first["refresh_token"]})
        self.assertEqual(channel.code, 200, channel.result)
        second = channel.json_body
        self.assertNotEqual(second["access_token"], first["access_token"])

        # Until the new token is used the old access token still works.
        who = "/_matrix/client/v3/account/whoami"
        self.assertEqual(self.make_request("GET", who, access_token=first["access_token"]).code,
                         200)
        self.assertEqual(self.make_request("GET", who, access_token=second["access_token"]).code,
                         200)
        self.assert_error(self.make_request("GET", who, access_token=first["access_token"]),
                          401, "M_UNKNOWN_TOKEN")
        channel = self.make_request("POST", "/_matrix/client/v3/refresh",
                                    {"refresh_token": first["refresh_token"]})
        self.assert_error(channel, 401, "M_UNKNOWN_TOKEN")

    def test_access_token_expires_soft_logout(self) -> None:
        """An expired refreshable access token gives 401 M_UNKNOWN_TOKEN with soft_logout."""
        self.register_user("alice", "secret-pw")
        token = self.login("alice", "secret-pw", refresh_token=True)
        self.reactor.advance(301)
        channel = self.make_request("GET", "/_matrix/client/v3/account/whoami",
                                    access_token=token)
        self.assert_error(channel, 401, "M_UNKNOWN_TOKEN")
        self.assertIs(channel.json_body["soft_logout"], True)


class TokenCacheTestCase(HomeserverTestCase):
    def test_revocation_is_immediate_despite_cache(self) -> None:
        """A cached token stops working as soon as its device is deleted or it logs out."""
        self.register_user("alice", "secret-pw")
        who = "/_matrix/client/v3/account/whoami"
        first = self.login("alice", "secret-pw")
        second = self.login("alice", "secret-pw")
        for token in (first, second):  # fill the cache
            self.assertEqual(self.make_request("GET", who, access_token=token).code, 200)
        self.assertEqual(self.make_request("POST", "/_matrix/client/v3/logout",
                                           access_token=first).code, 200)
        self.assert_error(self.make_request("GET", who, access_token=first), 401,
                          "M_UNKNOWN_TOKEN")
        device = self.make_request("GET", who, access_token=second).json_body["device_id"]
        self.get_success(self.hs.get_datastores().devices.delete_devices("@alice:test",
                                                                         [device]))
        self.assert_error(self.make_request("GET", who, access_token=second), 401,
                          "M_UNKNOWN_TOKEN")

    def test_locking_is_immediate_despite_cache(self) -> None:
        """A cached account that gets locked is refused on the next request."""
        self.register_user("alice", "secret-pw")
        token = self.login("alice", "secret-pw")
        who = "/_matrix/client/v3/account/whoami"
        self.assertEqual(self.make_request("GET", who, access_token=token).code, 200)
        self.get_success(self.hs.get_datastores().users.set_locked("@alice:test", True))
        self.assert_error(self.make_request("GET", who, access_token=token), 401,
                          "M_USER_LOCKED")
