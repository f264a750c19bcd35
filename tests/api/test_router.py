"""The router's error rendering and request parsing, shared by every endpoint."""

from __future__ import annotations

from typing import Any

from rest.http import HttpRequest, RestServlet, client_patterns, parse_json_object
from tests.harness import HomeserverTestCase

WHOAMI = "/_matrix/client/v3/account/whoami"


class _Exploding(RestServlet):
    PATTERNS = client_patterns("/io.axon.test/explode")

    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        raise RuntimeError("secret internals")

    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        return 200, {"echo": parse_json_object(request)}


class RouterTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        _Exploding().register(self.router)

    def test_unknown_path(self) -> None:
        """An unknown path is 404 M_UNRECOGNIZED."""
        self.assert_error(self.make_request("GET", "/_matrix/client/v3/nope"),
                          404, "M_UNRECOGNIZED")

    def test_wrong_method(self) -> None:
        """A known path with the wrong method is 405 M_UNRECOGNIZED."""
        self.assert_error(self.make_request("DELETE", "/_matrix/client/v3/login"),
                          405, "M_UNRECOGNIZED")

    def test_options_has_cors(self) -> None:
        """OPTIONS (CORS preflight) answers 200 with the CORS headers, on any path."""
        channel = self.make_request("OPTIONS", "/_matrix/client/v3/login")
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")
        self.assertIn("Authorization", channel.header("Access-Control-Allow-Headers") or "")

    def test_unexpected_error_is_500_without_traceback(self) -> None:
        """An unexpected exception is 500 M_UNKNOWN with no internals in the body."""
        with self.assertLogs("rest.http", "ERROR"):
            channel = self.make_request("GET", "/_matrix/client/v3/io.axon.test/explode")
        self.assert_error(channel, 500, "M_UNKNOWN")
        self.assertNotIn(b"secret internals", channel.result)
        self.assertNotIn(b"Traceback", channel.result)

    def test_json_parsing(self) -> None:
        """Invalid JSON, NaN and non-objects are refused; valid UTF-8 objects pass."""
        path = "/_matrix/client/v3/io.axon.test/explode"
        for body, errcode in ((b"{", "M_NOT_JSON"), (b'{"a": NaN}', "M_NOT_JSON"),
                              (b"\xff\xfe", "M_NOT_JSON"), (b"", "M_NOT_JSON"),
                              (b'"str"', "M_BAD_JSON"), (b"[]", "M_BAD_JSON")):
            self.assert_error(self.make_request("POST", path, body), 400, errcode)
        channel = self.make_request("POST", path, {"caf\u00e9": 1})
        self.assertEqual(channel.json_body, {"echo": {"caf\u00e9": 1}})

    def test_missing_and_bad_tokens(self) -> None:
        """No token is M_MISSING_TOKEN; a bad one M_UNKNOWN_TOKEN; query tokens are ignored."""
        self.assert_error(self.make_request("GET", WHOAMI), 401, "M_MISSING_TOKEN")
        self.assert_error(self.make_request("GET", WHOAMI, access_token="axo_nope"),
                          401, "M_UNKNOWN_TOKEN")
        self.assert_error(
            self.make_request("GET", WHOAMI, headers={"Authorization": "Basic abc"}),
            401, "M_MISSING_TOKEN")
        self.register_user("alice")
        token = self.login("alice")
        self.assert_error(self.make_request("GET", f"{WHOAMI}?access_token={token}"),
                          401, "M_MISSING_TOKEN")
        channel = self.make_request("GET", WHOAMI, access_token=token)
        self.assertEqual(channel.json_body["user_id"], "@alice:test")

    def test_path_parameters_are_decoded(self) -> None:
        """Percent-encoded path parameters reach the servlet decoded."""
        seen: list[str] = []

        class _Echo(RestServlet):
            PATTERNS = client_patterns("/io.axon.test/echo/(?P<user_id>[^/]*)")

            async def on_GET(self, request: HttpRequest, user_id: str) -> tuple[int, Any]:
                seen.append(user_id)
                return 200, {}

        _Echo().register(self.router)
        self.make_request("GET", "/_matrix/client/v3/io.axon.test/echo/%40alice%3Atest")
        self.assertEqual(seen, ["@alice:test"])
