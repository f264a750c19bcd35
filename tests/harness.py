"""`HomeserverTestCase`: the whole server in memory, driven through its router.

Each test gets a fresh server on a `MemoryReactorClock` (time moves only with
`self.reactor.advance`) over a fresh database, transactions and bcrypt running inline.
Every subclass also gets a PostgreSQL twin, `<Name>_Postgres`, defined next to it in its
module, so the same tests run on both engines.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from homeserver.config import HomeServerConfig
from homeserver.keys import generate_signing_key_file
from homeserver.server import HomeServer
from rest.http import HttpRequest, HttpResponse
from storage.database import DatabasePool
from storage.engines import create_engine
from storage.prepare import prepare_database
from tests import postgres

F = TypeVar("F", bound=Callable[..., Any])

START_TIME = 1_700_000_000.0

DEFAULT_CONFIG: dict[str, Any] = {
    "server_name": "test",
    "public_baseurl": "https://test/",
    "enable_registration": True,
    "enable_registration_without_verification": True,
    "bcrypt_rounds": 4,
    "registration_shared_secret": "shared-secret-for-tests",
    # Generous limits: tests that pin rate limiting override these.
    "rc_message": {"per_second": 1000, "burst_count": 1000},
    "rc_joins": {"per_second": 1000, "burst_count": 1000},
    "rc_joins_per_room": {"per_second": 1000, "burst_count": 1000},
    "rc_invites": {"per_second": 1000, "burst_count": 1000},
    "rc_room_creation": {"per_second": 1000, "burst_count": 1000},
    "rc_registration": {"per_second": 1000, "burst_count": 1000},
    "rc_login": {"per_second": 1000, "burst_count": 1000},
    "rc_federation": {"sleep_limit": 1000, "reject_limit": 1000, "concurrent": 1000},
}


def override_config(overrides: dict[str, Any]) -> Callable[[F], F]:
    """Decorate a test method to run it with these top-level config keys replaced."""

    def decorator(func: F) -> F:
        func._config_overrides = overrides  # type: ignore[attr-defined]
        return func

    return decorator


@attrs.define
class FakeChannel:
    """What a request produced: `.code`, `.json_body`, `.headers`, `.result` (raw body)."""

    response: HttpResponse | None = None

    @property
    def code(self) -> int:
        assert self.response is not None, "request did not complete"
        return self.response.code

    @property
    def result(self) -> bytes:
        assert self.response is not None, "request did not complete"
        if self.response.stream is not None:
            return self.response.stream.read_all()
        return self.response.body

    @property
    def json_body(self) -> Any:
        return json.loads(self.result)

    def header(self, name: str) -> str | None:
        assert self.response is not None
        for k, v in self.response.headers:
            if k.lower() == name.lower():
                return v
        return None


class HomeserverTestCase(unittest.TestCase):
    """Base of API and store tests. Override `make_config` or use `@override_config`."""

    db_engine = "sqlite3"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.db_engine != "sqlite3" or cls.__name__.endswith("_Postgres"):
            return
        twin = type(f"{cls.__name__}_Postgres", (cls,), {"db_engine": "psycopg2",
                                                        "__module__": cls.__module__})
        module = sys.modules.get(cls.__module__)
        if module is not None:
            setattr(module, twin.__name__, twin)

    def make_config(self) -> dict[str, Any]:
        return dict(DEFAULT_CONFIG)

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(START_TIME)
        raw = self.make_config()
        method = getattr(self, self._testMethodName)
        raw.update(getattr(method, "_config_overrides", {}))
        self._tmpdir = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmpdir.cleanup)
        raw.setdefault("signing_key_path", os.path.join(self._tmpdir.name, "signing.key"))
        generate_signing_key_file(raw["signing_key_path"])
        self.config = HomeServerConfig.parse(raw, self._tmpdir.name)

        if self.db_engine == "psycopg2":
            args = postgres.create_test_database()
            self.addCleanup(postgres.drop_test_database, args)
            engine = create_engine("psycopg2", args)
        else:
            engine = create_engine("sqlite3", {"database": ":memory:"})
        pool = DatabasePool(engine, self.reactor, synchronous=True)
        prepare_database(pool)
        self.hs = HomeServer(self.config, self.reactor, db_pool=pool, run_threads_inline=True)
        self.addCleanup(self.hs.shutdown)
        self.router = self.hs.get_router()
        self.prepare(self.reactor, self.hs)

    def prepare(self, reactor: MemoryReactorClock, hs: HomeServer) -> None:
        """Per-test set-up after the server is built (override)."""

    # -- driving the server --

    def get_success(self, coro: Any) -> Any:
        """Run a coroutine or Deferred to completion on the fake reactor and return its result."""
        d = defer.ensureDeferred(coro) if not isinstance(coro, defer.Deferred) else coro
        self.pump(d)
        if not d.called:
            self.fail("coroutine did not complete")
        results: list[Any] = []
        d.addBoth(results.append)
        result = results[0]
        if hasattr(result, "raiseException"):
            result.raiseException()
        return result

    def get_failure(self, coro: Any, exc_type: type[BaseException]) -> BaseException:
        """Run a coroutine and return the exception of type `exc_type` it raised."""
        try:
            self.get_success(coro)
        except exc_type as e:
            return e
        self.fail(f"expected {exc_type.__name__}")

    def pump(self, d: defer.Deferred[Any] | None = None, rounds: int = 100) -> None:
        for _ in range(rounds):
            if d is not None and d.called:
                return
            self.reactor.advance(0)

    def make_request(self, method: str, path: str, content: Any = None,
                     access_token: str | None = None, headers: dict[str, str] | None = None,
                     client_ip: str = "127.0.0.1", await_result: bool = True
                     ) -> FakeChannel:
        """Send a request through the router. `content` is JSON-encoded unless bytes."""
        if isinstance(content, bytes):
            body = content
        elif content is None:
            body = b""
        else:
            body = json.dumps(content).encode("utf-8")
        parsed = urllib.parse.urlsplit(path)
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        if access_token is not None:
            hdrs["authorization"] = f"Bearer {access_token}"
        request = HttpRequest(
            method=method, path=parsed.path,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers=hdrs, body=body, client_ip=client_ip, uri=path,
        )
        channel = FakeChannel()
        d = defer.ensureDeferred(self.router.handle(request))
        d.addCallback(lambda r: setattr(channel, "response", r))
        self.pump(d)
        if await_result and not d.called:
            self.fail(f"{method} {path} did not complete")
        return channel

    # -- helpers --

    def register_user(self, localpart: str, password: str = "password",
                      admin: bool = False) -> str:
        """Create an account directly through the registration handler; returns the user ID."""
        handler = self.hs.get_registration_handler()
        user_id: str = self.get_success(
            handler.register_user(localpart=localpart, password=password, admin=admin)
        )
        return user_id

    def login(self, localpart: str, password: str = "password", device_id: str | None = None,
              refresh_token: bool = False) -> str:
        """Log in with a password through the API; returns the access token."""
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": password,
        }
        if device_id is not None:
            body["device_id"] = device_id
        if refresh_token:
            body["refresh_token"] = True
        channel = self.make_request("POST", "/_matrix/client/v3/login", body)
        self.assertEqual(channel.code, 200, channel.result)
        token: str = channel.json_body["access_token"]
        return token

    def assert_error(self, channel: FakeChannel, code: int, errcode: str) -> None:
        """Assert an HTTP status and Matrix errcode."""
        self.assertEqual(channel.code, code, channel.result)
        self.assertEqual(channel.json_body.get("errcode"), errcode, channel.result)
