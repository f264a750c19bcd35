"""POST /account/password and /account/deactivate (with user-interactive auth)."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError
from tests.harness import HomeserverTestCase, override_config

PASSWORD = "/_matrix/client/v3/account/password"
DEACTIVATE = "/_matrix/client/v3/account/deactivate"
WHOAMI = "/_matrix/client/v3/account/whoami"
LOGIN = "/_matrix/client/v3/login"
PASSWORD_FLOWS = [{"stages": ["m.login.password"]}]


def password_auth(session: str, password: str = "password",
                  user: str = "alice") -> dict[str, Any]:
    return {"type": "m.login.password", "session": session, "password": password,
            "identifier": {"type": "m.id.user", "user": user}}


class AccountTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.user_id = self.register_user("alice")
        self.token = self.login("alice", device_id="MAIN")
        self.stores = hs.get_datastores()

    def start_uia(self, path: str, body: dict[str, Any]) -> str:
        """Send the first request of a flow and return the UIA session from the 401."""
        channel = self.make_request("POST", path, body, access_token=self.token)
        self.assertEqual(channel.code, 401, channel.result)
        self.assertEqual(channel.json_body["flows"], PASSWORD_FLOWS)
        self.assertNotIn("errcode", channel.json_body)
        session: str = channel.json_body["session"]
        return session

    def try_login(self, password: str, user: str = "alice") -> Any:
        return self.make_request("POST", LOGIN, {
            "type": "m.login.password", "password": password,
            "identifier": {"type": "m.id.user", "user": user},
        })

    def device_ids(self) -> list[str]:
        return [d.device_id for d in self.get_success(self.stores.devices.get_devices(
            self.user_id))]

    # -- whoami --

    def test_whoami(self) -> None:
        """whoami still names the user and device of the token."""
        channel = self.make_request("GET", WHOAMI, access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body,
                         {"user_id": self.user_id, "device_id": "MAIN", "is_guest": False})

    # -- password --

    def test_change_password(self) -> None:
        """A two-request UIA flow changes the password and logs out the other devices."""
        other = self.login("alice", device_id="OTHER")
        body = {"new_password": "new-secret"}
        session = self.start_uia(PASSWORD, body)
        channel = self.make_request("POST", PASSWORD, {**body, "auth": password_auth(session)},
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        self.assert_error(self.try_login("password"), 403, "M_FORBIDDEN")
        self.assertEqual(self.try_login("new-secret").code, 200)
        # The requester's session is kept; the other one is gone with its device.
        self.assertEqual(self.make_request("GET", WHOAMI, access_token=self.token).code, 200)
        self.assert_error(self.make_request("GET", WHOAMI, access_token=other),
                          401, "M_UNKNOWN_TOKEN")
        self.assertIn("MAIN", self.device_ids())
        self.assertNotIn("OTHER", self.device_ids())

    def test_change_password_keeps_devices(self) -> None:
        """With `logout_devices: false` other sessions and devices survive."""
        other = self.login("alice", device_id="OTHER")
        body = {"new_password": "new-secret", "logout_devices": False}
        session = self.start_uia(PASSWORD, body)
        channel = self.make_request("POST", PASSWORD, {**body, "auth": password_auth(session)},
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.make_request("GET", WHOAMI, access_token=other).code, 200)
        self.assertEqual(self.device_ids(), ["MAIN", "OTHER"])

    def test_change_password_wrong_password(self) -> None:
        """A wrong current password re-sends the challenge with M_FORBIDDEN; nothing changes."""
        body = {"new_password": "new-secret"}
        session = self.start_uia(PASSWORD, body)
        channel = self.make_request(
            "POST", PASSWORD, {**body, "auth": password_auth(session, "wrong")},
            access_token=self.token,
        )
        self.assertEqual(channel.code, 401, channel.result)
        self.assertEqual(channel.json_body["errcode"], "M_FORBIDDEN")
        self.assertEqual(channel.json_body["flows"], PASSWORD_FLOWS)
        self.assertEqual(channel.json_body["session"], session)
        self.assertEqual(self.try_login("password").code, 200)

    def test_change_password_other_users_credentials(self) -> None:
        """Bob's correct password does not authorise changing Alice's password."""
        self.register_user("bob", "bobs-password")
        body = {"new_password": "new-secret"}
        session = self.start_uia(PASSWORD, body)
        channel = self.make_request(
            "POST", PASSWORD, {**body, "auth": password_auth(session, "bobs-password", "bob")},
            access_token=self.token,
        )
        self.assertEqual(channel.code, 401, channel.result)
        self.assertEqual(channel.json_body["errcode"], "M_FORBIDDEN")
        self.assertEqual(self.try_login("password").code, 200)

    def test_new_password_not_kept_in_uia_session(self) -> None:
        """The UIA session stored in the database does not hold the new password."""
        session = self.start_uia(PASSWORD, {"new_password": "new-secret"})
        stored = self.get_success(self.stores.ui_auth.get_session(session))
        self.assertNotIn("new_password", stored.clientdict)
        self.assertNotIn("new-secret", repr(stored))

    def test_uia_session_bound_to_operation(self) -> None:
        """A session opened for a password change cannot authorise a deactivation."""
        session = self.start_uia(PASSWORD, {"new_password": "new-secret"})
        channel = self.make_request("POST", DEACTIVATE, {"auth": password_auth(session)},
                                    access_token=self.token)
        self.assert_error(channel, 403, "M_FORBIDDEN")
        self.assertEqual(self.make_request("GET", WHOAMI, access_token=self.token).code, 200)

    @override_config({"password_config": {"policy": {"minimum_length": 8}}})
    def test_weak_password(self) -> None:
        """A new password breaking the policy is 400 M_WEAK_PASSWORD, before any UIA."""
        channel = self.make_request("POST", PASSWORD, {"new_password": "short"},
                                    access_token=self.token)
        self.assert_error(channel, 400, "M_WEAK_PASSWORD")

    def test_password_bad_bodies(self) -> None:
        """Missing or mistyped fields are 400 M_MISSING_PARAM / M_BAD_JSON / M_NOT_JSON."""
        cases = [
            ({}, "M_MISSING_PARAM"),
            ({"logout_devices": False}, "M_MISSING_PARAM"),
            ({"new_password": 123}, "M_BAD_JSON"),
            ({"new_password": "x", "logout_devices": "yes"}, "M_BAD_JSON"),
            ({"new_password": "x", "auth": "password"}, "M_BAD_JSON"),
            ([1, 2], "M_BAD_JSON"),
            (b"{nope", "M_NOT_JSON"),
        ]
        for content, errcode in cases:
            channel = self.make_request("POST", PASSWORD, content, access_token=self.token)
            self.assert_error(channel, 400, errcode)

    def test_password_needs_token(self) -> None:
        """Without a token 401 M_MISSING_TOKEN; with a bad one 401 M_UNKNOWN_TOKEN."""
        body = {"new_password": "new-secret"}
        self.assert_error(self.make_request("POST", PASSWORD, body), 401, "M_MISSING_TOKEN")
        self.assert_error(self.make_request("POST", PASSWORD, body, access_token="axo_nope"),
                          401, "M_UNKNOWN_TOKEN")

    # -- deactivation --

    def deactivate(self) -> Any:
        session = self.start_uia(DEACTIVATE, {})
        return self.make_request("POST", DEACTIVATE, {"auth": password_auth(session)},
                                 access_token=self.token)

    def test_deactivate(self) -> None:
        """Deactivation answers the unbind result and ends every session and device."""
        other = self.login("alice", device_id="OTHER")
        channel = self.deactivate()
        self.assertEqual(channel.code, 200, channel.result)
        # No 3PIDs to unbind: the spec says the result MUST then be "success".
        self.assertEqual(channel.json_body, {"id_server_unbind_result": "success"})
        for token in (self.token, other):
            self.assert_error(self.make_request("GET", WHOAMI, access_token=token),
                              401, "M_UNKNOWN_TOKEN")
        self.assertEqual(self.device_ids(), [])
        user = self.get_success(self.stores.users.get_user(self.user_id))
        self.assertTrue(user.deactivated)
        self.assertIsNone(user.password_hash)

    def test_deactivated_user_cannot_log_in(self) -> None:
        """After deactivation login is 403 M_USER_DEACTIVATED (and issues no token)."""
        self.assertEqual(self.deactivate().code, 200)
        channel = self.try_login("password")
        self.assertEqual(channel.code, 403, channel.result)
        self.assertNotIn("access_token", channel.json_body)
        self.assertEqual(channel.json_body["errcode"], "M_USER_DEACTIVATED")

    def test_deactivate_clears_profile_keeps_name_taken(self) -> None:
        """The whole profile is cleared and the user ID cannot be registered again."""
        db = self.hs.get_db_pool()
        self.get_success(db.execute(
            "set_avatar", "UPDATE profiles SET avatar_url = ? WHERE user_id = ?",
            "mxc://test/abc", self.user_id))
        channel = self.make_request("PUT", f"/_matrix/client/v3/profile/{self.user_id}/m.tz",
                                    {"m.tz": "Europe/Paris"}, access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.deactivate().code, 200)
        rows = self.get_success(db.execute(
            "get_profile", "SELECT displayname, avatar_url FROM profiles WHERE user_id = ?",
            self.user_id))
        self.assertEqual([tuple(r) for r in rows], [(None, None)])
        fields = self.get_success(db.execute(
            "get_fields", "SELECT COUNT(*) FROM profile_fields WHERE user_id = ?", self.user_id))
        self.assertEqual(fields[0][0], 0)
        err = self.get_failure(self.hs.get_registration_handler().register_user("alice"),
                               MatrixError)
        self.assertEqual(err.errcode, "M_USER_IN_USE")  # type: ignore[attr-defined]

    def test_deactivate_wrong_password(self) -> None:
        """A wrong password re-sends the challenge with M_FORBIDDEN; the account stays."""
        session = self.start_uia(DEACTIVATE, {})
        channel = self.make_request("POST", DEACTIVATE,
                                    {"auth": password_auth(session, "wrong")},
                                    access_token=self.token)
        self.assertEqual(channel.code, 401, channel.result)
        self.assertEqual(channel.json_body["errcode"], "M_FORBIDDEN")
        self.assertEqual(channel.json_body["flows"], PASSWORD_FLOWS)
        self.assertEqual(self.make_request("GET", WHOAMI, access_token=self.token).code, 200)

    def test_deactivate_bad_bodies(self) -> None:
        """Mistyped fields are 400 M_BAD_JSON and the account is untouched."""
        for content in ({"erase": "yes"}, {"id_server": 5}, {"auth": []}, [1]):
            channel = self.make_request("POST", DEACTIVATE, content, access_token=self.token)
            self.assert_error(channel, 400, "M_BAD_JSON")
        channel = self.make_request("POST", DEACTIVATE, b"", access_token=self.token)
        self.assert_error(channel, 400, "M_NOT_JSON")
        self.assertEqual(self.make_request("GET", WHOAMI, access_token=self.token).code, 200)

    def test_deactivate_needs_token(self) -> None:
        """Without a token 401 M_MISSING_TOKEN; with a bad one 401 M_UNKNOWN_TOKEN."""
        self.assert_error(self.make_request("POST", DEACTIVATE, {}), 401, "M_MISSING_TOKEN")
        self.assert_error(self.make_request("POST", DEACTIVATE, {}, access_token="axo_nope"),
                          401, "M_UNKNOWN_TOKEN")


class UIASessionReuseTestCase(HomeserverTestCase):
    def test_completed_session_cannot_authorise_again(self) -> None:
        """A UIA session that authorised a password change cannot be replayed for another."""
        self.register_user("alice", "password")
        token = self.login("alice", "password")
        path = "/_matrix/client/v3/account/password"
        channel = self.make_request("POST", path, {"new_password": "new-password-1"},
                                    access_token=token)
        session = channel.json_body["session"]
        auth = {"type": "m.login.password", "session": session,
                "identifier": {"type": "m.id.user", "user": "alice"}, "password": "password"}
        channel = self.make_request("POST", path, {"new_password": "new-password-1",
                                                   "auth": auth}, access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.make_request("POST", path, {"new_password": "new-password-2",
                                                   "auth": {"session": session}},
                                    access_token=token)
        self.assert_error(channel, 400, "M_UNKNOWN")

    def test_resent_stage_is_idempotent(self) -> None:
        """Re-sending an already completed stage in a kept session does not fail (PostgreSQL)."""
        body = {"username": "bob", "password": "password-123"}
        channel = self.make_request("POST", "/_matrix/client/v3/register", body)
        session = channel.json_body["session"]
        store = self.hs.get_datastores().ui_auth
        self.get_success(store.mark_stage_complete(session, "m.login.dummy", True))
        self.get_success(store.mark_stage_complete(session, "m.login.dummy", True))
        channel = self.make_request("POST", "/_matrix/client/v3/register",
                                    {**body, "auth": {"type": "m.login.dummy",
                                                      "session": session}})
        self.assertEqual(channel.code, 200, channel.result)
