"""Run the real server (`python -m homeserver run`) as a child process on loopback.

Used by integration, interop and (later) federation tests: each `ServerProcess` has its
own data directory, port and database, and shows its log when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

import yaml

from tests import postgres

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `python -m homeserver ARGS` and capture its output."""
    return subprocess.run([sys.executable, "-m", "homeserver", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=check)


class ServerProcess:
    """A configured, startable server. `engine` is "sqlite3" or "psycopg2"."""

    def __init__(self, engine: str = "sqlite3", server_name: str = "localhost",
                 config_overrides: dict[str, Any] | None = None,
                 federation_tls: bool = False, federation_port: int | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="axon-it-")
        self.data_dir = self._tmp.name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server_name = server_name
        self._pg_args: dict[str, Any] | None = None
        args = ["generate-config", "--server-name", server_name, "--data-dir", self.data_dir,
                "--http-port", str(self.port)]
        if engine == "psycopg2":
            self._pg_args = postgres.create_empty_database()
            args += ["--postgres", postgres.to_dsn(self._pg_args)]
        #: the TLS federation listener (a self-signed certificate), when asked for
        self.federation_port: int | None = None
        if federation_tls:
            self.federation_port = federation_port or free_port()
            args += ["--federation-port", str(self.federation_port)]
        run_cli(*args)
        self.config_path = os.path.join(self.data_dir, "homeserver.yaml")
        with open(self.config_path) as f:
            config = yaml.safe_load(f)
        self.shared_secret = config["registration_shared_secret"]
        lots = {"per_second": 1000, "burst_count": 1000}
        config.update({"bcrypt_rounds": 4, "rc_login": lots, "rc_registration": lots,
                       "rc_message": lots, "rc_joins": lots, "rc_joins_per_room": lots,
                       "rc_invites": lots, "rc_room_creation": lots})
        config.update(config_overrides or {})
        self.write_config(config)
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = os.path.join(self.data_dir, "server.log")

    def write_config(self, config: dict[str, Any]) -> None:
        with open(self.config_path, "w") as f:
            yaml.safe_dump(config, f)

    def start(self, timeout: float = 30) -> None:
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "homeserver", "run", "-c", self.config_path],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                self.request("GET", "/_matrix/client/versions")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM the server and return its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"server ignored SIGTERM:\n{self.log()}") from None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._pg_args is not None:
                postgres.drop_test_database(self._pg_args)
            self._tmp.cleanup()

    def log(self) -> str:
        try:
            with open(self.log_path) as f:
                return f.read()[-20000:]
        except OSError:
            return ""

    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request; returns (status, headers, raw body) whatever the status."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, method: str, path: str, body: Any = None,
             token: str | None = None) -> tuple[int, Any]:
        code, _, raw = self.request(method, path, body, token)
        return code, json.loads(raw) if raw else None

    def register_user(self, username: str, password: str, admin: bool = False) -> str:
        args = ["register-user", "-c", self.config_path, username, "--password", password]
        if admin:
            args.append("--admin")
        out = run_cli(*args).stdout
        return out.split()[1]

    def login(self, username: str, password: str) -> str:
        code, body = self.json("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "password": password,
            "identifier": {"type": "m.id.user", "user": username}})
        assert code == 200, body
        return str(body["access_token"])
