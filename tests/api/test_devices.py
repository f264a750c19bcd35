"""GET/PUT/DELETE /devices/{deviceId}, GET /devices and POST /delete_devices."""

from __future__ import annotations

from typing import Any

from tests.harness import START_TIME, HomeserverTestCase

DEVICES = "/_matrix/client/v3/devices"
DELETE_DEVICES = "/_matrix/client/v3/delete_devices"
WHOAMI = "/_matrix/client/v3/account/whoami"
PASSWORD_FLOWS = [{"stages": ["m.login.password"]}]


def password_auth(session: str, password: str = "password") -> dict[str, Any]:
    return {"type": "m.login.password", "session": session, "password": password,
            "identifier": {"type": "m.id.user", "user": "alice"}}


class DevicesTestCase(HomeserverTestCase):
    def prepare(self, reactor: Any, hs: Any) -> None:
        self.user_id = self.register_user("alice")
        self.token = self.login("alice", device_id="MAIN")
        self.register_user("bob")
        self.bob_token = self.login("bob", device_id="BOBDEV")

    def device_ids(self) -> list[str]:
        channel = self.make_request("GET", DEVICES, access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        return [d["device_id"] for d in channel.json_body["devices"]]

    def uia_request(self, method: str, path: str, body: dict[str, Any] | None,
                    password: str = "password") -> Any:
        """Run the two-request UIA flow; return the second (authenticated) response."""
        channel = self.make_request(method, path, body, access_token=self.token)
        self.assertEqual(channel.code, 401, channel.result)
        self.assertEqual(channel.json_body["flows"], PASSWORD_FLOWS)
        auth = password_auth(channel.json_body["session"], password)
        return self.make_request(method, path, {**(body or {}), "auth": auth},
                                 access_token=self.token)

    # -- reading --

    def test_list_devices(self) -> None:
        """GET /devices lists the user's devices with name and last-seen data."""
        channel = self.make_request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "password": "password", "device_id": "PHONE",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "initial_device_display_name": "My phone",
        })
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.make_request("GET", DEVICES, access_token=self.token,
                                    client_ip="10.0.0.7")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"devices": [
            {"device_id": "MAIN", "last_seen_ip": "10.0.0.7",
             "last_seen_ts": int(START_TIME * 1000)},
            # Never used yet: no last-seen fields, as the spec says ("absent").
            {"device_id": "PHONE", "display_name": "My phone"},
        ]})

    def test_last_seen_is_refreshed(self) -> None:
        """A device's last-seen IP and time move on after the recording interval."""
        self.make_request("GET", WHOAMI, access_token=self.token, client_ip="10.0.0.1")
        self.reactor.advance(3600)
        channel = self.make_request("GET", f"{DEVICES}/MAIN", access_token=self.token,
                                    client_ip="10.0.0.2")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["last_seen_ip"], "10.0.0.2")
        self.assertEqual(channel.json_body["last_seen_ts"], int((START_TIME + 3600) * 1000))

    def test_get_device(self) -> None:
        """GET /devices/{id} returns one device of the user."""
        channel = self.make_request("GET", f"{DEVICES}/MAIN", access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["device_id"], "MAIN")

    def test_get_unknown_or_other_users_device(self) -> None:
        """An unknown device and another user's device are both 404 M_NOT_FOUND."""
        for device_id in ("NOPE", "BOBDEV"):
            channel = self.make_request("GET", f"{DEVICES}/{device_id}", access_token=self.token)
            self.assert_error(channel, 404, "M_NOT_FOUND")
        self.assertEqual(self.device_ids(), ["MAIN"])

    # -- renaming --

    def test_rename_device(self) -> None:
        """PUT sets the display name, GET shows it; a body without it leaves it unchanged."""
        channel = self.make_request("PUT", f"{DEVICES}/MAIN", {"display_name": "Laptop"},
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        channel = self.make_request("PUT", f"{DEVICES}/MAIN", {}, access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.make_request("GET", f"{DEVICES}/MAIN", access_token=self.token)
        self.assertEqual(channel.json_body["display_name"], "Laptop")
        channel = self.make_request("GET", DEVICES, access_token=self.token)
        self.assertEqual(channel.json_body["devices"][0]["display_name"], "Laptop")

    def test_rename_unknown_or_other_users_device(self) -> None:
        """Renaming an unknown or another user's device is 404; Bob's name is untouched."""
        for device_id in ("NOPE", "BOBDEV"):
            for body in ({"display_name": "Mine now"}, {}):
                channel = self.make_request("PUT", f"{DEVICES}/{device_id}", body,
                                            access_token=self.token)
                self.assert_error(channel, 404, "M_NOT_FOUND")
        channel = self.make_request("GET", f"{DEVICES}/BOBDEV", access_token=self.bob_token)
        self.assertNotIn("display_name", channel.json_body)

    def test_rename_length_limit(self) -> None:
        """100 characters are allowed; 101 are 400 M_TOO_LARGE (Synapse's limit)."""
        channel = self.make_request("PUT", f"{DEVICES}/MAIN", {"display_name": "a" * 100},
                                    access_token=self.token)
        self.assertEqual(channel.code, 200, channel.result)
        channel = self.make_request("PUT", f"{DEVICES}/MAIN", {"display_name": "b" * 101},
                                    access_token=self.token)
        self.assert_error(channel, 400, "M_TOO_LARGE")
        channel = self.make_request("GET", f"{DEVICES}/MAIN", access_token=self.token)
        self.assertEqual(channel.json_body["display_name"], "a" * 100)

    def test_rename_bad_bodies(self) -> None:
        """A non-string name is M_BAD_JSON; a non-object body M_BAD_JSON; garbage M_NOT_JSON."""
        for content, errcode in (({"display_name": 5}, "M_BAD_JSON"),
                                 ({"display_name": ["x"]}, "M_BAD_JSON"),
                                 ("Laptop", "M_BAD_JSON"),
                                 (b"{oops", "M_NOT_JSON")):
            channel = self.make_request("PUT", f"{DEVICES}/MAIN", content,
                                        access_token=self.token)
            self.assert_error(channel, 400, errcode)

    # -- deleting --

    def test_delete_device(self) -> None:
        """DELETE with password UIA removes the device and invalidates its token."""
        other = self.login("alice", device_id="OTHER")
        channel = self.uia_request("DELETE", f"{DEVICES}/OTHER", None)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        self.assertEqual(self.device_ids(), ["MAIN"])
        self.assert_error(self.make_request("GET", WHOAMI, access_token=other),
                          401, "M_UNKNOWN_TOKEN")

    def test_delete_unknown_device(self) -> None:
        """Deleting a device that does not exist succeeds after UIA (spec: 200)."""
        channel = self.uia_request("DELETE", f"{DEVICES}/NOPE", {})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.device_ids(), ["MAIN"])

    def test_delete_other_users_device(self) -> None:
        """Alice "deleting" Bob's device ID touches only her own devices: Bob keeps his."""
        channel = self.uia_request("DELETE", f"{DEVICES}/BOBDEV", {})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(self.make_request("GET", WHOAMI, access_token=self.bob_token).code,
                         200)

    def test_delete_device_wrong_password(self) -> None:
        """A wrong password is 401 with M_FORBIDDEN and the flows; the device stays."""
        self.login("alice", device_id="OTHER")
        channel = self.uia_request("DELETE", f"{DEVICES}/OTHER", {}, password="wrong")
        self.assertEqual(channel.code, 401, channel.result)
        self.assertEqual(channel.json_body["errcode"], "M_FORBIDDEN")
        self.assertEqual(channel.json_body["flows"], PASSWORD_FLOWS)
        self.assertEqual(self.device_ids(), ["MAIN", "OTHER"])

    def test_uia_session_bound_to_device(self) -> None:
        """A session opened to delete one device cannot delete another (403 M_FORBIDDEN)."""
        self.login("alice", device_id="OTHER")
        channel = self.make_request("DELETE", f"{DEVICES}/NOPE", {}, access_token=self.token)
        self.assertEqual(channel.code, 401, channel.result)
        session = channel.json_body["session"]
        channel = self.make_request("DELETE", f"{DEVICES}/OTHER",
                                    {"auth": password_auth(session)}, access_token=self.token)
        self.assert_error(channel, 403, "M_FORBIDDEN")
        self.assertEqual(self.device_ids(), ["MAIN", "OTHER"])

    def test_delete_device_bad_bodies(self) -> None:
        """A non-object `auth` or body is 400 M_BAD_JSON; garbage is M_NOT_JSON."""
        for content, errcode in (({"auth": "x"}, "M_BAD_JSON"), ([1], "M_BAD_JSON"),
                                 (b"{oops", "M_NOT_JSON")):
            channel = self.make_request("DELETE", f"{DEVICES}/MAIN", content,
                                        access_token=self.token)
            self.assert_error(channel, 400, errcode)

    def test_delete_devices(self) -> None:
        """POST /delete_devices removes the listed devices only, after UIA."""
        tokens = {d: self.login("alice", device_id=d) for d in ("ONE", "TWO", "KEEP")}
        channel = self.uia_request("POST", DELETE_DEVICES, {"devices": ["ONE", "TWO", "NOPE"]})
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {})
        self.assertEqual(self.device_ids(), ["KEEP", "MAIN"])
        for device_id in ("ONE", "TWO"):
            self.assert_error(self.make_request("GET", WHOAMI, access_token=tokens[device_id]),
                              401, "M_UNKNOWN_TOKEN")
        self.assertEqual(self.make_request("GET", WHOAMI, access_token=tokens["KEEP"]).code,
                         200)

    def test_delete_devices_wrong_password(self) -> None:
        """A wrong password on /delete_devices is 401 M_FORBIDDEN; nothing is deleted."""
        self.login("alice", device_id="ONE")
        channel = self.uia_request("POST", DELETE_DEVICES, {"devices": ["ONE"]},
                                   password="wrong")
        self.assertEqual(channel.code, 401, channel.result)
        self.assertEqual(channel.json_body["errcode"], "M_FORBIDDEN")
        self.assertEqual(self.device_ids(), ["MAIN", "ONE"])

    def test_delete_devices_bad_bodies(self) -> None:
        """Missing `devices` is M_MISSING_PARAM; wrong types M_BAD_JSON; garbage M_NOT_JSON."""
        for content, errcode in (({}, "M_MISSING_PARAM"),
                                 ({"devices": "MAIN"}, "M_BAD_JSON"),
                                 ({"devices": [1]}, "M_BAD_JSON"),
                                 ({"devices": ["MAIN"], "auth": 3}, "M_BAD_JSON"),
                                 (b"", "M_NOT_JSON")):
            channel = self.make_request("POST", DELETE_DEVICES, content,
                                        access_token=self.token)
            self.assert_error(channel, 400, errcode)
        self.assertEqual(self.device_ids(), ["MAIN"])

    # -- tokens --

    def test_missing_and_unknown_token(self) -> None:
        """Every device endpoint is 401 M_MISSING_TOKEN / M_UNKNOWN_TOKEN without a good token."""
        requests = [("GET", DEVICES, None), ("GET", f"{DEVICES}/MAIN", None),
                    ("PUT", f"{DEVICES}/MAIN", {"display_name": "x"}),
                    ("DELETE", f"{DEVICES}/MAIN", {}),
                    ("POST", DELETE_DEVICES, {"devices": ["MAIN"]})]
        for method, path, body in requests:
            self.assert_error(self.make_request(method, path, body), 401, "M_MISSING_TOKEN")
            self.assert_error(self.make_request(method, path, body, access_token="axo_nope"),
                              401, "M_UNKNOWN_TOKEN")
