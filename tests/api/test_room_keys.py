"""Server-side key backup: `/room_keys/version` and `/room_keys/keys`."""

from __future__ import annotations

from typing import Any

from tests.harness import HomeserverTestCase

BASE = "/_matrix/client/v3/room_keys"
ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
ROOM = "!room:test"


def session(index: int = 0, forwarded: int = 0, verified: bool = False,
            data: str = "x") -> dict[str, Any]:
    return {"first_message_index": index, "forwarded_count": forwarded,
            "is_verified": verified, "session_data": {"ciphertext": data}}


class RoomKeysTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.register_user("alice")
        self.token = self.login("alice")
        self.register_user("bob")
        self.bob_token = self.login("bob")

    def req(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        return self.make_request(method, BASE + path, body, access_token=token or self.token)

    def create(self, auth_data: dict[str, Any] | None = None) -> str:
        channel = self.req("POST", "/version", {"algorithm": ALGORITHM,
                                                "auth_data": auth_data or {"public_key": "k"}})
        self.assertEqual(channel.code, 200, channel.result)
        version: str = channel.json_body["version"]
        return version

    def test_version_lifecycle(self) -> None:
        """Create, read (current and by number), update and delete a backup version."""
        self.assert_error(self.req("GET", "/version"), 404, "M_NOT_FOUND")
        v1 = self.create()
        v2 = self.create({"public_key": "k2"})
        self.assertEqual((v1, v2), ("1", "2"))
        current = self.req("GET", "/version").json_body
        self.assertEqual(current, {"algorithm": ALGORITHM, "auth_data": {"public_key": "k2"},
                                   "count": 0, "etag": "0", "version": "2"})
        self.assertEqual(self.req("GET", "/version/1").json_body["version"], "1")
        channel = self.req("PUT", "/version/2", {"algorithm": ALGORITHM,
                                                 "auth_data": {"public_key": "k3"},
                                                 "version": "2"})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.req("GET", "/version/2").json_body["auth_data"],
                         {"public_key": "k3"})
        self.assertEqual(self.req("DELETE", "/version/2").code, 200)
        self.assertEqual(self.req("GET", "/version").json_body["version"], "1")
        self.assert_error(self.req("GET", "/version/2"), 404, "M_NOT_FOUND")
        self.assertEqual(self.create(), "3")  # numbers are never reused
        self.assert_error(self.req("GET", "/version", token=self.bob_token),
                          404, "M_NOT_FOUND")

    def test_bad_version_requests(self) -> None:
        """Unknown or malformed versions are 404; a mismatched body version or algorithm
        is 400; a missing algorithm is M_MISSING_PARAM."""
        self.create()
        self.assert_error(self.req("GET", "/version/abc"), 404, "M_NOT_FOUND")
        self.assert_error(self.req("DELETE", "/version/9"), 404, "M_NOT_FOUND")
        self.assert_error(self.req("PUT", "/version/1", {
            "algorithm": ALGORITHM, "auth_data": {}, "version": "2"}), 400, "M_INVALID_PARAM")
        self.assert_error(self.req("PUT", "/version/1", {
            "algorithm": "other", "auth_data": {}}), 400, "M_INVALID_PARAM")
        self.assert_error(self.req("POST", "/version", {"auth_data": {}}),
                          400, "M_MISSING_PARAM")

    def test_keys_put_get_delete(self) -> None:
        """Keys stored at every level are read back; count and etag follow."""
        version = self.create()
        channel = self.req("PUT", f"/keys?version={version}", {"rooms": {ROOM: {"sessions": {
            "s1": session(), "s2": session(data="y")}}}})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"etag": "1", "count": 2})
        channel = self.req("PUT", f"/keys/{ROOM}?version={version}",
                           {"sessions": {"s3": session()}})
        self.assertEqual(channel.json_body["count"], 3)
        channel = self.req("PUT", f"/keys/{ROOM}/s4?version={version}", session())
        self.assertEqual(channel.json_body, {"etag": "3", "count": 4})
        self.assertEqual(self.req("GET", f"/keys/{ROOM}/s2?version={version}").json_body,
                         session(data="y"))
        self.assertEqual(set(self.req("GET", f"/keys/{ROOM}?version={version}")
                             .json_body["sessions"]), {"s1", "s2", "s3", "s4"})
        self.assertEqual(set(self.req("GET", f"/keys?version={version}")
                             .json_body["rooms"]), {ROOM})
        self.assertEqual(self.req("GET", "/version").json_body["count"], 4)
        self.assertEqual(self.req("GET", f"/keys/!other:test?version={version}").json_body,
                         {"sessions": {}})
        self.assert_error(self.req("GET", f"/keys/{ROOM}/nope?version={version}"),
                          404, "M_NOT_FOUND")
        channel = self.req("DELETE", f"/keys/{ROOM}/s1?version={version}")
        self.assertEqual(channel.json_body["count"], 3)
        channel = self.req("DELETE", f"/keys?version={version}")
        self.assertEqual(channel.json_body["count"], 0)
        self.assert_error(self.req("GET", f"/keys/{ROOM}"), 400, "M_MISSING_PARAM")

    def test_better_session_replaces_worse(self) -> None:
        """Verified beats unverified, then the lower first_message_index, then the lower
        forwarded_count; a worse or equal one leaves the stored one (and the etag)."""
        version = self.create()
        path = f"/keys/{ROOM}/s?version={version}"

        def stored() -> dict[str, Any]:
            body: dict[str, Any] = self.req("GET", path).json_body
            return body

        self.req("PUT", path, session(index=5, forwarded=2, data="a"))
        self.req("PUT", path, session(index=6, forwarded=0, data="worse"))
        self.assertEqual(stored()["session_data"], {"ciphertext": "a"})
        etag = self.req("PUT", path, session(index=5, forwarded=2, data="tie")).json_body
        self.assertEqual(stored()["session_data"], {"ciphertext": "a"})
        self.assertEqual(etag["etag"], "1")
        self.req("PUT", path, session(index=5, forwarded=1, data="fewer-forwards"))
        self.assertEqual(stored()["session_data"], {"ciphertext": "fewer-forwards"})
        self.req("PUT", path, session(index=2, forwarded=9, data="earlier"))
        self.assertEqual(stored()["session_data"], {"ciphertext": "earlier"})
        self.req("PUT", path, session(index=50, forwarded=9, verified=True, data="verified"))
        self.assertEqual(stored()["session_data"], {"ciphertext": "verified"})
        self.req("PUT", path, session(index=0, forwarded=0, data="unverified"))
        self.assertEqual(stored()["session_data"], {"ciphertext": "verified"})

    def test_wrong_version(self) -> None:
        """Writing to an old version is 403 M_WRONG_ROOM_KEYS_VERSION with the current
        one; an unknown version is 404; nothing is written."""
        old = self.create()
        self.create()
        channel = self.req("PUT", f"/keys/{ROOM}/s?version={old}", session())
        self.assert_error(channel, 403, "M_WRONG_ROOM_KEYS_VERSION")
        self.assertEqual(channel.json_body["current_version"], "2")
        self.assert_error(self.req("PUT", f"/keys/{ROOM}/s?version=77", session()),
                          404, "M_NOT_FOUND")
        self.assertEqual(self.req("GET", f"/keys?version={old}").json_body, {"rooms": {}})

    def test_malformed_keys(self) -> None:
        """Missing or mistyped session fields are 400, and nothing is stored."""
        version = self.create()
        bad = {k: v for k, v in session().items() if k != "is_verified"}
        self.assert_error(self.req("PUT", f"/keys/{ROOM}/s?version={version}", bad),
                          400, "M_MISSING_PARAM")
        self.assert_error(self.req("PUT", f"/keys/{ROOM}/s?version={version}",
                                   {**session(), "first_message_index": "1"}),
                          400, "M_BAD_JSON")
        self.assert_error(self.req("PUT", f"/keys/{ROOM}/s?version={version}",
                                   {**session(), "first_message_index": -1}),
                          400, "M_BAD_JSON")
        self.assertEqual(self.req("GET", "/version").json_body["count"], 0)
