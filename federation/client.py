"""Outbound federation HTTP: signed requests to other homeservers.

Each request resolves the destination server name as the spec says (`discovery.py`),
looks up the addresses of the chosen host, drops those the IP filter forbids (SSRF
protection: private and loopback ranges unless allowed), connects with TLS (certificates
checked unless `federation_verify_certificates: false`), and signs the request with our
server key (`Authorization: X-Matrix`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import urllib.parse
from typing import IO, TYPE_CHECKING, Any

import attrs
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from federation.auth import sign_request
from federation.discovery import ServerDiscovery, ServerTarget, treq_well_known_fetcher
from federation.ip_filter import IPFilter
from homeserver.json_decode import JsonDecodeError, decode_json

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: the largest response body we read from another server
MAX_RESPONSE_SIZE = 50 * 1024 * 1024
SCHEME = b"matrix-federation"


class FederationRequestError(Exception):
    """A request to another server failed: no connection, or an error response."""

    def __init__(self, destination: str, message: str, code: int | None = None,
                 body: Any = None) -> None:
        super().__init__(f"{destination}: {message}")
        self.destination = destination
        self.code = code
        #: the decoded JSON error body, if the server sent one
        self.body = body

    @property
    def errcode(self) -> str | None:
        return self.body.get("errcode") if isinstance(self.body, dict) else None


@attrs.frozen(slots=True)
class FileDownload:
    """What `get_file` wrote: the status, the response headers (names lower-cased, last
    value) and the number of body bytes."""

    code: int
    headers: dict[str, str]
    length: int


class FederationClient:
    def __init__(self, hs: HomeServer) -> None:
        import treq

        self._hs = hs
        self._reactor = hs.get_reactor()
        self._server_name = hs.hostname
        config = hs.get_config()
        self._verify_tls = config.federation_verify_certificates
        self.ip_filter = IPFilter.from_config(config)
        pool = HTTPConnectionPool(self._reactor)
        pool.maxPersistentPerHost = 5
        pool.cachedConnectionTimeout = 120
        self._agent = Agent.usingEndpointFactory(
            self._reactor, _FederationEndpointFactory(self), pool=pool)
        self._treq = treq.client.HTTPClient(self._agent)
        # .well-known (and media redirects) over ordinary HTTPS, through the same IP filter.
        self._plain_treq = treq.client.HTTPClient(Agent.usingEndpointFactory(
            self._reactor, _WellKnownEndpointFactory(self), pool=pool))
        self.discovery = ServerDiscovery(
            hs.get_clock(), treq_well_known_fetcher(self._plain_treq))

    async def request(self, destination: str, method: str, path: str,
                      query: dict[str, Any] | None = None, content: Any = None,
                      timeout: float = 60.0, sign: bool = True) -> Any:
        """Send one request and return the decoded JSON answer.

        Raises:
            FederationRequestError: connection failure, timeout, a non-2xx answer (with its
                code and errcode) or a body that is not JSON.
        """
        if destination == self._server_name:
            raise FederationRequestError(destination, "refusing to federate with ourselves")
        uri = path
        if query:
            uri += "?" + urllib.parse.urlencode(query, doseq=True)
        headers: dict[bytes | str, list[bytes | str]] = {b"User-Agent": [b"Axon"]}
        body: bytes | None = None
        if content is not None:
            body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
            headers[b"Content-Type"] = [b"application/json"]
        if sign:
            header = sign_request(self._server_name, destination, method, uri, content,
                                  self._hs.get_signing_key())
            headers[b"Authorization"] = [header.encode("utf-8")]
        url = f"{SCHEME.decode()}://{destination}{uri}"
        try:
            response = await self._treq.request(method, url, headers=headers, data=body,
                                                timeout=timeout)
            raw = await _read_limited(response)
        except FederationRequestError:
            raise
        except Exception as e:  # noqa: BLE001 - connection, TLS, DNS and timeout errors
            raise FederationRequestError(destination, f"{method} {path} failed: {e}") from e
        try:
            decoded = decode_json(raw) if raw else {}
        except JsonDecodeError:
            decoded = None
        if not 200 <= response.code < 300:
            raise FederationRequestError(
                destination, f"{method} {path} answered {response.code}", response.code,
                decoded)
        if decoded is None:
            raise FederationRequestError(destination, f"{method} {path}: body is not JSON",
                                         response.code)
        return decoded

    async def get_file(self, destination: str, path: str, sink: IO[bytes], max_size: int,
                       query: dict[str, Any] | None = None, timeout: float = 60.0
                       ) -> FileDownload:
        """A signed GET whose body is written to `sink` as it arrives (media downloads),
        never held whole in memory.

        Raises:
            FederationRequestError: as `request`, and when the body passes `max_size`
                (code 413).
        """
        if destination == self._server_name:
            raise FederationRequestError(destination, "refusing to federate with ourselves")
        uri = path
        if query:
            uri += "?" + urllib.parse.urlencode(query, doseq=True)
        header = sign_request(self._server_name, destination, "GET", uri, None,
                              self._hs.get_signing_key())
        headers: dict[bytes | str, list[bytes | str]] = {
            b"User-Agent": [b"Axon"], b"Authorization": [header.encode("utf-8")]}
        return await self._download(self._treq, destination,
                                    f"{SCHEME.decode()}://{destination}{uri}", headers, sink,
                                    max_size, timeout)

    async def get_url_file(self, url: str, sink: IO[bytes], max_size: int,
                           timeout: float = 60.0) -> FileDownload:
        """A plain (unsigned) HTTP(S) GET into `sink`, through the IP filter: where a
        federation media answer redirects to (`Location`).

        Raises:
            FederationRequestError: as `get_file`.
        """
        host = urllib.parse.urlsplit(url).hostname or "?"
        return await self._download(self._plain_treq, host, url,
                                    {b"User-Agent": [b"Axon"]}, sink, max_size, timeout)

    async def _download(self, client: Any, destination: str, url: str,
                        headers: dict[bytes | str, list[bytes | str]], sink: IO[bytes],
                        max_size: int, timeout: float) -> FileDownload:
        import treq

        try:
            response = await client.request("GET", url, headers=headers, timeout=timeout)
            if not 200 <= response.code < 300:
                raw = await _read_limited(response)
                try:
                    decoded = decode_json(raw) if raw else None
                except JsonDecodeError:
                    decoded = None
                raise FederationRequestError(destination, f"GET answered {response.code}",
                                             response.code, decoded)
            if isinstance(response.length, int) and response.length > max_size:
                raise FederationRequestError(destination, "file is too large", 413)
            received = [0]

            def collect(data: bytes) -> None:
                received[0] += len(data)
                if received[0] > max_size:
                    raise FederationRequestError(destination, "file is too large", 413)
                sink.write(data)

            await treq.collect(response, collect)
        except FederationRequestError:
            raise
        except Exception as e:  # noqa: BLE001 - connection, TLS, DNS and timeout errors
            raise FederationRequestError(destination, f"GET {url} failed: {e}") from e
        return FileDownload(
            code=response.code, length=received[0],
            headers={k.decode("latin-1").lower(): v[-1].decode("latin-1")
                     for k, v in response.headers.getAllRawHeaders()})

    async def get_json(self, destination: str, path: str, query: dict[str, Any] | None = None,
                       timeout: float = 60.0) -> Any:
        return await self.request(destination, "GET", path, query=query, timeout=timeout)

    async def put_json(self, destination: str, path: str, content: Any,
                       timeout: float = 60.0) -> Any:
        return await self.request(destination, "PUT", path, content=content, timeout=timeout)

    async def post_json(self, destination: str, path: str, content: Any,
                        timeout: float = 60.0) -> Any:
        return await self.request(destination, "POST", path, content=content, timeout=timeout)

    # -- connecting --

    async def _addresses(self, host: str, port: int) -> list[str]:
        """The IP addresses of `host` that the IP filter allows."""
        try:
            ipaddress.ip_address(host)
            candidates = [host]
        except ValueError:
            infos = await self._hs.run_in_thread(
                socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
            candidates = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = self.ip_filter.filter_allowed(candidates)
        if candidates and not allowed:
            logger.warning("Refusing to connect to %s: %s is in ip_range_blacklist",
                           host, ", ".join(candidates))
        return allowed

    def tls_options(self, sni_host: str) -> Any:
        from twisted.internet import ssl

        if self._verify_tls:
            return ssl.optionsForClientTLS(sni_host)
        return ssl.CertificateOptions(verify=False)

    async def connect(self, targets: list[ServerTarget], factory: IProtocolFactory,
                      destination: str, tls: bool = True) -> Any:
        errors: list[str] = []
        for target in targets:
            for ip in await self._addresses(target.host, target.port):
                endpoint_cls = TCP6ClientEndpoint if ":" in ip else TCP4ClientEndpoint
                endpoint: Any = endpoint_cls(self._reactor, ip, target.port, timeout=15)
                if tls:
                    endpoint = wrapClientTLS(self.tls_options(target.tls_sni_host), endpoint)
                try:
                    return await endpoint.connect(factory)
                except Exception as e:  # noqa: BLE001 - try the next address
                    errors.append(f"{ip}:{target.port}: {e}")
        raise ConnectError(string=f"cannot connect to {destination}: "
                           + ("; ".join(errors) or "no allowed address"))


@implementer(IAgentEndpointFactory)
class _FederationEndpointFactory:
    def __init__(self, client: FederationClient) -> None:
        self._client = client

    def endpointForURI(self, uri: Any) -> Any:  # noqa: N802 - Twisted API
        destination = uri.host.decode("ascii")
        if uri.port and uri.port not in (80, 443):
            destination = f"{destination}:{uri.port}"
        return _FederationEndpoint(self._client, destination)


@implementer(IStreamClientEndpoint)
class _FederationEndpoint:
    def __init__(self, client: FederationClient, destination: str) -> None:
        self._client = client
        self._destination = destination

    def connect(self, factory: IProtocolFactory) -> defer.Deferred[Any]:
        async def _connect() -> Any:
            targets = await self._client.discovery.resolve_server_name(self._destination)
            return await self._client.connect(targets, factory, self._destination)

        return defer.ensureDeferred(_connect())


@implementer(IAgentEndpointFactory)
class _WellKnownEndpointFactory:
    """Plain HTTPS to a host name (for `/.well-known/matrix/server`), IP-filtered."""

    def __init__(self, client: FederationClient) -> None:
        self._client = client

    def endpointForURI(self, uri: Any) -> Any:  # noqa: N802 - Twisted API
        host = uri.host.decode("ascii")
        target = ServerTarget(host, uri.port or 443, host)
        client = self._client
        tls = uri.scheme == b"https"

        @implementer(IStreamClientEndpoint)
        class _Endpoint:
            def connect(self, factory: IProtocolFactory) -> defer.Deferred[Any]:
                return defer.ensureDeferred(client.connect([target], factory, host, tls))

        return _Endpoint()


async def _read_limited(response: Any) -> bytes:
    length = response.length
    if isinstance(length, int) and length > MAX_RESPONSE_SIZE:
        raise FederationRequestError("?", f"response of {length} bytes is too large")
    import treq

    raw: bytes = await treq.content(response)
    if len(raw) > MAX_RESPONSE_SIZE:
        raise FederationRequestError("?", "response is too large")
    return raw
