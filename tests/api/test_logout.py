"""POST /logout and /logout/all."""

from __future__ import annotations

from typing import Any

from tests.harness import HomeserverTestCase

LOGOUT = "/_matrix/client/v3/logout"
LOGOUT_ALL = "/_matrix/client/v3/logout/all"
WHOAMI = "/_matrix/client/v3/account/whoami"


class LogoutTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.user_id = self.register_user("alice")
        self.devices = hs.get_datastores().devices

    def device_ids(self, user_id: str) -> list[str]:
        return [d.device_id for d in self.get_success(self.devices.get_devices(user_id))]

    def test_logout_deletes_device_and_token(self) -> None:
        """Logout with no body returns {}, kills the token, deletes the device, spares others."""
        token_a = self.login("alice", device_id="DEVA")
        token_b = self.login("alice", device_id="DEVB")
        channel = self.make_request("POST", LOGOUT, access_token=token_a)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        self.assert_error(self.make_request("GET", WHOAMI, access_token=token_a),
                          401, "M_UNKNOWN_TOKEN")
        self.assertEqual(self.make_request("GET", WHOAMI, access_token=token_b).code, 200)
        self.assertEqual(self.device_ids(self.user_id), ["DEVB"])

    def test_logout_accepts_json_body(self) -> None:
        """A client that sends `{}` logs out just the same."""
        token = self.login("alice")
        channel = self.make_request("POST", LOGOUT, {}, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assert_error(self.make_request("GET", WHOAMI, access_token=token),
                          401, "M_UNKNOWN_TOKEN")

    def test_logout_deletes_every_token_of_the_device(self) -> None:
        """Two logins into one device share its fate: logging out one ends both."""
        first = self.login("alice", device_id="SHARED")
        second = self.login("alice", device_id="SHARED")
        self.assertEqual(self.make_request("POST", LOGOUT, access_token=second).code, 200)
        self.assert_error(self.make_request("GET", WHOAMI, access_token=first),
                          401, "M_UNKNOWN_TOKEN")

    def test_logout_revokes_refresh_token(self) -> None:
        """After logout the session's refresh token cannot mint new tokens."""
        channel = self.make_request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "password": "password", "refresh_token": True,
            "identifier": {"type": "m.id.user", "user": "alice"},
        })
        self.assertEqual(channel.code, 200, channel.result)
        session = channel.json_body
        self.assertEqual(
            self.make_request("POST", LOGOUT, access_token=session["access_token"]).code, 200)
        channel = self.make_request("POST", "/_matrix/client/v3/refresh",
                                    {"refresh_token": session["refresh_token"]})
        self.assert_error(channel, 401, "M_UNKNOWN_TOKEN")

    def test_logout_twice(self) -> None:
        """A token that has logged out cannot log out again (401 M_UNKNOWN_TOKEN)."""
        token = self.login("alice")
        self.assertEqual(self.make_request("POST", LOGOUT, access_token=token).code, 200)
        self.assert_error(self.make_request("POST", LOGOUT, access_token=token),
                          401, "M_UNKNOWN_TOKEN")

    def test_logout_all(self) -> None:
        """/logout/all ends every session and device of the user, not other users'."""
        tokens = [self.login("alice", device_id=f"DEV{i}") for i in range(3)]
        self.register_user("bob")
        bob = self.login("bob")
        channel = self.make_request("POST", LOGOUT_ALL, access_token=tokens[0])
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        for token in tokens:
            self.assert_error(self.make_request("GET", WHOAMI, access_token=token),
                              401, "M_UNKNOWN_TOKEN")
        self.assertEqual(self.device_ids(self.user_id), [])
        self.assertEqual(self.make_request("GET", WHOAMI, access_token=bob).code, 200)
        # The account itself is fine: the user can log in again.
        self.login("alice")

    def test_missing_token(self) -> None:
        """Both endpoints need an access token: 401 M_MISSING_TOKEN."""
        for path in (LOGOUT, LOGOUT_ALL):
            self.assert_error(self.make_request("POST", path), 401, "M_MISSING_TOKEN")

    def test_unknown_token(self) -> None:
        """A made-up token is 401 M_UNKNOWN_TOKEN on both endpoints."""
        for path in (LOGOUT, LOGOUT_ALL):
            self.assert_error(self.make_request("POST", path, access_token="axo_bogus"),
                              401, "M_UNKNOWN_TOKEN")


class ExpiredTokenLogoutTestCase(HomeserverTestCase):
    def test_logout_with_expired_token(self) -> None:
        """An expired refreshable access token can still log out (as in Synapse)."""
        self.register_user("alice")
        token = self.login("alice", refresh_token=True)
        self.reactor.advance(301)
        self.assert_error(self.make_request("GET", "/_matrix/client/v3/account/whoami",
                                            access_token=token), 401, "M_UNKNOWN_TOKEN")
        channel = self.make_request("POST", "/_matrix/client/v3/logout", access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.make_request("POST", "/_matrix/client/v3/logout", access_token=token)
        self.assert_error(channel, 401, "M_UNKNOWN_TOKEN")
