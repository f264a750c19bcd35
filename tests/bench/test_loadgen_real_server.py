"""The load generator against the real server process: every scenario completes cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
import unittest
from typing import Any

from tests.integration.server_process import ROOT, ServerProcess


def run_loadgen(*args: str) -> dict[str, Any]:
    server = ServerProcess()
    try:
        server.start()
        assert server.proc is not None
        out = subprocess.run(
            [sys.executable, "-m", "tests.bench.loadgen", *args, "--url", server.base_url,
             f"--shared-secret={server.shared_secret}", "--server-pid", str(server.proc.pid),
             "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise AssertionError(out.stderr[-3000:] + server.log()[-3000:])
        report: dict[str, Any] = json.loads(out.stdout)
        return report
    finally:
        server.close()


class LoadgenAgainstRealServer(unittest.TestCase):
    def test_room_scenarios_run_without_errors(self) -> None:
        report = run_loadgen("whoami", "create-room", "send", "send-history", "-c", "4",
                             "-n", "12", "--warmup", "0", "--members", "3", "--history",
                             "20,60", "--fill-concurrency", "4")
        results = report["results"]
        self.assertEqual([r["scenario"] for r in results],
                         ["whoami", "create-room", "send", "send-history", "send-history"])
        for r in results:
            self.assertEqual(r["errors"], 0, r)
            self.assertGreaterEqual(r["ops"], 12, r)
            # CPU time has clock-tick resolution: a short phase may read 0.
            self.assertGreaterEqual(r["server_cpu_s_per_1k"], 0, r)

    def test_sync_scenarios_deliver_everything(self) -> None:
        report = run_loadgen("fanout", "initial-sync", "messages", "--receivers", "3",
                             "--rate", "20", "-d", "0.5", "-n", "3", "--warmup", "0",
                             "--rooms", "3", "--events-per-room", "4",
                             "--history-events", "250")
        rows = {r["scenario"] + str(r.get("rooms", "")): r for r in report["results"]}
        fanout = rows["fanout"]
        self.assertEqual((fanout["missed"], fanout["duplicates"]), (0, 0), fanout)
        self.assertEqual(fanout["ops"], 3 * fanout["messages"], fanout)
        for key in ("initial-sync3", "initial-sync-lazy3", "incremental-idle3",
                    "incremental-idle1"):
            self.assertEqual((rows[key]["ops"], rows[key]["errors"]), (3, 0), rows[key])
        messages = rows["messages"]
        # 250 messages plus the room's creation events, 100 per page.
        self.assertGreaterEqual(messages["events_read"], 250, messages)
        self.assertEqual(messages["ops"], 3 + (messages["events_read"] % 100 == 0), messages)
