"""The real server process over real HTTP on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import unittest

from tests.integration.server_process import ServerProcess

LOGIN = "/_matrix/client/v3/login"
WHOAMI = "/_matrix/client/v3/account/whoami"


class RealServerTests:
    """Mixed into one TestCase per database engine."""

    engine = "sqlite3"
    server: ServerProcess

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess(cls.engine, config_overrides={
            "enable_registration": True, "enable_registration_without_verification": True})
        try:
            cls.server.start()
            cls.server.register_user("alice", "correct-horse-1")
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def assert_error(self, result: tuple[int, dict[str, str], bytes], code: int,
                     errcode: str) -> None:
        status, _, raw = result
        self.assertEqual(status, code, raw)  # type: ignore[attr-defined]
        self.assertEqual(json.loads(raw)["errcode"], errcode)  # type: ignore[attr-defined]
        self.assertNotIn(b"Traceback", raw)  # type: ignore[attr-defined]

    def test_login_whoami_room_and_logout(self) -> None:
        """A registered user logs in, makes a room, sends, and logs out over real HTTP."""
        s = self.server
        token = s.login("alice", "correct-horse-1")
        code, body = s.json("GET", WHOAMI, token=token)
        self.assertEqual((code, body["user_id"]), (200, "@alice:localhost"))  # type: ignore[attr-defined]
        code, body = s.json("POST", "/_matrix/client/v3/createRoom", {"name": "it"}, token)
        self.assertEqual(code, 200, body)  # type: ignore[attr-defined]
        room_id = body["room_id"]
        code, body = s.json("PUT", f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t1",
                            {"msgtype": "m.text", "body": "hello"}, token)
        self.assertEqual(code, 200, body)  # type: ignore[attr-defined]
        code, body = s.json("GET", f"/_matrix/client/v3/rooms/{room_id}/state/m.room.name/",
                            token=token)
        self.assertEqual((code, body), (200, {"name": "it"}))  # type: ignore[attr-defined]
        self.assertEqual(s.json("POST", "/_matrix/client/v3/logout", {}, token)[0], 200)  # type: ignore[attr-defined]
        self.assert_error(s.request("GET", WHOAMI, token=token), 401, "M_UNKNOWN_TOKEN")

    def test_bad_requests(self) -> None:
        """Every malformed request gets its Matrix error, never a 500 or a traceback."""
        s = self.server
        self.assert_error(s.request("GET", "/_matrix/client/v3/nope"), 404, "M_UNRECOGNIZED")
        self.assert_error(s.request("DELETE", LOGIN), 405, "M_UNRECOGNIZED")
        self.assert_error(s.request("POST", LOGIN, b"{not json"), 400, "M_NOT_JSON")
        self.assert_error(s.request("POST", LOGIN, {"type": 7}), 400, "M_BAD_JSON")
        self.assert_error(s.request("GET", WHOAMI), 401, "M_MISSING_TOKEN")
        self.assert_error(s.request("GET", WHOAMI, token="axo_bogus"), 401, "M_UNKNOWN_TOKEN")
        self.assert_error(s.request("POST", LOGIN, b"x" * (2 * 1024 * 1024)), 413,
                          "M_TOO_LARGE")
        self.assert_error(s.request("POST", LOGIN, {
            "type": "m.login.password", "password": "wrong",
            "identifier": {"type": "m.id.user", "user": "alice"}}), 403, "M_FORBIDDEN")

    def test_server_header_names_no_version(self) -> None:
        """Responses say `Server: Axon`: neither Twisted nor any version number."""
        for method, path in (("GET", "/_matrix/client/versions"), ("GET", "/nope"),
                             ("POST", LOGIN)):
            _, headers, _ = self.server.request(method, path)
            self.assertEqual(headers.get("Server"), "Axon")  # type: ignore[attr-defined]

    def test_cors_preflight(self) -> None:
        """OPTIONS answers 200 with CORS headers."""
        status, headers, _ = self.server.request("OPTIONS", LOGIN)
        self.assertEqual(status, 200)  # type: ignore[attr-defined]
        self.assertEqual(headers.get("Access-Control-Allow-Origin"), "*")  # type: ignore[attr-defined]

    def test_register_with_dummy_auth(self) -> None:
        """/register completes the m.login.dummy flow against the real process."""
        s = self.server
        code, body = s.json("POST", "/_matrix/client/v3/register",
                            {"username": "bob", "password": "another-pass-1"})
        self.assertEqual(code, 401, body)  # type: ignore[attr-defined]
        code, body = s.json("POST", "/_matrix/client/v3/register", {
            "username": "bob", "password": "another-pass-1",
            "auth": {"type": "m.login.dummy", "session": body["session"]}})
        self.assertEqual((code, body["user_id"]), (200, "@bob:localhost"))  # type: ignore[attr-defined]


class SqliteRealServerTestCase(RealServerTests, unittest.TestCase):
    engine = "sqlite3"


class PostgresRealServerTestCase(RealServerTests, unittest.TestCase):
    engine = "psycopg2"
