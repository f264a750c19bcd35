"""The command line: generate-config, config validation at startup, quickstart, SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest

import yaml

from tests.integration.server_process import ROOT, ServerProcess, free_port, run_cli


class CliTestCase(unittest.TestCase):
    def test_generate_config_refuses_to_overwrite(self) -> None:
        """generate-config writes config and key once and will not overwrite them."""
        with tempfile.TemporaryDirectory() as d:
            run_cli("generate-config", "--server-name", "example.org", "--data-dir", d)
            self.assertTrue(os.path.exists(os.path.join(d, "example.org.signing.key")))
            mode = os.stat(os.path.join(d, "homeserver.yaml")).st_mode & 0o777
            self.assertEqual(mode, 0o600)
            again = run_cli("generate-config", "--server-name", "example.org", "--data-dir", d,
                            check=False)
            self.assertNotEqual(again.returncode, 0)
            self.assertIn("already exists", again.stderr)

    def test_bad_value_stops_startup_naming_the_key(self) -> None:
        """`run` exits non-zero with a message naming a key whose value is wrong."""
        server = ServerProcess()
        try:
            with open(server.config_path) as f:
                config = yaml.safe_load(f)
            config["enable_registration"] = "yes"
            server.write_config(config)
            result = run_cli("run", "-c", server.config_path, check=False)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("enable_registration", result.stderr)
        finally:
            server.close()

    def test_unknown_key_warns_and_sigterm_exits_cleanly(self) -> None:
        """An unknown key is a logged warning; SIGTERM stops the server with exit code 0."""
        server = ServerProcess(config_overrides={"some_synapse_only_option": True})
        try:
            server.start()
            self.assertEqual(server.stop(), 0)
            self.assertIn("some_synapse_only_option", server.log())
        finally:
            server.close()

    def test_quickstart_serves(self) -> None:
        """quickstart generates a config on first run and serves the client API."""
        with tempfile.TemporaryDirectory() as d:
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "homeserver", "quickstart", "--data-dir", d,
                 "--http-port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            try:
                import time
                import urllib.request

                deadline = time.monotonic() + 30
                while True:
                    try:
                        with urllib.request.urlopen(
                                f"http://127.0.0.1:{port}/_matrix/client/v3/login") as r:
                            self.assertIn(b"m.login.password", r.read())
                        break
                    except OSError:
                        if time.monotonic() > deadline or proc.poll() is not None:
                            raise
                        time.sleep(0.1)
            finally:
                proc.terminate()
                out, _ = proc.communicate(timeout=15)
            self.assertIn("Server name: localhost", out)
            self.assertIn("register-user", out)
            self.assertTrue(os.path.exists(os.path.join(d, "homeserver.yaml")))

    def test_default_bind_addresses_dual_stack(self) -> None:
        """A listener without bind_addresses (Synapse's default "::" and "0.0.0.0") starts."""
        server = ServerProcess()
        try:
            with open(server.config_path) as f:
                config = yaml.safe_load(f)
            del config["listeners"][0]["bind_addresses"]
            server.write_config(config)
            server.start()
            self.assertEqual(server.request("GET", "/_matrix/client/versions")[0], 200)
            self.assertEqual(server.stop(), 0)
        finally:
            server.close()
