"""Outbound HTTP(S) for URL previews, with the SSRF guard at connect time.

Every connection (the first request and each redirect) resolves the host and connects
only to addresses `url_preview_ip_range_blacklist`/`_whitelist` allow, so neither an IP
literal, a DNS name pointing inside, nor a redirect reaches the local network. Bodies are
read up to `max_spider_size`; a longer one is cut off and refused.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.web.client import Agent, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from federation.ip_filter import IPFilter

MAX_REDIRECTS = 5


class FetchError(Exception):
    """The URL could not be fetched; `blocked` when the IP filter refused every address."""

    def __init__(self, msg: str, blocked: bool = False) -> None:
        super().__init__(msg)
        self.blocked = blocked


@attrs.frozen(slots=True)
class FetchResult:
    url: str
    code: int
    headers: dict[str, str]
    body: bytes


Resolve = Callable[[str, int], Awaitable[list[str]]]


class _LimitedBody(protocol.Protocol):
    def __init__(self, limit: int, done: defer.Deferred[bytes]) -> None:
        self._limit = limit
        self._done = done
        self._chunks: list[bytes] = []
        self._size = 0

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        if self._done.called:
            return
        self._size += len(data)
        if self._size > self._limit:
            self._done.errback(FetchError(f"response is larger than {self._limit} bytes"))
            assert self.transport is not None
            self.transport.stopProducing()  # type: ignore[attr-defined]
            return
        self._chunks.append(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:  # noqa: N802
        if self._done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self._done.callback(b"".join(self._chunks))
        else:
            self._done.errback(FetchError(f"connection lost: {reason.getErrorMessage()}"))


class UrlFetcher:
    """GETs a URL for previews: IP-filtered connections, bounded redirects and size."""

    def __init__(self, reactor: Any, ip_filter: IPFilter, resolve: Resolve,
                 user_agent: str = "Axon URL preview") -> None:
        self._reactor = reactor
        self._filter = ip_filter
        self._resolve = resolve
        self._user_agent = user_agent
        self._agent = Agent.usingEndpointFactory(reactor, _EndpointFactory(self))

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of `host` we may connect to (FetchError(blocked) if none)."""
        try:
            ipaddress.ip_address(host.strip("[]"))
            candidates = [host.strip("[]")]
        except ValueError:
            try:
                candidates = await self._resolve(host, port)
            except OSError as e:
                raise FetchError(f"DNS resolution of {host} failed: {e}") from None
        allowed = self._filter.filter_allowed(candidates)
        if not allowed:
            raise FetchError(f"{host} resolves only to blocked addresses", blocked=True)
        return allowed

    async def connect(self, host: str, port: int, tls: bool, factory: IProtocolFactory
                      ) -> Any:
        errors = []
        for ip in await self.addresses(host, port):
            cls = TCP6ClientEndpoint if ":" in ip else TCP4ClientEndpoint
            endpoint: Any = cls(self._reactor, ip, port, timeout=15)
            if tls:
                from twisted.internet import ssl

                endpoint = wrapClientTLS(ssl.optionsForClientTLS(host), endpoint)
            try:
                return await endpoint.connect(factory)
            except Exception as e:  # noqa: BLE001 - try the next address
                errors.append(f"{ip}: {e}")
        raise ConnectError(string="; ".join(errors))

    async def get(self, url: str, max_size: int, accept_language: str,
                  check_url: Callable[[str], None], timeout: float = 30.0) -> FetchResult:
        """GET `url`, following up to MAX_REDIRECTS redirects (each checked by
        `check_url` and the IP filter).

        Raises:
            FetchError: unreachable, blocked, too many redirects or too large.
        """
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url)
            headers = Headers({b"User-Agent": [self._user_agent.encode()],
                               b"Accept-Language": [accept_language.encode()]})
            try:
                d = self._agent.request(b"GET", url.encode("ascii"), headers)
                d.addTimeout(timeout, self._reactor)
                response = await d
            except FetchError:
                raise
            except Exception as e:  # noqa: BLE001 - any transport failure is a fetch failure
                cause = e.reasons[0].value if hasattr(e, "reasons") and e.reasons else e
                if isinstance(cause, FetchError):
                    raise cause from None
                raise FetchError(f"cannot fetch {url}: {cause}") from None
            if response.code in (301, 302, 303, 307, 308):
                location = response.headers.getRawHeaders(b"location")
                response.deliverBody(protocol.Protocol())
                if not location:
                    raise FetchError("redirect without Location")
                url = urllib.parse.urljoin(url, location[0].decode("latin-1"))
                continue
            length = response.length
            if isinstance(length, int) and length > max_size:
                response.deliverBody(protocol.Protocol())
                raise FetchError(f"response of {length} bytes is too large")
            done: defer.Deferred[bytes] = defer.Deferred()
            response.deliverBody(_LimitedBody(max_size, done))
            done.addTimeout(timeout, self._reactor)
            try:
                body = await done
            except defer.TimeoutError:
                raise FetchError("timed out reading the response") from None
            hdrs = {k.decode("latin-1").lower(): v[-1].decode("latin-1")
                    for k, v in response.headers.getAllRawHeaders()}
            return FetchResult(url, response.code, hdrs, body)
        raise FetchError("too many redirects")


async def getaddrinfo_in_thread(run_in_thread: Callable[..., Awaitable[Any]], host: str,
                                port: int) -> list[str]:
    infos = await run_in_thread(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    def __init__(self, fetcher: UrlFetcher) -> None:
        self._fetcher = fetcher

    def endpointForURI(self, uri: Any) -> Any:  # noqa: N802 - Twisted API
        host = uri.host.decode("ascii")
        fetcher = self._fetcher
        tls = uri.scheme == b"https"

        @implementer(IStreamClientEndpoint)
        class _Endpoint:
            def connect(self, factory: IProtocolFactory) -> defer.Deferred[Any]:
                return defer.ensureDeferred(fetcher.connect(host, uri.port, tls, factory))

        return _Endpoint()
