"""The cross-server benchmark, run for about 2 s: two real servers, nothing lost."""

from __future__ import annotations

import subprocess
import sys
import unittest

from tests.bench.federation_bench import format_report, run
from tests.integration.server_process import ROOT


class FederationBenchSmoke(unittest.TestCase):
    def test_every_event_reaches_server_b(self) -> None:
        """Each message accepted by A shows up once in B's /sync, with its latency."""
        report = run(senders=2, duration=2.0, drain=20.0)
        r = report["results"][0]
        self.assertGreater(r["sent"], 0, r)
        self.assertEqual((r["send_errors"], r["missed"], r["duplicated"]), (0, 0, 0), r)
        self.assertEqual(r["delivered"], r["sent"], r)
        self.assertTrue(r["all_delivered"], r)
        latency = r["delivery_latency_ms"]
        self.assertGreater(latency["p50"], 0, r)
        self.assertLessEqual(latency["p50"], latency["p99"], r)
        self.assertLessEqual(latency["p99"], latency["max"], r)
        self.assertIn("delivery latency", format_report(report))

    def test_cli_refuses_bad_arguments(self) -> None:
        """Bad options stop the command before any server starts."""
        out = subprocess.run([sys.executable, "-m", "tests.bench.federation_bench",
                              "--senders", "0"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 2, out.stderr)
