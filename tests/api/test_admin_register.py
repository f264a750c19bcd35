"""Shared-secret registration at /_synapse/admin/v1/register (register_new_matrix_user)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.harness import DEFAULT_CONFIG, FakeChannel, HomeserverTestCase, override_config

PATH = "/_synapse/admin/v1/register"
SECRET = DEFAULT_CONFIG["registration_shared_secret"]


def mac_for(nonce: str, username: str, password: str, admin: bool,
            user_type: str | None = None, secret: str = SECRET) -> str:
    """The MAC as register_new_matrix_user computes it (written out independently here)."""
    parts = [nonce, username, password, "admin" if admin else "notadmin"]
    if user_type:
        parts.append(user_type)
    return hmac.new(secret.encode(), "\x00".join(parts).encode(), hashlib.sha1).hexdigest()


class SharedSecretRegisterTestCase(HomeserverTestCase):
    def nonce(self) -> str:
        channel = self.make_request("GET", PATH)
        self.assertEqual(channel.code, 200, channel.result)
        nonce: str = channel.json_body["nonce"]
        return nonce

    def post(self, username: str = "alice", password: str = "pw", admin: bool = False,
             nonce: str | None = None, mac: str | None = None, **extra: Any) -> FakeChannel:
        nonce = nonce if nonce is not None else self.nonce()
        if mac is None:
            mac = mac_for(nonce, username, password, admin, extra.get("user_type"))
        body = {"nonce": nonce, "username": username, "password": password, "admin": admin,
                "mac": mac, **extra}
        return self.make_request("POST", PATH, body)

    def test_nonce(self) -> None:
        """GET gives a fresh 128-hex-digit nonce each time."""
        first, second = self.nonce(), self.nonce()
        self.assertNotEqual(first, second)
        self.assertEqual(len(first), 128)
        int(first, 16)

    def test_register_with_right_mac(self) -> None:
        """The right MAC creates the account and returns a logged-in session."""
        channel = self.post("alice", "pw", displayname="Alice Liddell")
        self.assertEqual(channel.code, 200, channel.result)
        body = channel.json_body
        self.assertEqual(body["user_id"], "@alice:test")
        self.assertEqual(body["home_server"], "test")
        self.assertIsInstance(body["device_id"], str)
        channel = self.make_request("GET", "/_matrix/client/v3/account/whoami",
                                    access_token=body["access_token"])
        self.assertEqual(channel.json_body["user_id"], "@alice:test")
        channel = self.make_request("GET", "/_matrix/client/v3/profile/@alice:test")
        self.assertEqual(channel.json_body["displayname"], "Alice Liddell")
        self.login("alice", "pw")

    def test_admin_flag(self) -> None:
        """admin: true makes a server admin (it may use the admin API); notadmin does not."""
        admin_token = self.post("root", "pw", admin=True).json_body["access_token"]
        user_token = self.post("user", "pw", admin=False).json_body["access_token"]
        tokens_api = "/_synapse/admin/v1/registration_tokens"
        self.assertEqual(self.make_request("GET", tokens_api, access_token=admin_token).code,
                         200)
        self.assert_error(self.make_request("GET", tokens_api, access_token=user_token),
                          403, "M_FORBIDDEN")

    def test_wrong_mac(self) -> None:
        """A wrong MAC (or a MAC for other fields) is 403 and creates nothing."""
        nonce = self.nonce()
        cases = [
            "0" * 40,
            mac_for(nonce, "alice", "pw", admin=True),  # signed for admin, sent as notadmin
            mac_for(nonce, "alice", "pw", admin=False, secret="other-secret"),
            "not hex at all ✓",
        ]
        for mac in cases:
            with self.subTest(mac=mac):
                channel = self.post("alice", "pw", admin=False, mac=mac)
                self.assert_error(channel, 403, "M_FORBIDDEN")
        channel = self.make_request("GET", "/_matrix/client/v3/register/available?username=alice")
        self.assertEqual(channel.code, 200)

    def test_nonce_single_use(self) -> None:
        """A nonce works once, even when the first attempt failed."""
        nonce = self.nonce()
        self.assertEqual(self.post("alice", nonce=nonce).code, 200)
        channel = self.post("bob", nonce=nonce)
        self.assert_error(channel, 400, "M_UNKNOWN")
        self.assertEqual(channel.json_body["error"], "unrecognised nonce")

        nonce = self.nonce()
        self.assert_error(self.post("carol", nonce=nonce, mac="0" * 40), 403, "M_FORBIDDEN")
        self.assert_error(self.post("carol", nonce=nonce), 400, "M_UNKNOWN")
        self.assert_error(self.post("dave", nonce="made-up"), 400, "M_UNKNOWN")

    def test_nonce_expires(self) -> None:
        """A nonce older than 60 seconds is refused."""
        nonce = self.nonce()
        self.reactor.advance(61)
        self.assert_error(self.post("alice", nonce=nonce), 400, "M_UNKNOWN")
        nonce = self.nonce()
        self.reactor.advance(59)
        self.assertEqual(self.post("alice", nonce=nonce).code, 200)

    def test_user_type(self) -> None:
        """A known user_type is part of the MAC; an unknown one is refused."""
        channel = self.post("helpdesk", user_type="support")
        self.assertEqual(channel.code, 200, channel.result)
        nonce = self.nonce()
        # The MAC without the user type does not cover it.
        channel = self.post("bot1", nonce=nonce, mac=mac_for(nonce, "bot1", "pw", False),
                            user_type="bot")
        self.assert_error(channel, 403, "M_FORBIDDEN")
        self.assert_error(self.post("x", user_type="wizard"), 400, "M_INVALID_PARAM")

    @override_config({"registration_shared_secret": None})
    def test_not_enabled(self) -> None:
        """Without registration_shared_secret the endpoint is 400 and says why."""
        channel = self.post("alice", mac="0" * 40)
        self.assert_error(channel, 400, "M_UNKNOWN")
        self.assertEqual(channel.json_body["error"], "Shared secret registration is not enabled")

    @override_config({"enable_registration": False,
                      "password_config": {"policy": {"minimum_length": 20}}})
    def test_independent_of_open_registration_and_policy(self) -> None:
        """It works with registration closed, and the password policy does not apply."""
        channel = self.post("alice", "short")
        self.assertEqual(channel.code, 200, channel.result)

    def test_username_checks(self) -> None:
        """Upper case is lower-cased; taken and invalid names get the usual errors."""
        channel = self.post("Bob", "pw")
        self.assertEqual(channel.json_body["user_id"], "@bob:test")
        self.assert_error(self.post("bob", "pw"), 400, "M_USER_IN_USE")
        self.assert_error(self.post("bad name", "pw"), 400, "M_INVALID_USERNAME")
        self.assert_error(self.post("nul\x00", "pw"), 400, "M_INVALID_PARAM")

    def test_bad_bodies(self) -> None:
        """Missing fields are M_MISSING_PARAM, wrong types M_BAD_JSON, non-JSON M_NOT_JSON."""
        nonce = self.nonce()
        full = {"nonce": nonce, "username": "a", "password": "pw", "mac": "00", "admin": False}
        cases: list[tuple[Any, str]] = [(b"{", "M_NOT_JSON"), ([], "M_BAD_JSON")]
        for key in ("nonce", "username", "password", "mac"):
            cases.append(({k: v for k, v in full.items() if k != key}, "M_MISSING_PARAM"))
            cases.append(({**full, key: 1}, "M_BAD_JSON"))
        cases.append(({**full, "admin": "yes"}, "M_BAD_JSON"))
        for content, errcode in cases:
            with self.subTest(content=content):
                self.assert_error(self.make_request("POST", PATH, content), 400, errcode)
