"""Two real server processes federating over loopback TLS.

Each server is named `127.0.0.1:<its TLS federation port>`, so discovery connects straight
to it; certificates are self-signed (`federation_verify_certificates: false`) and loopback
is allowed (`ip_range_whitelist`), as only a test set-up may do.
"""

from __future__ import annotations

import time
import unittest
import urllib.parse
from typing import TYPE_CHECKING, Any

from tests.integration.server_process import ServerProcess, free_port

CLIENT = "/_matrix/client/v3"


def federating_server(engine: str = "sqlite3") -> ServerProcess:
    port = free_port()
    return ServerProcess(engine, server_name=f"127.0.0.1:{port}", federation_tls=True,
                         federation_port=port, config_overrides={
                             "federation_verify_certificates": False,
                             "ip_range_whitelist": ["127.0.0.0/8"],
                             "trusted_key_servers": [],
                         })


class Client:
    """A logged-in user of one server, over its client API."""

    def __init__(self, server: ServerProcess, localpart: str) -> None:
        self.server = server
        server.register_user(localpart, f"{localpart}-password-1")
        self.token = server.login(localpart, f"{localpart}-password-1")
        self.user_id = f"@{localpart}:{server.server_name}"
        self.since: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        code, answer = self.server.json(method, CLIENT + path, body, self.token)
        return code, answer

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        code, answer = self.call(method, path, body)
        if code != 200:
            raise AssertionError(f"{method} {path} -> {code} {answer}")
        return answer

    def send(self, room_id: str, text: str) -> str:
        txn = f"t{time.monotonic_ns()}"
        answer = self.ok("PUT", f"/rooms/{q(room_id)}/send/m.room.message/{txn}",
                         {"msgtype": "m.text", "body": text})
        return str(answer["event_id"])

    def sync(self, timeout: int = 0) -> dict[str, Any]:
        path = f"/sync?timeout={timeout}" + (f"&since={self.since}" if self.since else "")
        answer: dict[str, Any] = self.ok("GET", path)
        self.since = answer["next_batch"]
        return answer

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
        """Long-poll /sync until `predicate(answer)` is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.sync(timeout=1000)
            if predicate(answer):
                return answer
        raise AssertionError("timed out waiting for a /sync answer")


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


if TYPE_CHECKING:
    _PairBase = unittest.TestCase
else:
    _PairBase = object


class ServerPairScenarios(_PairBase):
    """Scenarios over two running servers, for a TestCase whose `make_b()` gives the
    second server (another Axon by default, a Synapse in tests/interop/); `a` is always
    Axon. `alice` is a user of A, `bob` of B; both servers run for the whole class."""

    a: Any
    b: Any
    alice: Client
    bob: Client

    @classmethod
    def make_b(cls) -> Any:
        return federating_server()

    @classmethod
    def setUpClass(cls) -> None:
        cls.a = federating_server()
        cls.b = cls.make_b()
        try:
            cls.a.start()
            cls.b.start()
            cls.alice = Client(cls.a, "alice")
            cls.bob = Client(cls.b, "bob")
        except BaseException:
            cls.a.close()
            cls.b.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.a.close()
        cls.b.close()

    def logs(self) -> str:
        return f"--- A ---\n{self.a.log()[-6000:]}\n--- B ---\n{self.b.log()[-6000:]}"
