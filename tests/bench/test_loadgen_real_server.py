"""The load generator against the real server process: every scenario completes cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
import unittest

from tests.integration.server_process import ROOT, ServerProcess


class LoadgenAgainstRealServer(unittest.TestCase):
    def test_every_scenario_runs_without_errors(self) -> None:
        server = ServerProcess()
        try:
            server.start()
            assert server.proc is not None
            out = subprocess.run(
                [sys.executable, "-m", "tests.bench.loadgen", "whoami", "create-room", "send",
                 "send-history", "--url", server.base_url,
                 f"--shared-secret={server.shared_secret}", "--server-pid",
                 str(server.proc.pid), "-c", "4", "-n", "12", "--warmup", "0",
                 "--members", "3", "--history", "20,60", "--fill-concurrency", "4", "--json"],
                cwd=ROOT, capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr[-3000:] + server.log()[-3000:])
            report = json.loads(out.stdout)
        finally:
            server.close()
        results = report["results"]
        self.assertEqual([r["scenario"] for r in results],
                         ["whoami", "create-room", "send", "send-history", "send-history"])
        for r in results:
            self.assertEqual(r["errors"], 0, r)
            self.assertGreaterEqual(r["ops"], 12, r)
            self.assertGreater(r["server_cpu_s_per_1k"], 0, r)
