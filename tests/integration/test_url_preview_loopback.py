"""URL previews fetched by the real server from a real HTTP server on loopback (allowed by
a whitelist entry for 127.0.0.1): OpenGraph, fallbacks, og:image into the media repo,
caching, the size limit, and a redirect into the blacklist."""

from __future__ import annotations

import http.server
import io
import json
import threading
import unittest
import urllib.parse
from typing import Any

from PIL import Image

from homeserver.config import DEFAULT_IP_RANGE_BLACKLIST
from tests.integration.server_process import ServerProcess, free_port

PREVIEW = "/_matrix/client/v1/media/preview_url"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(out, "PNG")
    return out.getvalue()


class Pages:
    def __init__(self, port: int) -> None:
        self.port = port
        self.pages: dict[str, tuple[str, bytes]] = {
            "/og.html": ("text/html; charset=utf-8", (
                "<html><head><title>Plain title</title>"
                "<meta property='og:title' content='The OG title'>"
                "<meta property='og:description' content='Déjà vu'>"
                "<meta property='og:image' content='/cat.png'></head></html>").encode()),
            "/plain.html": ("text/html", b"<title>Only a title</title>"
                                         b"<meta name='description' content='A page'>"),
            "/cat.png": ("image/png", png()),
            "/big.html": ("text/html", b"<title>big</title>" + b" " * 200_000),
        }


def serve(pages: Pages) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.2:{pages.port}/og.html")
                self.end_headers()
                return
            if self.path == "/stream.html":  # no Content-Length: read until the limit
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                for _ in range(50):
                    self.wfile.write(b"<p>" + b"x" * 4096 + b"</p>")
                return
            page = pages.pages.get(self.path)
            if page is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", page[0])
            self.send_header("Content-Length", str(len(page[1])))
            self.end_headers()
            self.wfile.write(page[1])

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", pages.port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class UrlPreviewLoopbackTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.pages = Pages(free_port())
        self.httpd = serve(self.pages)
        self.addCleanup(self.httpd.server_close)
        self.addCleanup(self.httpd.shutdown)
        self.server = ServerProcess(config_overrides={
            "url_preview_enabled": True,
            "url_preview_ip_range_blacklist": list(DEFAULT_IP_RANGE_BLACKLIST),
            "url_preview_ip_range_whitelist": ["127.0.0.1"],
            "max_spider_size": "100K",
        })
        self.addCleanup(self.server.close)
        self.server.start()
        self.server.register_user("alice", "correct horse")
        self.token = self.server.login("alice", "correct horse")

    def preview(self, path: str) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.pages.port}{path}"
        code, _, raw = self.server.request(
            "GET", f"{PREVIEW}?url={urllib.parse.quote(url, safe='')}", token=self.token)
        return code, json.loads(raw)

    def test_previews(self) -> None:
        """OpenGraph wins, og:image becomes an mxc URI with its size, <title> fills in,
        answers are cached, big pages and redirects into the blacklist are refused."""
        code, og = self.preview("/og.html")
        self.assertEqual(code, 200, (og, self.server.log()))
        self.assertEqual((og["og:title"], og["og:description"]), ("The OG title", "Déjà vu"))
        self.assertTrue(og["og:image"].startswith("mxc://localhost/"), og)
        self.assertEqual(og["matrix:image:size"], len(self.pages.pages["/cat.png"][1]))
        self.assertEqual((og["og:image:width"], og["og:image:height"]), (64, 48))
        code, _, body = self.server.request(
            "GET", "/_matrix/client/v1/media/download/" + og["og:image"][6:], token=self.token)
        self.assertEqual((code, body), (200, self.pages.pages["/cat.png"][1]))

        self.pages.pages["/og.html"] = ("text/html", b"<title>changed</title>")
        self.assertEqual(self.preview("/og.html")[1]["og:title"], "The OG title")  # cached

        self.assertEqual(self.preview("/plain.html"),
                         (200, {"og:title": "Only a title", "og:description": "A page"}))
        code, og = self.preview("/cat.png")
        self.assertEqual((code, og["og:image:type"]), (200, "image/png"))
        code, err = self.preview("/big.html")
        self.assertEqual((code, err["errcode"]), (502, "M_UNKNOWN"))
        code, err = self.preview("/stream.html")
        self.assertEqual((code, err["errcode"]), (502, "M_UNKNOWN"))
        code, err = self.preview("/redirect")
        self.assertEqual((code, err["errcode"]), (403, "M_UNKNOWN"))
