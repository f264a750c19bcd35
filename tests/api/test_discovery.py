"""/versions, /capabilities, .well-known and /health."""

from __future__ import annotations

import re
from pathlib import Path

from tests.harness import HomeserverTestCase, override_config


class DiscoveryTestCase(HomeserverTestCase):
    def test_versions(self) -> None:
        """/versions needs no auth and lists exactly the versions docs/versions.md marks
        advertised (in its order), and an empty unstable_features."""
        channel = self.make_request("GET", "/_matrix/client/versions")
        self.assertEqual(channel.code, 200, channel.result)
        doc = (Path(__file__).parents[2] / "docs" / "versions.md").read_text()
        rows = [[c.strip() for c in line.strip("|").split("|")]
                for line in doc.splitlines() if re.match(r"\| (r0|v1)\.", line)]
        self.assertGreater(len(rows), 20)
        self.assertEqual(channel.json_body["versions"],
                         [r[0] for r in rows if r[-1] == "yes"])
        self.assertNotIn("v1.11", channel.json_body["versions"])  # no authenticated media
        self.assertEqual(channel.json_body["unstable_features"], {})

    def test_capabilities_requires_auth(self) -> None:
        """/capabilities without a token is 401 M_MISSING_TOKEN."""
        channel = self.make_request("GET", "/_matrix/client/v3/capabilities")
        self.assert_error(channel, 401, "M_MISSING_TOKEN")

    def test_capabilities(self) -> None:
        """/capabilities lists room versions 1-12 (default 12) and the account capabilities."""
        self.register_user("alice")
        token = self.login("alice")
        channel = self.make_request("GET", "/_matrix/client/v3/capabilities",
                                    access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        caps = channel.json_body["capabilities"]
        self.assertEqual(caps["m.room_versions"], {
            "default": "12", "available": {str(v): "stable" for v in range(1, 13)},
        })
        self.assertEqual(caps["m.change_password"], {"enabled": True})
        self.assertEqual(caps["m.set_displayname"], {"enabled": True})
        self.assertEqual(caps["m.set_avatar_url"], {"enabled": True})
        self.assertEqual(caps["m.3pid_changes"], {"enabled": False})
        self.assertEqual(caps["m.get_login_token"], {"enabled": False})
        self.assertEqual(caps["m.profile_fields"], {"enabled": True})

    @override_config({"password_config": {"enabled": False}})
    def test_capabilities_password_disabled(self) -> None:
        """m.change_password follows password_config.enabled."""
        self.register_user("alice")
        # Password login is off, so take a session directly from the login handler.
        session = self.get_success(self.hs.get_login_handler().create_session(
            "@alice:test", None, None, False))
        token = session.to_json("test")["access_token"]
        channel = self.make_request("GET", "/_matrix/client/v3/capabilities",
                                    access_token=token)
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body["capabilities"]["m.change_password"],
                         {"enabled": False})

    def test_client_well_known(self) -> None:
        """.well-known/matrix/client points at public_baseurl."""
        channel = self.make_request("GET", "/.well-known/matrix/client")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"m.homeserver": {"base_url": "https://test/"}})
        self.assertEqual(channel.header("Access-Control-Allow-Origin"), "*")

    def test_server_well_known_off_by_default(self) -> None:
        """.well-known/matrix/server is 404 M_NOT_FOUND unless serve_server_wellknown."""
        channel = self.make_request("GET", "/.well-known/matrix/server")
        self.assert_error(channel, 404, "M_NOT_FOUND")

    @override_config({"serve_server_wellknown": True})
    def test_server_well_known(self) -> None:
        """With serve_server_wellknown, federation is delegated to port 443."""
        channel = self.make_request("GET", "/.well-known/matrix/server")
        self.assertEqual(channel.code, 200, channel.result)
        self.assertEqual(channel.json_body, {"m.server": "test:443"})

    def test_health(self) -> None:
        """/health answers plain-text OK."""
        channel = self.make_request("GET", "/health")
        self.assertEqual(channel.code, 200)
        self.assertEqual(channel.result, b"OK")
        assert channel.response is not None
        self.assertEqual(channel.response.content_type, "text/plain")
