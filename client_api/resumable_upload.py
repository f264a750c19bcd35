"""Resumable uploads over tus 1.0: `/_matrix/client/unstable/io.axon/upload/resumable`.

Described in docs/api/io.axon.yaml and docs/media-extras.md. Every request but OPTIONS
needs `Tus-Resumable: 1.0.0` (412 otherwise) and the access token.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import TYPE_CHECKING

from handlers.resumable_upload import (
    TUS_EXTENSIONS,
    TUS_VERSION,
    ResumableUploadState,
    expiry_header,
    parse_upload_metadata,
)
from homeserver.errors import BadRequestError, Codes, MatrixError
from rest.http import HttpRequest, HttpResponse, RestServlet, Router

if TYPE_CHECKING:
    from homeserver.server import HomeServer

PREFIX = "/_matrix/client/unstable/io.axon/upload/resumable"
#: the header carrying the `mxc://` URI of a completed upload
CONTENT_URI_HEADER = "Io-Axon-Content-Uri"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


def _response(code: int, headers: list[tuple[str, str]]) -> HttpResponse:
    return HttpResponse(code=code, body=b"", headers=[("Tus-Resumable", TUS_VERSION),
                                                      *headers],
                        content_type="text/plain")


def _check_version(request: HttpRequest) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise MatrixError(HTTPStatus.PRECONDITION_FAILED, Codes.UNKNOWN,
                          f"Tus-Resumable: {TUS_VERSION} is required")


def _header_int(request: HttpRequest, name: str) -> int:
    raw = request.headers.get(name.lower())
    if raw is None:
        raise BadRequestError(f"{name} is required", Codes.MISSING_PARAM)
    if not re.fullmatch(r"\d{1,18}", raw.strip()):
        raise BadRequestError(f"{name} must be a non-negative integer", Codes.INVALID_PARAM)
    return int(raw)


def _state_headers(state: ResumableUploadState) -> list[tuple[str, str]]:
    headers = [("Upload-Offset", str(state.offset)), ("Upload-Length", str(state.length))]
    if state.content_uri is not None:
        headers.append((CONTENT_URI_HEADER, state.content_uri))
    else:
        headers.append(("Upload-Expires", expiry_header(state.expires_ms)))
    return headers


class ResumableUploadCreateServlet(RestServlet):
    PATTERNS = (f"^{re.escape(PREFIX)}$",)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_resumable_upload_handler()

    # OPTIONS /_matrix/client/unstable/io.axon/upload/resumable
    async def on_OPTIONS(self, request: HttpRequest) -> HttpResponse:
        return _response(HTTPStatus.NO_CONTENT, [
            ("Tus-Version", TUS_VERSION), ("Tus-Extension", ",".join(TUS_EXTENSIONS)),
            ("Tus-Max-Size", str(self._handler.max_size)),
        ])

    # POST /_matrix/client/unstable/io.axon/upload/resumable
    async def on_POST(self, request: HttpRequest) -> HttpResponse:
        _check_version(request)
        requester = await self._auth.get_user_by_req(request)
        if "upload-defer-length" in request.headers:
            raise BadRequestError("Upload-Defer-Length is not supported", Codes.INVALID_PARAM)
        length = _header_int(request, "Upload-Length")
        metadata = parse_upload_metadata(request.headers.get("upload-metadata", ""))
        state = await self._handler.create(requester.user_id, length, metadata)
        return _response(HTTPStatus.CREATED, [("Location", f"{PREFIX}/{state.upload_id}"),
                                              *_state_headers(state)])


class ResumableUploadServlet(RestServlet):
    # Any segment routes here; an ID we never issued is simply unknown (404).
    PATTERNS = (f"^{re.escape(PREFIX)}/(?P<upload_id>[^/]+)$",)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_resumable_upload_handler()

    # OPTIONS /_matrix/client/unstable/io.axon/upload/resumable/{uploadId}
    async def on_OPTIONS(self, request: HttpRequest, upload_id: str) -> HttpResponse:
        return _response(HTTPStatus.NO_CONTENT, [
            ("Tus-Version", TUS_VERSION), ("Tus-Extension", ",".join(TUS_EXTENSIONS)),
            ("Tus-Max-Size", str(self._handler.max_size)),
        ])

    # HEAD /_matrix/client/unstable/io.axon/upload/resumable/{uploadId}
    async def on_HEAD(self, request: HttpRequest, upload_id: str) -> HttpResponse:
        _check_version(request)
        requester = await self._auth.get_user_by_req(request)
        state = await self._handler.status(requester.user_id, upload_id)
        return _response(HTTPStatus.OK, [("Cache-Control", "no-store"),
                                         *_state_headers(state)])

    # PATCH /_matrix/client/unstable/io.axon/upload/resumable/{uploadId}
    async def on_PATCH(self, request: HttpRequest, upload_id: str) -> HttpResponse:
        _check_version(request)
        requester = await self._auth.get_user_by_req(request)
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
        if content_type != OFFSET_CONTENT_TYPE:
            raise MatrixError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, Codes.INVALID_PARAM,
                              f"Content-Type must be {OFFSET_CONTENT_TYPE}")
        offset = _header_int(request, "Upload-Offset")
        state = await self._handler.append(requester.user_id, upload_id, offset,
                                           request.body_file())
        return _response(HTTPStatus.NO_CONTENT, _state_headers(state))

    # DELETE /_matrix/client/unstable/io.axon/upload/resumable/{uploadId}
    async def on_DELETE(self, request: HttpRequest, upload_id: str) -> HttpResponse:
        _check_version(request)
        requester = await self._auth.get_user_by_req(request)
        await self._handler.terminate(requester.user_id, upload_id)
        return _response(HTTPStatus.NO_CONTENT, [])


def register_servlets(hs: HomeServer, router: Router) -> None:
    ResumableUploadCreateServlet(hs).register(router)
    ResumableUploadServlet(hs).register(router)
