"""A small HTTP/1.1 client on asyncio streams, with keep-alive connections.

Just enough HTTP for a JSON API under load: one request at a time per connection,
`Content-Length` or chunked response bodies, `Connection: close` honoured, and one retry on a
fresh connection when a reused keep-alive connection turns out to be closed by the server.
The standard library's `http.client` is blocking and `aiohttp` is not a dependency.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

_MAX_HEADER_LINES = 200


class HttpError(Exception):
    """The server broke the protocol or closed the connection mid-response."""


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Connection:
    """One TCP (or TLS) connection that serves requests one after another."""

    def __init__(self, host: str, port: int, tls: bool, host_header: str) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self._host_header = host_header
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.requests_served = 0

    async def _connect(self) -> None:
        context = ssl.create_default_context() if self._tls else None
        self._reader, self._writer = await asyncio.open_connection(
            self._host, self._port, ssl=context, limit=2**22
        )
        self.requests_served = 0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        """Send one request; reconnects once if a reused connection was closed under us."""
        reused = self._writer is not None and self.requests_served > 0
        try:
            return await self._request_once(method, path, body, headers)
        except (HttpError, ConnectionError, asyncio.IncompleteReadError) as e:
            self.close()
            # Only a reused connection that failed before any response byte is retried:
            # the server closed it while idle, so the request never reached a handler.
            if not reused or getattr(e, "partial_response", False):
                raise
            return await self._request_once(method, path, body, headers)

    async def _request_once(self, method: str, path: str, body: bytes | None,
                            headers: dict[str, str] | None) -> Response:
        if self._writer is None:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host_header}"]
        if headers:
            lines.extend(f"{k}: {v}" for k, v in headers.items())
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._writer.write(head + body if body else head)
        await self._writer.drain()

        status_line = await self._reader.readline()
        if not status_line:
            raise HttpError("connection closed before the response")
        try:
            _version, code, *_ = status_line.decode("latin-1").split(" ", 2)
            status = int(code)
        except ValueError as e:
            raise _partial(HttpError(f"bad status line {status_line!r}")) from e
        resp_headers: dict[str, str] = {}
        for _ in range(_MAX_HEADER_LINES):
            line = await self._reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise _partial(HttpError("connection closed inside the headers"))
            name, _, value = line.decode("latin-1").partition(":")
            resp_headers[name.strip().lower()] = value.strip()
        else:
            raise _partial(HttpError("too many header lines"))

        try:
            payload = await self._read_body(method, status, resp_headers)
        except asyncio.IncompleteReadError as e:
            raise _partial(HttpError("connection closed inside the body")) from e
        self.requests_served += 1
        if resp_headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, resp_headers, payload)

    async def _read_body(self, method: str, status: int, headers: dict[str, str]) -> bytes:
        assert self._reader is not None
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size_line = await self._reader.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers (normally none) end with an empty line.
                    while (await self._reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
        if "content-length" in headers:
            return await self._reader.readexactly(int(headers["content-length"]))
        # Neither: the body runs to the end of the connection.
        data = await self._reader.read()
        self.close()
        return data


def _partial(e: HttpError) -> HttpError:
    e.partial_response = True  # type: ignore[attr-defined]
    return e


class HttpPool:
    """Keep-alive connections to one base URL, at most `size` of them at once."""

    def __init__(self, base_url: str, size: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must be http(s)://host[:port], not {base_url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._host_header = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._all: list[Connection] = []

    def new_connection(self) -> Connection:
        """A dedicated connection (a measured worker keeps its own for the whole phase)."""
        conn = Connection(self._host, self._port, self._tls, self._host_header)
        self._all.append(conn)
        return conn

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None,
                      conn: Connection | None = None) -> Response:
        """Send on `conn`, or on an idle pooled connection (opening one if none is idle)."""
        if conn is not None:
            return await conn.request(method, self._prefix + path, body, headers)
        async with self._slots:
            pooled = self._idle.pop() if self._idle else self.new_connection()
            try:
                resp = await pooled.request(method, self._prefix + path, body, headers)
            except BaseException:
                pooled.close()
                raise
            self._idle.append(pooled)
            return resp

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()
