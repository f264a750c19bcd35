"""POST /register with user-interactive auth, and GET /register/available."""

from __future__ import annotations

from typing import Any

from tests.harness import FakeChannel, HomeserverTestCase, override_config

REGISTER = "/_matrix/client/v3/register"
AVAILABLE = "/_matrix/client/v3/register/available"
WHOAMI = "/_matrix/client/v3/account/whoami"


class RegisterTestCase(HomeserverTestCase):
    def start(self, body: dict[str, Any], path: str = REGISTER) -> str:
        """Send the first request of a flow; return the UIA session ID of the 401."""
        channel = self.make_request("POST", path, body)
        self.assertEqual(channel.code, 401, channel.result)
        session: str = channel.json_body["session"]
        return session

    def finish(self, session: str, body: dict[str, Any] | None = None,
               path: str = REGISTER) -> FakeChannel:
        """Complete the dummy stage of a session."""
        content = {**(body or {}), "auth": {"type": "m.login.dummy", "session": session}}
        return self.make_request("POST", path, content)

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = self.finish(self.start(body))
        self.assertEqual(channel.code, 200, channel.result)
        result: dict[str, Any] = channel.json_body
        return result

    def test_uia_dance(self) -> None:
        """No auth gives the 401 challenge; the dummy stage then registers and logs in."""
        channel = self.make_request("POST", REGISTER,
                                    {"username": "alice", "password": "secret-pw"})
        self.assertEqual(channel.code, 401, channel.result)
        challenge = channel.json_body
        self.assertEqual(challenge["flows"], [{"stages": ["m.login.dummy"]}])
        self.assertEqual(challenge["params"], {})
        self.assertIsInstance(challenge["session"], str)
        self.assertNotIn("completed", challenge)

        # The username and password come from the first request of the session.
        channel = self.finish(challenge["session"])
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["user_id"], "@alice:test")
        self.assertEqual(body["home_server"], "test")
        self.assertEqual(len(body["device_id"]), 10)
        self.assertNotIn("refresh_token", body)
        channel = self.make_request("GET", WHOAMI, access_token=body["access_token"])
        self.assertEqual(channel.json_body["user_id"], "@alice:test")
        self.assertEqual(channel.json_body["device_id"], body["device_id"])
        self.login("alice", "secret-pw")

    def test_r0_path(self) -> None:
        """The r0 prefix is served too."""
        path = "/_matrix/client/r0/register"
        channel = self.finish(self.start({"username": "bob", "password": "pw"}, path), path=path)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["user_id"], "@bob:test")

    def test_password_not_kept_in_plaintext(self) -> None:
        """The UIA session holds a hash of the password, never the password itself."""
        session_id = self.start({"username": "alice", "password": "plain-secret"})
        store = self.hs.get_datastores().ui_auth
        session = self.get_success(store.get_session(session_id))
        self.assertNotIn("password", session.clientdict)
        self.assertNotIn("plain-secret", repr(session.clientdict) + repr(session.serverdict))
        self.assertTrue(session.serverdict["registration_password_hash"].startswith("$2"))

    def test_device_id_and_display_name(self) -> None:
        """A client-chosen device ID and initial display name are used for the new device."""
        body = self.register({"username": "alice", "password": "pw", "device_id": "PHONE",
                              "initial_device_display_name": "Alice's phone"})
        self.assertEqual(body["device_id"], "PHONE")
        channel = self.make_request("GET", "/_matrix/client/v3/devices/PHONE",
                                    access_token=body["access_token"])
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["display_name"], "Alice's phone")

    def test_display_name_defaults_to_localpart(self) -> None:
        """A new account's profile display name is its localpart."""
        self.register({"username": "carol", "password": "pw"})
        channel = self.make_request("GET", "/_matrix/client/v3/profile/@carol:test")
        self.assertEqual(channel.json_body.get("displayname"), "carol")

    @override_config({"enable_registration": False})
    def test_registration_disabled(self) -> None:
        """With enable_registration off, /register is 403 M_FORBIDDEN before any UIA."""
        channel = self.make_request("POST", REGISTER, {"username": "alice", "password": "pw"})
        self.assert_error(channel, 403, "M_FORBIDDEN")
        self.assertEqual(channel.json_body["error"], "Registration has been disabled")

    def test_guest_kind_forbidden(self) -> None:
        """kind=guest is refused (no guest accounts); an unknown kind is a bad parameter."""
        channel = self.make_request("POST", REGISTER + "?kind=guest", {})
        self.assert_error(channel, 403, "M_GUEST_ACCESS_FORBIDDEN")
        channel = self.make_request("POST", REGISTER + "?kind=robot", {})
        self.assert_error(channel, 400, "M_INVALID_PARAM")

    def test_username_taken_before_uia(self) -> None:
        """A taken username is refused with M_USER_IN_USE on the first request, any case."""
        self.register_user("alice")
        for name in ("alice", "ALICE", "Alice"):
            channel = self.make_request("POST", REGISTER, {"username": name, "password": "pw"})
            self.assert_error(channel, 400, "M_USER_IN_USE")
            self.assertNotIn("session", channel.json_body)

    def test_username_taken_case_insensitively(self) -> None:
        """An existing historical ID differing only in case makes the name taken."""
        users = self.hs.get_datastores().users
        self.get_success(users.register_user("@Bob:test", None, 0))
        channel = self.make_request("POST", REGISTER, {"username": "bob", "password": "pw"})
        self.assert_error(channel, 400, "M_USER_IN_USE")
        channel = self.make_request("GET", AVAILABLE + "?username=bob")
        self.assert_error(channel, 400, "M_USER_IN_USE")

    def test_username_taken_during_auth(self) -> None:
        """A name registered while the client was doing UIA is refused at the end."""
        session = self.start({"username": "carol", "password": "pw"})
        self.register_user("carol")
        self.assert_error(self.finish(session), 400, "M_USER_IN_USE")

    def test_uppercase_username_is_lowercased(self) -> None:
        """/register maps an upper-case username onto its lower-case user ID (as Synapse)."""
        body = self.register({"username": "DaVe", "password": "pw"})
        self.assertEqual(body["user_id"], "@dave:test")

    def test_invalid_usernames(self) -> None:
        """Bad usernames are 400 M_INVALID_USERNAME on the first request, before UIA."""
        for name in ("alice smith", "", "a" * 300, "al:ice", "émile", "_reserved", "12345",
                     "tab\tname"):
            with self.subTest(name=name):
                channel = self.make_request("POST", REGISTER, {"username": name,
                                                               "password": "pw"})
                self.assert_error(channel, 400, "M_INVALID_USERNAME")

    @override_config({"password_config": {"policy": {"minimum_length": 10,
                                                     "require_digit": True}}})
    def test_weak_password(self) -> None:
        """A password breaking the configured policy is 400 M_WEAK_PASSWORD before UIA."""
        for password in ("short1", "longbutnodigits"):
            channel = self.make_request("POST", REGISTER,
                                        {"username": "alice", "password": password})
            self.assert_error(channel, 400, "M_WEAK_PASSWORD")
        body = self.register({"username": "alice", "password": "long-enough-1"})
        self.assertEqual(body["user_id"], "@alice:test")

    def test_no_username_generates_numeric_ids(self) -> None:
        """Without a username the server picks free numeric localparts, one after another."""
        self.register_user("alice")
        first = self.register({"password": "pw"})["user_id"]
        second = self.register({"password": "pw"})["user_id"]
        first_n = int(first[1:].split(":")[0])
        self.assertEqual(second, f"@{first_n + 1}:test")
        self.assertTrue(first.endswith(":test"))

    def test_no_password(self) -> None:
        """The password is optional: the account exists but no password logs in to it."""
        body = self.register({"username": "nopw"})
        self.assertEqual(body["user_id"], "@nopw:test")
        channel = self.make_request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "password": "",
            "identifier": {"type": "m.id.user", "user": "nopw"},
        })
        self.assert_error(channel, 403, "M_FORBIDDEN")

    def test_inhibit_login(self) -> None:
        """inhibit_login returns only the user ID and server name, and creates no device."""
        body = self.register({"username": "bot", "password": "pw", "inhibit_login": True})
        self.assertEqual(body, {"user_id": "@bot:test", "home_server": "test"})
        token = self.login("bot", "pw")
        channel = self.make_request("GET", "/_matrix/client/v3/devices", access_token=token)
        self.assertEqual(len(channel.json_body["devices"]), 1)

    def test_refresh_token(self) -> None:
        """refresh_token: true returns a refresh token and the access token's lifetime."""
        body = self.register({"username": "alice", "password": "pw", "refresh_token": True})
        self.assertTrue(body["refresh_token"].startswith("axr_"))
        self.assertEqual(body["expires_in_ms"], 300_000)
        channel = self.make_request("POST", "/_matrix/client/v3/refresh",
                                    {"refresh_token": body["refresh_token"]})
        self.assertEqual(channel.code, 200, channel.result)

    @override_config({"rc_registration": {"per_second": 0.1, "burst_count": 2}})
    def test_rate_limited(self) -> None:
        """Registrations per address are limited; unfinished challenges do not count."""
        for _ in range(3):
            self.start({"username": "someone", "password": "pw"})
        self.register({"username": "a1", "password": "pw"})
        self.register({"username": "a2", "password": "pw"})
        channel = self.make_request("POST", REGISTER, {"username": "a3", "password": "pw"})
        self.assert_error(channel, 429, "M_LIMIT_EXCEEDED")
        retry_after_ms = channel.json_body["retry_after_ms"]
        self.assertGreater(retry_after_ms, 0)
        # Another address is not affected.
        channel = self.make_request("POST", REGISTER, {"username": "a3", "password": "pw"},
                                    client_ip="10.0.0.2")
        self.assertEqual(channel.code, 401, channel.result)
        self.reactor.advance(retry_after_ms / 1000)
        self.register({"username": "a3", "password": "pw"})

    def test_bad_bodies(self) -> None:
        """Malformed JSON and wrong field types are 400 M_NOT_JSON / M_BAD_JSON."""
        cases: list[tuple[Any, str]] = [
            (b"{not json", "M_NOT_JSON"),
            (b"", "M_NOT_JSON"),
            ([1, 2], "M_BAD_JSON"),
            ({"username": 5}, "M_BAD_JSON"),
            ({"username": "a", "password": 12345}, "M_BAD_JSON"),
            ({"username": "a", "inhibit_login": "yes"}, "M_BAD_JSON"),
            ({"username": "a", "refresh_token": 1}, "M_BAD_JSON"),
            ({"username": "a", "device_id": ["x"]}, "M_BAD_JSON"),
            ({"username": "a", "auth": "dummy"}, "M_BAD_JSON"),
        ]
        for content, errcode in cases:
            with self.subTest(content=content):
                channel = self.make_request("POST", REGISTER, content)
                self.assert_error(channel, 400, errcode)

    def test_bad_auth(self) -> None:
        """An unknown session is 400; a stage type not offered is 400 M_UNRECOGNIZED."""
        channel = self.finish("no-such-session")
        self.assert_error(channel, 400, "M_UNKNOWN")
        session = self.start({"username": "alice", "password": "pw"})
        channel = self.make_request("POST", REGISTER, {"auth": {
            "type": "m.login.password", "password": "pw", "session": session}})
        self.assert_error(channel, 400, "M_UNRECOGNIZED")
        channel = self.make_request("POST", REGISTER, {"auth": {"type": 1, "session": session}})
        self.assert_error(channel, 400, "M_BAD_JSON")

    def test_retry_after_success_logs_in_again(self) -> None:
        """Retrying a finished session returns the same account with a new device."""
        session = self.start({"username": "alice", "password": "pw"})
        first = self.finish(session).json_body
        channel = self.make_request("POST", REGISTER, {"auth": {"session": session}})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["user_id"], "@alice:test")
        self.assertNotEqual(channel.json_body["device_id"], first["device_id"])
        channel = self.make_request("POST", REGISTER, {"username": "other",
                                                       "auth": {"session": session}})
        self.assert_error(channel, 400, "M_INVALID_PARAM")


class UsernameAvailableTestCase(HomeserverTestCase):
    def test_available_and_taken(self) -> None:
        """A free name is available; a taken one is 400 M_USER_IN_USE."""
        channel = self.make_request("GET", AVAILABLE + "?username=alice")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"available": True})
        self.register_user("alice")
        self.assert_error(self.make_request("GET", AVAILABLE + "?username=alice"),
                          400, "M_USER_IN_USE")

    def test_invalid_and_missing(self) -> None:
        """Invalid names (upper case too) are M_INVALID_USERNAME; no name is M_MISSING_PARAM."""
        for name in ("Alice", "a%20b", "", "a" * 300):
            with self.subTest(name=name):
                channel = self.make_request("GET", f"{AVAILABLE}?username={name}")
                self.assert_error(channel, 400, "M_INVALID_USERNAME")
        self.assert_error(self.make_request("GET", AVAILABLE), 400, "M_MISSING_PARAM")

    @override_config({"enable_registration": False})
    def test_disabled(self) -> None:
        """With registration off the check is 403 M_FORBIDDEN."""
        self.assert_error(self.make_request("GET", AVAILABLE + "?username=alice"),
                          403, "M_FORBIDDEN")

    @override_config({"rc_registration": {"per_second": 0.1, "burst_count": 3}})
    def test_rate_limited(self) -> None:
        """Checks are rate limited per address, so names cannot be enumerated quickly."""
        for _ in range(3):
            self.assertEqual(self.make_request("GET", AVAILABLE + "?username=x1").code, 200)
        self.assert_error(self.make_request("GET", AVAILABLE + "?username=x1"),
                          429, "M_LIMIT_EXCEEDED")
        # Checking names does not use up the address's registrations.
        channel = self.make_request("POST", REGISTER, {"username": "x1", "password": "pw"})
        self.assertEqual(channel.code, 401, channel.result)
