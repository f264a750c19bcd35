"""URL previews: off by default, SSRF refusals, URL blacklist, the HTML parser."""

from __future__ import annotations

import unittest
import urllib.parse

from handlers.url_preview import parse_html_preview, url_is_blacklisted
from homeserver.config import DEFAULT_IP_RANGE_BLACKLIST, HomeServerConfig
from homeserver.errors import ConfigError
from tests.harness import HomeserverTestCase, override_config

PREVIEW = "/_matrix/client/v1/media/preview_url"
ENABLED = {"url_preview_enabled": True,
           "url_preview_ip_range_blacklist": list(DEFAULT_IP_RANGE_BLACKLIST),
           "url_preview_url_blacklist": [{"netloc": "*.evil.example"},
                                         {"scheme": "http", "path": "^/private/"}]}


def preview_path(url: str) -> str:
    return f"{PREVIEW}?url={urllib.parse.quote(url, safe='')}"


class UrlPreviewApiTestCase(HomeserverTestCase):
    def prepare(self, reactor: object, hs: object) -> None:
        self.register_user("alice")
        self.token = self.login("alice")

    def test_disabled_by_default(self) -> None:
        """Without url_preview_enabled the endpoint answers 404 M_UNRECOGNIZED."""
        channel = self.make_request("GET", preview_path("https://example.com/"),
                                    access_token=self.token)
        self.assert_error(channel, 404, "M_UNRECOGNIZED")

    @override_config(ENABLED)
    def test_needs_auth_and_url(self) -> None:
        """No token is 401; no url is 400 M_MISSING_PARAM; ftp:// is 400."""
        self.assertEqual(self.make_request("GET", preview_path("https://e.com/")).code, 401)
        self.assert_error(self.make_request("GET", PREVIEW, access_token=self.token), 400,
                          "M_MISSING_PARAM")
        self.assert_error(self.make_request("GET", preview_path("ftp://e.com/x"),
                                            access_token=self.token), 400, "M_UNKNOWN")

    @override_config(ENABLED)
    def test_loopback_and_private_refused(self) -> None:
        """Loopback, private and mapped-IPv6 literals are refused with 403, before any
        connection is made."""
        for url in ("http://127.0.0.1:8008/", "http://10.1.2.3/", "http://[::1]/",
                    "http://[::ffff:192.168.0.1]/", "http://169.254.169.254/latest"):
            channel = self.make_request("GET", preview_path(url), access_token=self.token)
            self.assert_error(channel, 403, "M_UNKNOWN")
        self.assertEqual(self.reactor.tcpClients, [])

    @override_config(ENABLED)
    def test_url_blacklist(self) -> None:
        """url_preview_url_blacklist entries (glob and regex) refuse matching URLs."""
        for url in ("https://www.evil.example/", "http://good.example/private/x"):
            channel = self.make_request("GET", preview_path(url), access_token=self.token)
            self.assert_error(channel, 403, "M_UNKNOWN")


class UrlPreviewUnitTestCase(unittest.TestCase):
    def test_blacklist_required_when_enabled(self) -> None:
        """Enabling previews without url_preview_ip_range_blacklist stops startup."""
        with self.assertRaises(ConfigError):
            HomeServerConfig.parse({"server_name": "t", "url_preview_enabled": True}, "/tmp")

    def test_opengraph_wins_over_title(self) -> None:
        """og:* tags are returned; <title>/description only fill in missing ones."""
        html = (b"<html><head><title>Plain</title><meta name=description content=Desc>"
                b"<meta property='og:title' content='OG &amp; title'>"
                b"<meta property='og:image' content='/cat.png'></head></html>")
        self.assertEqual(parse_html_preview(html, "text/html"), {
            "og:title": "OG & title", "og:image": "/cat.png", "og:description": "Desc"})

    def test_charset(self) -> None:
        """The charset from the header or a <meta charset> decodes the page."""
        html = "<title>Grüße</title>".encode("latin-1")
        self.assertEqual(parse_html_preview(html, "text/html; charset=iso-8859-1"),
                         {"og:title": "Grüße"})
        html = b"<meta charset='iso-8859-1'><title>\xe9t\xe9</title>"
        self.assertEqual(parse_html_preview(html, "text/html"), {"og:title": "été"})

    def test_url_blacklist_all_patterns_of_an_entry(self) -> None:
        """An entry refuses a URL only if every one of its patterns matches."""
        from homeserver.config import UrlBlacklistRule

        rule = (UrlBlacklistRule((("scheme", "http"), ("netloc", "example.com"))),)
        self.assertTrue(url_is_blacklisted("http://example.com/a", rule))
        self.assertFalse(url_is_blacklisted("https://example.com/a", rule))
