"""Token-authenticated registration, the validity check, and the tokens admin API."""

from __future__ import annotations

import string
from typing import Any

from tests.harness import DEFAULT_CONFIG, FakeChannel, HomeserverTestCase, override_config

REGISTER = "/_matrix/client/v3/register"
VALIDITY = "/_matrix/client/v1/register/m.login.registration_token/validity"
ADMIN = "/_synapse/admin/v1/registration_tokens"
DAY_S = 24 * 60 * 60


class TokenTestCase(HomeserverTestCase):
    def make_config(self) -> dict[str, Any]:
        return {**DEFAULT_CONFIG, "enable_registration_without_verification": False,
                "registration_requires_token": True}

    def prepare(self, reactor: Any, hs: Any) -> None:
        self.register_user("admin", admin=True)
        self.admin_token = self.login("admin")

    def now_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def new_token(self, **fields: Any) -> dict[str, Any]:
        channel = self.make_request("POST", f"{ADMIN}/new", fields,
                                    access_token=self.admin_token)
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body
        return body

    def token_info(self, token: str) -> dict[str, Any]:
        channel = self.make_request("GET", f"{ADMIN}/{token}", access_token=self.admin_token)
        self.assertEqual(channel.code, 200, channel.result)
        body: dict[str, Any] = channel.json_body
        return body

    def start(self, username: str) -> str:
        channel = self.make_request("POST", REGISTER, {"username": username, "password": "pw"})
        self.assertEqual(channel.code, 401, channel.result)
        session: str = channel.json_body["session"]
        return session

    def use_token(self, session: str, token: Any) -> FakeChannel:
        return self.make_request("POST", REGISTER, {"auth": {
            "type": "m.login.registration_token", "token": token, "session": session}})


class TokenRegistrationTestCase(TokenTestCase):
    def test_flow_requires_token(self) -> None:
        """With registration_requires_token the only flow is the token stage; dummy is refused."""
        channel = self.make_request("POST", REGISTER, {"username": "alice", "password": "pw"})
        self.assertEqual(channel.code, 401)
        self.assertEqual(channel.json_body["flows"],
                         [{"stages": ["m.login.registration_token"]}])
        channel = self.make_request("POST", REGISTER, {"auth": {
            "type": "m.login.dummy", "session": channel.json_body["session"]}})
        self.assert_error(channel, 400, "M_UNRECOGNIZED")

    def test_register_with_token_counts_completed(self) -> None:
        """A valid token registers the account and counts one completed use."""
        self.new_token(token="abcd", uses_allowed=2)
        session = self.start("alice")
        channel = self.use_token(session, "abcd")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["user_id"], "@alice:test")
        info = self.token_info("abcd")
        self.assertEqual((info["pending"], info["completed"]), (0, 1))
        # A retry of the finished session logs in again without counting another use.
        channel = self.make_request("POST", REGISTER, {"auth": {"session": session}})
        self.assertEqual(channel.json_body["user_id"], "@alice:test")
        info = self.token_info("abcd")
        self.assertEqual((info["pending"], info["completed"]), (0, 1))

    def test_pending_while_session_open(self) -> None:
        """A session past the token stage holds a pending use until it expires."""
        self.new_token(token="once", uses_allowed=1)
        session = self.start("carol")
        # The name is taken meanwhile, so the session passes the stage but cannot finish.
        self.register_user("carol")
        self.assert_error(self.use_token(session, "once"), 400, "M_USER_IN_USE")
        info = self.token_info("once")
        self.assertEqual((info["pending"], info["completed"]), (1, 0))

        # The held use makes the token unusable for anyone else...
        channel = self.use_token(self.start("dave"), "once")
        self.assert_error(channel, 401, "M_FORBIDDEN")
        self.assertFalse(self.make_request("GET", f"{VALIDITY}?token=once").json_body["valid"])

        # ...until the holding session expires and its use is given back.
        self.reactor.advance(DAY_S + 60)
        info = self.token_info("once")
        self.assertEqual((info["pending"], info["completed"]), (0, 0))
        channel = self.use_token(self.start("dave"), "once")
        self.assertEqual(channel.code, 200, channel.result)
        info = self.token_info("once")
        self.assertEqual((info["pending"], info["completed"]), (0, 1))

    def test_used_up_token_refused(self) -> None:
        """Once uses_allowed registrations completed, the token gives 401 M_FORBIDDEN."""
        self.new_token(token="single", uses_allowed=1)
        self.assertEqual(self.use_token(self.start("alice"), "single").code, 200)
        session = self.start("bob")
        channel = self.use_token(session, "single")
        self.assert_error(channel, 401, "M_FORBIDDEN")
        # The body is still the UIA challenge, so the client can try another token.
        self.assertEqual(channel.json_body["session"], session)
        self.assertEqual(channel.json_body["flows"],
                         [{"stages": ["m.login.registration_token"]}])
        self.assertNotIn("completed", channel.json_body)

    def test_zero_uses_allowed_is_invalid(self) -> None:
        """uses_allowed 0 disables a token without deleting it."""
        self.new_token(token="off", uses_allowed=0)
        self.assert_error(self.use_token(self.start("alice"), "off"), 401, "M_FORBIDDEN")

    def test_expired_token_refused(self) -> None:
        """A token past its expiry_time is refused; before it, it works."""
        self.new_token(token="soon", expiry_time=self.now_ms() + 5_000)
        self.assertEqual(self.use_token(self.start("alice"), "soon").code, 200)
        self.reactor.advance(6)
        self.assert_error(self.use_token(self.start("bob"), "soon"), 401, "M_FORBIDDEN")

    def test_unknown_missing_and_malformed_token(self) -> None:
        """Unknown token: 401 M_FORBIDDEN; no token: 400 M_MISSING_PARAM; not a string: 400."""
        session = self.start("alice")
        self.assert_error(self.use_token(session, "nope"), 401, "M_FORBIDDEN")
        channel = self.make_request("POST", REGISTER, {"auth": {
            "type": "m.login.registration_token", "session": session}})
        self.assert_error(channel, 400, "M_MISSING_PARAM")
        self.assert_error(self.use_token(session, 1234), 400, "M_BAD_JSON")

    def test_session_keeps_its_token(self) -> None:
        """A session that passed the stage cannot switch tokens, and counts only once."""
        self.new_token(token="first")
        self.new_token(token="second")
        session = self.start("erin")
        self.register_user("erin")
        self.assert_error(self.use_token(session, "first"), 400, "M_USER_IN_USE")
        self.assert_error(self.use_token(session, "second"), 400, "M_INVALID_PARAM")
        # Claiming again for the same session is a no-op that reports the held token.
        store = self.hs.get_datastores().registration_tokens
        for token in ("first", "second"):
            self.assertEqual(self.get_success(store.claim(token, session, self.now_ms())),
                             "first")
        self.assertEqual(self.token_info("first")["pending"], 1)
        self.assertEqual(self.token_info("second")["pending"], 0)


class TokenValidityTestCase(TokenTestCase):
    def test_validity(self) -> None:
        """The validity endpoint is true for a usable token and false otherwise."""
        self.new_token(token="good")
        self.new_token(token="empty", uses_allowed=0)
        for token, valid in (("good", True), ("empty", False), ("unknown", False)):
            channel = self.make_request("GET", f"{VALIDITY}?token={token}")
            self.assertEqual(channel.code, 200, channel.result)
            self.assertEqual(channel.json_body, {"valid": valid})
        self.assert_error(self.make_request("GET", VALIDITY), 400, "M_MISSING_PARAM")

    @override_config({"rc_registration": {"per_second": 0.1, "burst_count": 2}})
    def test_validity_rate_limited(self) -> None:
        """Token guessing through the validity endpoint is rate limited per address."""
        for _ in range(2):
            self.assertEqual(self.make_request("GET", f"{VALIDITY}?token=x").code, 200)
        self.assert_error(self.make_request("GET", f"{VALIDITY}?token=x"),
                          429, "M_LIMIT_EXCEEDED")

    @override_config({"enable_registration": False})
    def test_validity_when_registration_disabled(self) -> None:
        """With registration off every token is refused with 403 M_FORBIDDEN."""
        self.assert_error(self.make_request("GET", f"{VALIDITY}?token=x"), 403, "M_FORBIDDEN")


class TokenAdminTestCase(TokenTestCase):
    def test_create_with_defaults(self) -> None:
        """POST /new with {} makes a random 16-character token with no limits."""
        body = self.new_token()
        self.assertEqual(len(body["token"]), 16)
        self.assertTrue(set(body["token"]) <= set(string.ascii_letters + string.digits + "._~-"))
        self.assertEqual({k: v for k, v in body.items() if k != "token"}, {
            "uses_allowed": None, "pending": 0, "completed": 0, "expiry_time": None})
        self.assertEqual(len(self.new_token(length=64)["token"]), 64)

    def test_create_given_fields(self) -> None:
        """A named token keeps its fields; the same name twice is 400 M_INVALID_PARAM."""
        expiry = self.now_ms() + 60_000
        body = self.new_token(token="defg", uses_allowed=1, expiry_time=expiry)
        self.assertEqual(body, {"token": "defg", "uses_allowed": 1, "pending": 0,
                                "completed": 0, "expiry_time": expiry})
        self.assertEqual(self.token_info("defg"), body)
        channel = self.make_request("POST", f"{ADMIN}/new", {"token": "defg"},
                                    access_token=self.admin_token)
        self.assert_error(channel, 400, "M_INVALID_PARAM")

    def test_create_bad_values(self) -> None:
        """Bad values are 400 M_INVALID_PARAM; wrong types 400 M_BAD_JSON."""
        cases: list[tuple[Any, str]] = [
            ({"token": ""}, "M_INVALID_PARAM"),
            ({"token": "a" * 65}, "M_INVALID_PARAM"),
            ({"token": "has space"}, "M_INVALID_PARAM"),
            ({"token": "slash/"}, "M_INVALID_PARAM"),
            ({"length": 0}, "M_INVALID_PARAM"),
            ({"length": 65}, "M_INVALID_PARAM"),
            ({"uses_allowed": -1}, "M_INVALID_PARAM"),
            ({"expiry_time": self.now_ms() - 1}, "M_INVALID_PARAM"),
            ({"token": 5}, "M_BAD_JSON"),
            ({"length": "16"}, "M_BAD_JSON"),
            ({"length": True}, "M_BAD_JSON"),
            ({"uses_allowed": 1.5}, "M_BAD_JSON"),
            ({"expiry_time": "tomorrow"}, "M_BAD_JSON"),
            (b"not json", "M_NOT_JSON"),
        ]
        for content, errcode in cases:
            with self.subTest(content=content):
                channel = self.make_request("POST", f"{ADMIN}/new", content,
                                            access_token=self.admin_token)
                self.assert_error(channel, 400, errcode)

    def test_list_and_filter(self) -> None:
        """The list has every token; valid=true/false filter on uses and expiry."""
        self.new_token(token="a-valid")
        self.new_token(token="b-used", uses_allowed=0)
        self.new_token(token="c-expiring", expiry_time=self.now_ms() + 1000)
        self.reactor.advance(2)

        def names(query: str = "") -> list[str]:
            channel = self.make_request("GET", ADMIN + query, access_token=self.admin_token)
            self.assertEqual(channel.code, 200, channel.result)
            return [t["token"] for t in channel.json_body["registration_tokens"]]

        self.assertEqual(names(), ["a-valid", "b-used", "c-expiring"])
        self.assertEqual(names("?valid=true"), ["a-valid"])
        self.assertEqual(names("?valid=false"), ["b-used", "c-expiring"])
        channel = self.make_request("GET", ADMIN + "?valid=maybe", access_token=self.admin_token)
        self.assert_error(channel, 400, "M_INVALID_PARAM")

    def test_get_unknown(self) -> None:
        """An unknown token is 404 M_NOT_FOUND naming it, as in Synapse."""
        channel = self.make_request("GET", f"{ADMIN}/1234", access_token=self.admin_token)
        self.assert_error(channel, 404, "M_NOT_FOUND")
        self.assertEqual(channel.json_body["error"], "No such registration token: 1234")

    def test_update(self) -> None:
        """PUT changes given fields, keeps omitted ones, and null removes a limit."""
        self.new_token(token="defg", uses_allowed=1)
        expiry = self.now_ms() + 100_000
        channel = self.make_request("PUT", f"{ADMIN}/defg", {"expiry_time": expiry},
                                    access_token=self.admin_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"token": "defg", "uses_allowed": 1, "pending": 0,
                                             "completed": 0, "expiry_time": expiry})
        channel = self.make_request("PUT", f"{ADMIN}/defg", {"uses_allowed": None},
                                    access_token=self.admin_token)
        self.assertEqual(channel.json_body["uses_allowed"], None)
        self.assertEqual(channel.json_body["expiry_time"], expiry)
        channel = self.make_request("PUT", f"{ADMIN}/defg", {}, access_token=self.admin_token)
        self.assertEqual(channel.json_body["expiry_time"], expiry)

    def test_update_errors(self) -> None:
        """PUT on an unknown token is 404; bad values 400 M_INVALID_PARAM or M_BAD_JSON."""
        channel = self.make_request("PUT", f"{ADMIN}/nope", {"uses_allowed": 3},
                                    access_token=self.admin_token)
        self.assert_error(channel, 404, "M_NOT_FOUND")
        channel = self.make_request("PUT", f"{ADMIN}/nope", {}, access_token=self.admin_token)
        self.assert_error(channel, 404, "M_NOT_FOUND")
        self.new_token(token="defg")
        for content, errcode in (({"uses_allowed": -2}, "M_INVALID_PARAM"),
                                 ({"expiry_time": 1}, "M_INVALID_PARAM"),
                                 ({"uses_allowed": "3"}, "M_BAD_JSON")):
            channel = self.make_request("PUT", f"{ADMIN}/defg", content,
                                        access_token=self.admin_token)
            self.assert_error(channel, 400, errcode)

    def test_delete(self) -> None:
        """DELETE removes a token ({}), and then it is 404."""
        self.new_token(token="wxyz")
        channel = self.make_request("DELETE", f"{ADMIN}/wxyz", access_token=self.admin_token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        for method in ("GET", "DELETE"):
            channel = self.make_request(method, f"{ADMIN}/wxyz", access_token=self.admin_token)
            self.assert_error(channel, 404, "M_NOT_FOUND")
        self.assert_error(self.use_token(self.start("alice"), "wxyz"), 401, "M_FORBIDDEN")

    def test_admin_only(self) -> None:
        """Every endpoint is 401 M_MISSING_TOKEN without a token and 403 for non-admins."""
        self.new_token(token="abcd")
        self.register_user("mallory")
        user_token = self.login("mallory")
        requests: list[tuple[str, str, Any]] = [("GET", ADMIN, None), ("POST", f"{ADMIN}/new", {}),
                    ("GET", f"{ADMIN}/abcd", None), ("PUT", f"{ADMIN}/abcd", {}),
                    ("DELETE", f"{ADMIN}/abcd", None)]
        for method, path, content in requests:
            with self.subTest(method=method, path=path):
                self.assert_error(self.make_request(method, path, content), 401,
                                  "M_MISSING_TOKEN")
                self.assert_error(self.make_request(method, path, content,
                                                    access_token=user_token),
                                  403, "M_FORBIDDEN")
        self.assertEqual(self.token_info("abcd")["token"], "abcd")
