"""The Twisted edge: a `Site` whose requests have a body-size limit, and one leaf resource
that hands every request to the `Router`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any, cast

from twisted.internet import defer
from twisted.protocols.basic import FileSender
from twisted.web import resource, server

from homeserver.errors import Codes
from rest.http import (
    FileRange,
    HttpRequest,
    HttpResponse,
    Router,
    StreamedBody,
    json_response,
    request_id_var,
)

logger = logging.getLogger(__name__)

#: sent instead of Twisted's `TwistedWeb/<version>`: no version for scanners to match
SERVER_HEADER = b"Axon"
#: bodies on these paths (media uploads) are handed to servlets as Twisted's spool file
#: (on disk past 100 kB) instead of being read into memory
STREAMED_BODY_PREFIXES = ("/_matrix/media/",
                          # tus PATCH chunks (client_api/resumable_upload.py)
                          "/_matrix/client/unstable/io.axon/upload/resumable")


class LimitedRequest(server.Request):
    """A request that stops buffering its body once it passes its path's limit."""

    too_large = False
    _received = 0
    _limit = 0

    def gotLength(self, length: int | None) -> None:
        site: AxonSite = self.channel.site  # type: ignore[attr-defined]
        # The path is parsed only once the body is in; the channel holds the request
        # line's target until then (absent on other transports: the site's default).
        self._limit = site.body_limit(getattr(self.channel, "_path", b""))
        if length is not None and length > self._limit:
            self.too_large = True
        super().gotLength(length if not self.too_large else 0)

    def handleContentChunk(self, data: bytes) -> None:
        if self.too_large:
            return
        self._received += len(data)
        if self._received > self._limit:
            self.too_large = True
            content: Any = self.content  # Twisted's stubs say None; it is a BytesIO here
            content.seek(0)
            content.truncate()
            return
        super().handleContentChunk(data)

    def render(self, resrc: resource.IResource) -> None:
        # Twisted's process() has just set `Server: TwistedWeb/<version>`.
        self.setHeader(b"Server", SERVER_HEADER)
        super().render(resrc)


class AxonSite(server.Site):
    """A site whose request bodies are limited: `max_request_body_size`, or the limit of
    the first `body_limits` prefix the path starts with."""

    requestFactory = LimitedRequest

    def __init__(self, root: resource.Resource, max_request_body_size: int,
                 body_limits: Sequence[tuple[str, int]] = (), **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.max_request_body_size = max_request_body_size
        self._body_limits = tuple((prefix.encode("ascii"), limit)
                                  for prefix, limit in body_limits)
        self.noisy = False

    def body_limit(self, target: bytes) -> int:
        """The body limit for a request target (path and query)."""
        for prefix, limit in self._body_limits:
            if target.startswith(prefix):
                return limit
        return self.max_request_body_size

    def log(self, request: Any) -> None:
        # Access logs go through our own logger in RouterResource, with the request ID.
        pass


class RouterResource(resource.Resource):
    isLeaf = True

    def __init__(self, router: Router, x_forwarded: bool = False,
                 allowed_prefixes: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self._router = router
        self._x_forwarded = x_forwarded
        self._allowed_prefixes = allowed_prefixes

    def render(self, request: server.Request) -> Any:
        d = defer.ensureDeferred(self._render(request))
        d.addErrback(lambda f: logger.error("Failed to write response: %s", f.getErrorMessage()))
        return server.NOT_DONE_YET

    def _client_ip(self, request: server.Request) -> str:
        if self._x_forwarded:
            forwarded = request.getHeader(b"x-forwarded-for")
            if forwarded:
                return forwarded.decode("ascii", "replace").split(",")[0].strip()
        addr = request.getClientAddress()
        return str(getattr(addr, "host", "unknown"))

    async def _render(self, request: server.Request) -> None:
        path = request.path.decode("ascii", "replace")
        method = request.method.decode("ascii", "replace")
        request_id = f"{method}-{secrets.token_hex(4)}"
        request_id_var.set(request_id)
        response: HttpResponse
        if getattr(request, "too_large", False):
            response = json_response(413, {"errcode": Codes.TOO_LARGE,
                                           "error": "Request body too large"})
        elif self._allowed_prefixes is not None and not path.startswith(self._allowed_prefixes):
            response = json_response(404, {"errcode": Codes.UNRECOGNIZED,
                                           "error": "Unrecognized request"})
        else:
            query = {
                k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs]
                for k, vs in cast(dict[bytes, list[bytes]], request.args or {}).items()
            }
            headers = {
                k.decode("latin-1").lower(): v[-1].decode("latin-1")
                for k, v in request.requestHeaders.getAllRawHeaders()
            }
            content: Any = request.content  # Twisted's stubs say None; it is a file here
            content.seek(0)
            streamed = path.startswith(STREAMED_BODY_PREFIXES)
            body = b"" if streamed else content.read()
            http_request = HttpRequest(
                method=method, path=path, query=query, headers=headers, body=body,
                client_ip=self._client_ip(request), request_id=request_id,
                uri=request.uri.decode("ascii", "replace"),
                content=content if streamed else None,
            )
            response = await self._router.handle(http_request)
        logger.info("%s %s %s -> %d", request_id, method, path, response.code)
        if request._disconnected:  # type: ignore[attr-defined]
            return
        request.setResponseCode(response.code)
        request.setHeader(b"Content-Type", response.content_type.encode("ascii"))
        for name, value in response.headers:
            request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
        if response.stream is not None:
            await _write_stream(request, response.stream)
            return
        request.setHeader(b"Content-Length", str(len(response.body)).encode("ascii"))
        request.write(response.body)
        request.finish()


class _FileSlice:
    """A file object that ends after `length` bytes (for FileSender and ranges)."""

    def __init__(self, f: Any, length: int) -> None:
        self._f = f
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data: bytes = self._f.read(size)
        self._left -= len(data)
        return data


async def _write_stream(request: server.Request, body: StreamedBody) -> None:
    """Write a streamed body with flow control (FileSender pauses when the client is
    slow), then finish; a client that goes away just stops the transfer."""
    request.setHeader(b"Content-Length", str(body.length).encode("ascii"))
    if request.method == b"HEAD":
        request.finish()
        return
    try:
        for part in body.parts:
            if request._disconnected:  # type: ignore[attr-defined]
                return
            if isinstance(part, bytes):
                request.write(part)
                continue
            await _send_file(request, part)
    except Exception as e:  # noqa: BLE001 - the client went away mid-transfer
        logger.info("Streaming a response stopped: %s", e)
        if not request._disconnected:  # type: ignore[attr-defined]
            request.loseConnection()
        return
    if not request._disconnected:  # type: ignore[attr-defined]
        request.finish()


async def _send_file(request: server.Request, part: FileRange) -> None:
    with open(part.path, "rb") as f:
        f.seek(part.offset)
        await FileSender().beginFileTransfer(_FileSlice(f, part.length), request)
