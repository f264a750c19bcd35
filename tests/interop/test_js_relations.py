"""matrix-js-sdk (thread support on) against Axon (issue 12): tests/js/relations_scenario.mjs
sends an edit, a thread with two replies and two reactions, then a fresh device sees the
edit applied, the thread listed with its replies, and the reaction count."""

from __future__ import annotations

import unittest

from tests.integration.server_process import ServerProcess
from tests.interop.test_js_crypto import account
from tests.js.runner import require_packages, run_script


class JsRelationsTestCase(unittest.TestCase):
    def test_edit_thread_and_reactions_after_fresh_sync(self) -> None:
        """A fresh initial sync shows the root edited, its thread (list and timeline) and
        a reaction count of 2."""
        require_packages("matrix-js-sdk")
        server = ServerProcess()
        self.addCleanup(server.close)
        server.start()
        r = run_script("relations_scenario.mjs", {
            "a": account(server, "alice"), "b": account(server, "bob"),
            "timeout_ms": 100_000}, timeout=150)
        msg = f"{r.explain()}\n--- server ---\n{server.log()[-4000:]}"
        self.assertEqual(r.errors, [], msg)
        self.assertEqual(r["root_body"], "root edited", msg)
        self.assertTrue(r["root_replaced_by"], msg)
        self.assertEqual(r["thread_ids"], [r["root"]], msg)
        self.assertEqual(r["thread_events"], r["replies"], msg)
        self.assertEqual(r["thread_bodies"], ["reply one", "reply two"], msg)
        self.assertEqual(r["reactions"], {"👍": 2}, msg)
        # From the bundled aggregations alone (none of the relations in its timeline).
        self.assertEqual(r["bundled_root_body"], "root edited", msg)
        self.assertEqual(r["bundled_thread_count"], 2, msg)
