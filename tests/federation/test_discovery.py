"""Server name resolution: each branch of the spec, with fake DNS and .well-known."""

from __future__ import annotations

import json
import random
import unittest
from typing import Any

from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.task import Clock as ReactorClock
from twisted.names import dns
from twisted.names.error import DNSNameError, DNSServerError
from twisted.web.resource import Resource

from federation.discovery import (
    ServerDiscovery,
    ServerTarget,
    WellKnownResponse,
    parse_cache_control_ms,
    split_server_name,
    treq_well_known_fetcher,
)
from homeserver.clock import Clock

HOUR = 3600


def srv(target: str, port: int, priority: int = 10, weight: int = 0) -> dns.RRHeader:
    return dns.RRHeader(name="x", type=dns.SRV,
                        payload=dns.Record_SRV(priority, weight, port, target.encode()))


class FakeResolver:
    """SRV records by name; names not listed answer NXDOMAIN; `errors` fail otherwise."""

    def __init__(self) -> None:
        self.records: dict[str, list[dns.RRHeader]] = {}
        self.errors: dict[str, Exception] = {}
        self.queries: list[str] = []

    def lookupService(self, name: str) -> defer.Deferred[Any]:  # noqa: N802
        self.queries.append(name)
        if name in self.errors:
            return defer.fail(self.errors[name])
        if name not in self.records:
            return defer.fail(DNSNameError(name))
        return defer.succeed((self.records[name], [], []))


class FakeWellKnown:
    def __init__(self) -> None:
        self.responses: dict[str, WellKnownResponse | Exception] = {}
        self.fetches: list[str] = []

    async def __call__(self, hostname: str) -> WellKnownResponse:
        self.fetches.append(hostname)
        response = self.responses.get(hostname, WellKnownResponse(404, b"Not found"))
        if isinstance(response, Exception):
            raise response
        return response

    def delegate(self, hostname: str, to: str, cache_control: str | None = None) -> None:
        self.responses[hostname] = WellKnownResponse(
            200, json.dumps({"m.server": to}).encode(), cache_control)


class DiscoveryTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.reactor = ReactorClock()
        self.reactor.advance(1_700_000_000)
        self.dns = FakeResolver()
        self.well_known = FakeWellKnown()
        self.discovery = ServerDiscovery(Clock(self.reactor), self.well_known, self.dns,
                                         random.Random(0))

    def resolve(self, name: str) -> list[ServerTarget]:
        d = defer.ensureDeferred(self.discovery.resolve_server_name(name))
        results: list[Any] = []
        d.addBoth(results.append)
        self.assertEqual(len(results), 1, "resolution did not complete")
        if isinstance(results[0], Exception) or hasattr(results[0], "raiseException"):
            results[0].raiseException()
        return results[0]  # type: ignore[no-any-return]

    # 1. IP literals

    def test_ip_literals(self) -> None:
        cases = {
            "1.2.3.4": ("1.2.3.4", 8448),
            "1.2.3.4:8080": ("1.2.3.4", 8080),
            "[2001:db8::1]": ("2001:db8::1", 8448),
            "[::1]:1234": ("::1", 1234),
        }
        for name, (host, port) in cases.items():
            with self.subTest(name):
                self.assertEqual(self.resolve(name), [ServerTarget(host, port, host)])
        self.assertEqual(self.well_known.fetches, [])
        self.assertEqual(self.dns.queries, [])

    # 2. hostname with port

    def test_hostname_with_port(self) -> None:
        self.dns.records["_matrix-fed._tcp.example.org"] = [srv("other.example", 1)]
        self.assertEqual(self.resolve("example.org:8080"),
                         [ServerTarget("example.org", 8080, "example.org")])
        self.assertEqual(self.well_known.fetches, [])
        self.assertEqual(self.dns.queries, [])

    # 3. .well-known delegation

    def test_well_known_to_ip_literal(self) -> None:
        self.well_known.delegate("example.org", "[2001:db8::2]:9000")
        self.assertEqual(self.resolve("example.org"),
                         [ServerTarget("2001:db8::2", 9000, "2001:db8::2")])
        self.well_known.delegate("example.net", "5.6.7.8")
        self.assertEqual(self.resolve("example.net"), [ServerTarget("5.6.7.8", 8448, "5.6.7.8")])

    def test_well_known_with_port(self) -> None:
        self.well_known.delegate("example.org", "matrix.example.org:443")
        self.assertEqual(self.resolve("example.org"),
                         [ServerTarget("matrix.example.org", 443, "matrix.example.org")])
        self.assertEqual(self.dns.queries, [])

    def test_well_known_then_matrix_fed_srv(self) -> None:
        """SRV of the delegated name; the certificate is for the delegated name."""
        self.well_known.delegate("example.org", "matrix.example.org")
        self.dns.records["_matrix-fed._tcp.matrix.example.org"] = [srv("host1.example.net", 8443)]
        self.dns.records["_matrix-fed._tcp.example.org"] = [srv("wrong.example", 1)]
        self.assertEqual(self.resolve("example.org"),
                         [ServerTarget("host1.example.net", 8443, "matrix.example.org")])

    def test_well_known_then_legacy_srv(self) -> None:
        self.well_known.delegate("example.org", "matrix.example.org")
        self.dns.records["_matrix._tcp.matrix.example.org"] = [srv("legacy.example.net", 8449)]
        self.assertEqual(self.resolve("example.org"),
                         [ServerTarget("legacy.example.net", 8449, "matrix.example.org")])
        self.assertEqual(self.dns.queries, ["_matrix-fed._tcp.matrix.example.org",
                                            "_matrix._tcp.matrix.example.org"])

    def test_well_known_then_default_port(self) -> None:
        self.well_known.delegate("example.org", "matrix.example.org")
        self.assertEqual(self.resolve("example.org"),
                         [ServerTarget("matrix.example.org", 8448, "matrix.example.org")])

    # 4.–6. no usable .well-known

    def test_no_well_known_matrix_fed_srv(self) -> None:
        self.dns.records["_matrix-fed._tcp.example.org"] = [srv("fed.example.org.", 8443)]
        self.dns.records["_matrix._tcp.example.org"] = [srv("legacy.example.org", 1)]
        self.assertEqual(self.resolve("example.org"),
                         [ServerTarget("fed.example.org", 8443, "example.org")])

    def test_no_well_known_legacy_srv(self) -> None:
        self.dns.records["_matrix._tcp.example.org"] = [srv("legacy.example.org", 8449)]
        self.assertEqual(self.resolve("example.org"),
                         [ServerTarget("legacy.example.org", 8449, "example.org")])

    def test_no_well_known_no_srv(self) -> None:
        self.assertEqual(self.resolve("example.org"),
                         [ServerTarget("example.org", 8448, "example.org")])
        self.assertEqual(self.well_known.fetches, ["example.org"])

    def test_invalid_well_known_responses_fall_through(self) -> None:
        """Non-200, bad JSON, missing or invalid m.server, too large, network error."""
        bad: list[WellKnownResponse | Exception] = [
            WellKnownResponse(500, b'{"m.server": "x.example"}'),
            WellKnownResponse(200, b"not json"),
            WellKnownResponse(200, b"\xff\xfe"),
            WellKnownResponse(200, b'["m.server"]'),
            WellKnownResponse(200, b"{}"),
            WellKnownResponse(200, b'{"m.server": 42}'),
            WellKnownResponse(200, b'{"m.server": "bad host/name"}'),
            WellKnownResponse(200, json.dumps({"m.server": "x.example",
                                               "pad": "a" * 60_000}).encode()),
            ConnectionRefusedError(),
        ]
        for i, response in enumerate(bad):
            name = f"host{i}.example"
            self.well_known.responses[name] = response
            with self.subTest(response=response):
                self.assertEqual(self.resolve(name), [ServerTarget(name, 8448, name)])

    # SRV details

    def test_srv_order_by_priority_then_weight(self) -> None:
        self.dns.records["_matrix-fed._tcp.example.org"] = [
            srv("c.example", 3, priority=20),
            srv("a.example", 1, priority=5),
            srv("b1.example", 2, priority=10, weight=0),
            srv("b2.example", 2, priority=10, weight=100),
        ]
        targets = self.resolve("example.org")
        self.assertEqual(targets[0], ServerTarget("a.example", 1, "example.org"))
        self.assertEqual({t.host for t in targets[1:3]}, {"b1.example", "b2.example"})
        self.assertEqual(targets[3], ServerTarget("c.example", 3, "example.org"))
        # Over many draws, the weight-100 record almost always comes first.
        firsts = [self.discovery._order_srv([(10, 0, "b1", 1), (10, 100, "b2", 1)])[0][0]
                  for _ in range(200)]
        self.assertGreater(firsts.count("b2"), 190)

    def test_srv_dot_means_unavailable(self) -> None:
        self.dns.records["_matrix-fed._tcp.example.org"] = [srv(".", 0)]
        self.assertEqual(self.resolve("example.org"), [])

    def test_srv_other_record_types_ignored(self) -> None:
        self.dns.records["_matrix-fed._tcp.example.org"] = [
            dns.RRHeader(name="x", type=dns.A, payload=dns.Record_A("1.2.3.4"))]
        self.assertEqual(self.resolve("example.org"),
                         [ServerTarget("example.org", 8448, "example.org")])

    def test_dns_failure_propagates(self) -> None:
        """SERVFAIL is not "no record": the caller retries rather than guessing port 8448."""
        self.dns.errors["_matrix-fed._tcp.example.org"] = DNSServerError("servfail")
        with self.assertRaises(DNSServerError):
            self.resolve("example.org")

    def test_invalid_server_names(self) -> None:
        for name in ("", "exa mple.org", "example.org:99999", "example.org:", "[::1",
                     "[::1]x", "@user:example.org"):
            with self.subTest(name), self.assertRaises(ValueError):
                self.resolve(name)

    # caching

    def test_well_known_cached_for_24h_by_default(self) -> None:
        self.well_known.delegate("example.org", "m.example.org:443")
        self.resolve("example.org")
        self.reactor.advance(23 * HOUR)
        self.well_known.delegate("example.org", "changed.example.org:443")
        self.assertEqual(self.resolve("example.org")[0].host, "m.example.org")
        self.assertEqual(self.well_known.fetches, ["example.org"])
        self.reactor.advance(1 * HOUR + 1)
        self.assertEqual(self.resolve("example.org")[0].host, "changed.example.org")
        self.assertEqual(len(self.well_known.fetches), 2)

    def test_errors_cached_for_an_hour(self) -> None:
        self.well_known.responses["example.org"] = ConnectionRefusedError()
        self.resolve("example.org")
        self.well_known.delegate("example.org", "m.example.org:443")
        self.reactor.advance(HOUR - 1)
        self.assertEqual(self.resolve("example.org")[0].host, "example.org")
        self.assertEqual(len(self.well_known.fetches), 1)
        self.reactor.advance(2)
        self.assertEqual(self.resolve("example.org")[0].host, "m.example.org")
        self.assertEqual(len(self.well_known.fetches), 2)

    def test_cache_control_respected(self) -> None:
        self.well_known.delegate("example.org", "m.example.org:443", "public, max-age=600")
        self.resolve("example.org")
        self.reactor.advance(599)
        self.resolve("example.org")
        self.assertEqual(len(self.well_known.fetches), 1)
        self.reactor.advance(2)
        self.resolve("example.org")
        self.assertEqual(len(self.well_known.fetches), 2)

    def test_parse_cache_control(self) -> None:
        self.assertEqual(parse_cache_control_ms(None), 24 * HOUR * 1000)
        self.assertEqual(parse_cache_control_ms("max-age=3600"), HOUR * 1000)
        self.assertEqual(parse_cache_control_ms('public, MAX-AGE="7200"'), 2 * HOUR * 1000)
        self.assertEqual(parse_cache_control_ms("max-age=1"), 5 * 60 * 1000)  # minimum
        self.assertEqual(parse_cache_control_ms("max-age=9999999"), 48 * HOUR * 1000)  # max
        self.assertEqual(parse_cache_control_ms("no-store"), 5 * 60 * 1000)
        self.assertEqual(parse_cache_control_ms("max-age=abc"), 24 * HOUR * 1000)

    def test_split_server_name(self) -> None:
        self.assertEqual(split_server_name("example.org"), ("example.org", None))
        self.assertEqual(split_server_name("example.org:80"), ("example.org", 80))
        self.assertEqual(split_server_name("[::1]:80"), ("::1", 80))
        self.assertEqual(split_server_name("[::1]"), ("::1", None))


class _WellKnownResource(Resource):
    isLeaf = True

    def __init__(self, code: int, body: bytes, headers: dict[bytes, bytes]) -> None:
        super().__init__()
        self.code, self.body, self.headers = code, body, headers
        self.paths: list[bytes] = []

    def render_GET(self, request: Any) -> bytes:  # noqa: N802
        self.paths.append(request.uri)
        request.setResponseCode(self.code)
        for name, value in self.headers.items():
            request.setHeader(name, value)
        return self.body


class TreqFetcherTestCase(unittest.TestCase):
    def fetch(self, resource: Resource) -> Any:
        fetch = treq_well_known_fetcher(StubTreq(resource))
        results: list[Any] = []
        defer.ensureDeferred(fetch("example.org")).addBoth(results.append)
        self.assertEqual(len(results), 1)
        return results[0]

    def test_fetch(self) -> None:
        resource = _WellKnownResource(200, b'{"m.server": "m.example.org:443"}',
                                      {b"Cache-Control": b"max-age=60"})
        response = self.fetch(resource)
        self.assertEqual(response, WellKnownResponse(
            200, b'{"m.server": "m.example.org:443"}', "max-age=60"))
        self.assertEqual(resource.paths, [b"/.well-known/matrix/server"])

    def test_fetch_error_status(self) -> None:
        response = self.fetch(_WellKnownResource(404, b"nope", {}))
        self.assertEqual((response.code, response.cache_control), (404, None))
