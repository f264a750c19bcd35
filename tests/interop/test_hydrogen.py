"""Hydrogen, a real web client, in headless Chromium against the real server.

tests/js/hydrogen_scenario.mjs opens tests/js/hydrogen/index.html (the hydrogen-view-sdk
embedded as its README shows, Olm for crypto) from a static server on loopback, a different
origin from the homeserver, so CORS is exercised as in a browser. Hydrogen logs in, creates
an encrypted room inviting a matrix-js-sdk user, and a message typed into its composer is
decrypted by that user, whose reply must show, decrypted, in Hydrogen's timeline. The
screenshot is kept under /tmp for a person to look at.

Needs the `chromium` Debian package (`.ci/run` installs it) and the npm packages of
tests/js (`scripts/run-tests` installs them); without them the test fails and says so.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import os
import threading
import unittest

from tests.integration.server_process import ServerProcess
from tests.js.runner import JS_DIR, JsSetupError, ScriptResult, require_packages, run_script

CHROMIUM = os.environ.get("AXON_CHROMIUM", "/usr/bin/chromium")
_names = itertools.count()


class _StaticHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript",
                      ".wasm": "application/wasm"}

    def log_message(self, format: str, *args: object) -> None:
        pass


class StaticServer:
    """tests/js served over HTTP on loopback, in a thread."""

    def __init__(self) -> None:
        handler = functools.partial(_StaticHandler, directory=JS_DIR)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class HydrogenTests:
    engine = "sqlite3"
    server: ServerProcess
    static: StaticServer

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess(cls.engine)
        try:
            cls.server.start()
            cls.static = StaticServer()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.static.close()
        cls.server.close()

    def account(self, role: str) -> dict[str, str]:
        localpart = f"{role}{next(_names)}"
        password = f"{localpart}-password-1"
        user_id = self.server.register_user(localpart, password)
        return {"base_url": self.server.base_url, "user_id": user_id, "password": password}

    def explain(self, r: ScriptResult, what: str) -> str:
        page_log = "\n".join(r["page_log"] or [])
        return (f"{what}\n{r.explain()}\n--- page log ---\n{page_log}\n"
                f"--- Axon log (end) ---\n{self.server.log()[-6000:]}")

    def test_hydrogen_and_js_sdk_talk_in_an_encrypted_room(self) -> None:
        """Hydrogen's typed message is decrypted by js-sdk, and js-sdk's reply shows
        decrypted in Hydrogen's timeline."""
        if not os.access(CHROMIUM, os.X_OK):
            raise JsSetupError(f"Chromium not found at {CHROMIUM}: apt-get install chromium "
                               "(or point AXON_CHROMIUM at one)")
        require_packages("hydrogen-view-sdk", "@matrix-org/olm", "puppeteer-core",
                         "matrix-js-sdk")
        screenshot = f"/tmp/axon-hydrogen-{self.engine}.png"
        r = run_script("hydrogen_scenario.mjs", {
            "page_url": f"{self.static.url}/hydrogen/index.html",
            "hydrogen": self.account("hydra"), "peer": self.account("jessie"),
            "chromium": CHROMIUM, "screenshot": screenshot, "timeout_ms": 120_000,
        }, timeout=150)
        self.assertTrue(r["hydrogen_room_encrypted"], self.explain(r, "the room is encrypted"))
        self.assertTrue(r["hydrogen_sent"], self.explain(r, "Hydrogen sent"))
        self.assertEqual(r["peer_decrypted"], r["hydrogen_sent"],
                         self.explain(r, "js-sdk decrypts Hydrogen's message"))
        self.assertIs(r["peer_saw_encrypted"], True, self.explain(r, "sent encrypted"))
        self.assertIs(r["hydrogen_shows_reply"], True,
                      self.explain(r, "Hydrogen shows the decrypted reply"))
        self.assertTrue(any(r["peer_sent"] in text for text in r["timeline_texts"] or []),
                        self.explain(r, "the reply's text in Hydrogen's timeline"))
        self.assertEqual(r["screenshot"], screenshot, self.explain(r, "screenshot taken"))
        self.assertEqual(r.errors, [], self.explain(r, "no step failed"))


class SqliteHydrogenTestCase(HydrogenTests, unittest.TestCase):
    engine = "sqlite3"


class PostgresHydrogenTestCase(HydrogenTests, unittest.TestCase):
    engine = "psycopg2"
