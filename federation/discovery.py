"""Resolving a server name to the hosts and ports to connect to.

Spec: server-server-api.md "Resolving server names". In order:

1. IP literal (with or without port): that address, the port or 8448.
2. Hostname with an explicit port: that hostname and port.
3. `GET https://<hostname>/.well-known/matrix/server`; if it names `m.server` the
   delegated name is resolved by 3.1–3.5 (IP literal; explicit port; SRV
   `_matrix-fed._tcp`; SRV `_matrix._tcp`; port 8448), all with the delegated hostname as
   TLS name.
4./5. Otherwise SRV `_matrix-fed._tcp.<hostname>`, then `_matrix._tcp.<hostname>`.
6. Otherwise `<hostname>`, port 8448.

The result lists targets in the order to try. A target's `host` may be a DNS name still
to be resolved with A/AAAA records by the connecting code, which must then check every
address with `federation.ip_filter.IPFilter` before connecting. The `Host` header is the
server name as resolved after delegation (the delegated name, with its port if it had
one) — not derivable from the target when SRV changed host and port.

`.well-known` results are cached per hostname: successes as long as `Cache-Control`
says (clamped to 5 min – 48 h, 24 h without a header), failures for 1 h.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

import attrs
from twisted.internet import defer
from twisted.names import dns
from twisted.names.error import DNSNameError

from homeserver.clock import Clock
from homeserver.identifiers import is_valid_server_name

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8448
#: Cache lifetimes of `.well-known` answers, in milliseconds (the spec's recommendations).
WELL_KNOWN_DEFAULT_CACHE_MS = 24 * 3600 * 1000
WELL_KNOWN_MIN_CACHE_MS = 5 * 60 * 1000
WELL_KNOWN_MAX_CACHE_MS = 48 * 3600 * 1000
WELL_KNOWN_ERROR_CACHE_MS = 3600 * 1000
#: A `.well-known/matrix/server` body larger than this is refused.
WELL_KNOWN_MAX_SIZE = 50 * 1024
_WELL_KNOWN_CACHE_SIZE = 10_000


class ServerTarget(NamedTuple):
    """One place to try: connect to `host:port`, expect a certificate for `tls_sni_host`.

    `host` is an IP address (without brackets) or a DNS name to resolve with A/AAAA.
    """

    host: str
    port: int
    tls_sni_host: str


@attrs.frozen(slots=True)
class WellKnownResponse:
    """What a `.well-known` fetcher returns: status, body, and its `Cache-Control` header."""

    code: int
    body: bytes
    cache_control: str | None = None


#: Fetches `https://<hostname>/.well-known/matrix/server` (following redirects); raises on
#: network errors.
WellKnownFetcher = Callable[[str], Awaitable[WellKnownResponse]]


class SRVResolver(Protocol):
    """The part of Twisted's `IResolver` we use."""

    def lookupService(self, name: str) -> defer.Deferred[Any]: ...  # noqa: N802


def split_server_name(server_name: str) -> tuple[str, int | None]:
    """`example.org:8448` → (`example.org`, 8448); `[::1]` → (`::1`, None).

    Raises:
        ValueError: not a valid server name.
    """
    if not is_valid_server_name(server_name):
        raise ValueError(f"Invalid server name {server_name!r}")
    if server_name.startswith("["):
        end = server_name.index("]")
        host, rest = server_name[1:end], server_name[end + 1:]
        return host, int(rest[1:]) if rest else None
    host, sep, port = server_name.partition(":")
    return host, int(port) if sep else None


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_cache_control_ms(header: str | None) -> int:
    """How long to cache a valid `.well-known` answer, from its `Cache-Control` header."""
    if header is None:
        return WELL_KNOWN_DEFAULT_CACHE_MS
    directives = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return WELL_KNOWN_MIN_CACHE_MS
    max_age = directives.get("max-age")
    if max_age is None or not max_age.isdigit():
        return WELL_KNOWN_DEFAULT_CACHE_MS
    return min(max(int(max_age) * 1000, WELL_KNOWN_MIN_CACHE_MS), WELL_KNOWN_MAX_CACHE_MS)


def parse_well_known(response: WellKnownResponse) -> str:
    """The delegated server name from a `.well-known/matrix/server` response.

    Raises:
        ValueError: non-200, too large, not a JSON object, or no valid `m.server`.
    """
    if response.code != 200:
        raise ValueError(f"status {response.code}")
    if len(response.body) > WELL_KNOWN_MAX_SIZE:
        raise ValueError("response too large")
    try:
        body = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    delegated = body.get("m.server")
    if not isinstance(delegated, str) or not is_valid_server_name(delegated):
        raise ValueError(f"invalid m.server {delegated!r}")
    return delegated


class ServerDiscovery:
    """Resolves server names; holds the `.well-known` cache."""

    def __init__(self, clock: Clock, fetch_well_known: WellKnownFetcher,
                 resolver: SRVResolver | None = None, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._fetch_well_known = fetch_well_known
        self._resolver = resolver
        self._rng = rng or random.Random()
        # hostname -> (expiry in ms, delegated server name or None after an error)
        self._well_known_cache: dict[str, tuple[int, str | None]] = {}

    async def resolve_server_name(self, server_name: str) -> list[ServerTarget]:
        """The targets to try for `server_name`, best first.

        Empty when an SRV record says the service is unavailable (target `.`).

        Raises:
            ValueError: not a valid server name.
            twisted.names.error.DomainError: DNS failed other than by NXDOMAIN (the caller
                retries later).
        """
        host, port = split_server_name(server_name)
        # 1. IP literal; 2. hostname with explicit port.
        if _is_ip_literal(host) or port is not None:
            return [ServerTarget(host, port or DEFAULT_PORT, host)]
        # 3. .well-known delegation.
        delegated = await self.get_well_known(host)
        if delegated is not None:
            d_host, d_port = split_server_name(delegated)
            # 3.1 IP literal; 3.2 explicit port.
            if _is_ip_literal(d_host) or d_port is not None:
                return [ServerTarget(d_host, d_port or DEFAULT_PORT, d_host)]
            # 3.3–3.5
            return await self._resolve_srv_or_default(d_host)
        # 4.–6.
        return await self._resolve_srv_or_default(host)

    async def _resolve_srv_or_default(self, host: str) -> list[ServerTarget]:
        """SRV `_matrix-fed._tcp`, then the deprecated `_matrix._tcp`, then port 8448."""
        for service in ("_matrix-fed._tcp", "_matrix._tcp"):
            records = await self._lookup_srv(f"{service}.{host}")
            if records is not None:
                return [ServerTarget(target, port, host) for target, port in records]
        return [ServerTarget(host, DEFAULT_PORT, host)]

    async def _lookup_srv(self, name: str) -> list[tuple[str, int]] | None:
        """(target, port) pairs in RFC 2782 order; None if there is no record; [] if `.`."""
        resolver = self._resolver
        if resolver is None:
            from twisted.names import client

            resolver = self._resolver = client.getResolver()
        try:
            answers, _authority, _additional = await resolver.lookupService(name)
        except DNSNameError:
            return None
        srv = [a.payload for a in answers if a.type == dns.SRV and a.payload is not None]
        if not srv:
            return None
        if len(srv) == 1 and srv[0].target.name in (b".", b""):
            logger.info("SRV %s: service unavailable", name)
            return []
        ordered = self._order_srv([(r.priority, r.weight, str(r.target), r.port) for r in srv])
        return [(target.rstrip("."), port) for target, port in ordered]

    def _order_srv(self, records: list[tuple[int, int, str, int]]) -> list[tuple[str, int]]:
        """Lowest priority first; within a priority a weighted random order (RFC 2782)."""
        result: list[tuple[str, int]] = []
        for priority in sorted({r[0] for r in records}):
            pending = [r for r in records if r[0] == priority]
            while pending:
                threshold = self._rng.randint(0, sum(r[1] for r in pending))
                chosen = pending[-1]
                for r in pending:
                    threshold -= r[1]
                    if threshold <= 0:
                        chosen = r
                        break
                pending.remove(chosen)
                result.append((chosen[2], chosen[3]))
        return result

    async def get_well_known(self, hostname: str) -> str | None:
        """The server name `hostname` delegates to, or None (cached, errors included)."""
        now = self._clock.time_msec()
        cached = self._well_known_cache.get(hostname)
        if cached is not None and cached[0] > now:
            return cached[1]
        delegated: str | None
        try:
            response = await self._fetch_well_known(hostname)
            delegated = parse_well_known(response)
            lifetime = parse_cache_control_ms(response.cache_control)
        except Exception as e:  # noqa: BLE001 - any failure means "no delegation"
            logger.info("No usable .well-known/matrix/server for %s: %s", hostname, e)
            delegated, lifetime = None, WELL_KNOWN_ERROR_CACHE_MS
        self._store(hostname, now + lifetime, delegated)
        return delegated

    def _store(self, hostname: str, expiry: int, delegated: str | None) -> None:
        if len(self._well_known_cache) >= _WELL_KNOWN_CACHE_SIZE:
            now = self._clock.time_msec()
            self._well_known_cache = {
                k: v for k, v in self._well_known_cache.items() if v[0] > now}
            if len(self._well_known_cache) >= _WELL_KNOWN_CACHE_SIZE:
                self._well_known_cache.pop(next(iter(self._well_known_cache)))
        self._well_known_cache[hostname] = (expiry, delegated)


def treq_well_known_fetcher(http_client: Any, timeout: float = 30.0) -> WellKnownFetcher:
    """A `WellKnownFetcher` over a treq `HTTPClient` (or `treq.testing.StubTreq`).

    The client's agent must refuse blacklisted addresses (`IPFilter`): the hostname is
    chosen by a remote party.
    """

    async def fetch(hostname: str) -> WellKnownResponse:
        response = await http_client.get(
            f"https://{hostname}/.well-known/matrix/server", timeout=timeout)
        length = response.length
        if isinstance(length, int) and length > WELL_KNOWN_MAX_SIZE:
            raise ValueError(f"response too large ({length} bytes)")
        body = await response.content()
        cache_control = response.headers.getRawHeaders("cache-control")
        return WellKnownResponse(code=response.code, body=body,
                                 cache_control=", ".join(cache_control) if cache_control else None)

    return fetch
