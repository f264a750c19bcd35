"""A real Synapse (from PyPI, in its own virtualenv) federating with Axon over loopback TLS.

`scripts/run-tests` installs `matrix-synapse` into `.synapse-venv` (or set
`AXON_SYNAPSE_VENV`). Without it the tests using this module fail and say how to get it:
they never skip silently.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import unittest
from typing import TYPE_CHECKING, Any

import yaml

from homeserver.tls import generate_self_signed
from tests.integration.federation_pair import federating_server
from tests.integration.server_process import ROOT, ServerProcess, free_port

SYNAPSE_VENV = os.environ.get("AXON_SYNAPSE_VENV", os.path.join(ROOT, ".synapse-venv"))
SYNAPSE_VERSION = "1.163.2"


class SynapseNotInstalled(RuntimeError):
    pass


class SynapseProcess:
    """One Synapse homeserver named `127.0.0.1:<federation port>` on SQLite."""

    # The HTTP helpers only need `base_url`: share ServerProcess's.
    request = ServerProcess.request
    json = ServerProcess.json
    login = ServerProcess.login

    def __init__(self) -> None:
        self.python = os.path.join(SYNAPSE_VENV, "bin", "python")
        if not os.path.exists(self.python):
            raise SynapseNotInstalled(
                f"Synapse is not installed in {SYNAPSE_VENV}: scripts/run-tests installs it "
                f"(python3 -m venv .synapse-venv && .synapse-venv/bin/pip install "
                f"matrix-synapse=={SYNAPSE_VERSION}), or point AXON_SYNAPSE_VENV at one")
        self._tmp = tempfile.TemporaryDirectory(prefix="axon-synapse-")
        self.data_dir = self._tmp.name
        self.federation_port = free_port()
        self.client_port = free_port()
        self.server_name = f"127.0.0.1:{self.federation_port}"
        self.base_url = f"http://127.0.0.1:{self.client_port}"
        self.config_path = os.path.join(self.data_dir, "homeserver.yaml")
        subprocess.run(
            [self.python, "-m", "synapse.app.homeserver", "--server-name", self.server_name,
             "--config-path", self.config_path, "--generate-config", "--report-stats=no",
             "--data-directory", self.data_dir],
            cwd=self.data_dir, check=True, capture_output=True, timeout=120)
        with open(self.config_path) as f:
            config: dict[str, Any] = yaml.safe_load(f)
        cert = os.path.join(self.data_dir, "tls.crt")
        key = os.path.join(self.data_dir, "tls.key")
        generate_self_signed(cert, key, self.server_name)
        lots = {"per_second": 1000, "burst_count": 1000}
        config.update({
            "listeners": [
                {"port": self.client_port, "bind_addresses": ["127.0.0.1"], "type": "http",
                 "tls": False, "x_forwarded": False,
                 "resources": [{"names": ["client"], "compress": False}]},
                {"port": self.federation_port, "bind_addresses": ["127.0.0.1"],
                 "type": "http", "tls": True,
                 "resources": [{"names": ["federation"], "compress": False}]},
            ],
            "tls_certificate_path": cert, "tls_private_key_path": key,
            "federation_verify_certificates": False,
            # Loopback is blocked by default, and Synapse checks IP-literal server names
            # against the blocklist alone (the allowlist does not apply): empty it.
            "ip_range_blacklist": [],
            "trusted_key_servers": [], "suppress_key_server_warning": True,
            "enable_registration": False, "report_stats": False,
            "rc_message": lots, "rc_registration": lots, "rc_login": {"address": lots,
                                                                     "account": lots,
                                                                     "failed_attempts": lots},
            "rc_joins": {"local": lots, "remote": lots}, "rc_joins_per_room": lots,
            "rc_invites": {
                "per_room": lots, "per_user": lots, "per_issuer": lots},
            "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 10,
                              "reject_limit": 1000, "concurrent": 100},
            "bcrypt_rounds": 4,
            "presence": {"enabled": False},
        })
        with open(self.config_path, "w") as f:
            yaml.safe_dump(config, f)
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = os.path.join(self.data_dir, "homeserver.log")

    def start(self, timeout: float = 90) -> None:
        out = open(os.path.join(self.data_dir, "stdout.log"), "w")
        self.proc = subprocess.Popen(
            [self.python, "-m", "synapse.app.homeserver", "-c", self.config_path],
            cwd=self.data_dir, stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Synapse exited early:\n{self.log()}")
            try:
                if self.request("GET", "/_matrix/client/versions")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"Synapse did not start in {timeout}s:\n{self.log()}")

    def register_user(self, username: str, password: str, admin: bool = False) -> str:
        tool = os.path.join(SYNAPSE_VENV, "bin", "register_new_matrix_user")
        subprocess.run([tool, "-u", username, "-p", password,
                        "--admin" if admin else "--no-admin", "-c", self.config_path,
                        self.base_url], check=True, capture_output=True, timeout=60)
        return f"@{username}:{self.server_name}"

    def log(self) -> str:
        parts = []
        for name in ("stdout.log", "homeserver.log"):
            try:
                with open(os.path.join(self.data_dir, name)) as f:
                    parts.append(f.read()[-8000:])
            except OSError:
                pass
        return "\n".join(parts)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._tmp.cleanup()


if TYPE_CHECKING:
    _PairBase = unittest.TestCase
else:
    _PairBase = object


class AxonSynapsePair(_PairBase):
    """An Axon (`axon`) and a Synapse (`synapse`) federating for the whole test class.
    `prepare_servers()` runs once both are up (users, rooms); if it fails, both stop."""

    axon: Any
    synapse: SynapseProcess

    @classmethod
    def setUpClass(cls) -> None:
        cls.axon = federating_server()
        cls.synapse = SynapseProcess()
        try:
            cls.axon.start()
            cls.synapse.start()
            cls.prepare_servers()
        except BaseException:
            cls.axon.close()
            cls.synapse.close()
            raise

    @classmethod
    def prepare_servers(cls) -> None:
        """Class-wide set-up on the running servers (none by default)."""

    @classmethod
    def tearDownClass(cls) -> None:
        cls.axon.close()
        cls.synapse.close()

    def logs(self) -> str:
        return (f"--- Axon log (end) ---\n{self.axon.log()[-5000:]}\n"
                f"--- Synapse log (end) ---\n{self.synapse.log()[-5000:]}")
