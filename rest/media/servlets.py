"""The media repository's client endpoints: uploads (`/_matrix/media/v3/upload`, async
`/v1/create` + `PUT`), downloads (authenticated `/_matrix/client/v1/media/download` and
the deprecated `/_matrix/media/v3/download`) and `config`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from homeserver.errors import BadRequestError, NotFoundError
from rest.http import (
    HttpRequest,
    HttpResponse,
    RestServlet,
    Router,
    parse_boolean,
    parse_integer,
    parse_string,
)
from rest.media.responses import media_response

if TYPE_CHECKING:
    from handlers.media.repository import MediaFile
    from homeserver.server import HomeServer

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SERVER = r"(?P<server_name>[^/]*)"
_MEDIA = r"(?P<media_id>[^/]*)"


def media_patterns(path_regex: str, versions: tuple[str, ...] = ("r0", "v3", "v1")
                   ) -> tuple[str, ...]:
    return (f"^/_matrix/media/(?:{'|'.join(versions)}){path_regex}$",)


def client_media_patterns(path_regex: str) -> tuple[str, ...]:
    return (f"^/_matrix/client/v1/media{path_regex}$",)


def _upload_metadata(request: HttpRequest) -> tuple[str, str | None, int | None]:
    """Content type (default `application/octet-stream`, as Synapse), file name and the
    declared length of an upload."""
    media_type = request.headers.get("content-type", "").strip() or "application/octet-stream"
    if _CONTROL_RE.search(media_type) or "/" not in media_type:
        raise BadRequestError("Invalid Content-Type")
    upload_name = parse_string(request, "filename") or None
    if upload_name is not None and _CONTROL_RE.search(upload_name):
        raise BadRequestError("Invalid filename")
    raw_length = request.headers.get("content-length")
    length = None
    if raw_length is not None:
        if not raw_length.strip().isdigit():
            raise BadRequestError("Content-Length value is invalid")
        length = int(raw_length)
    return media_type, upload_name, length


def _download(request: HttpRequest, media: MediaFile, file_name: str | None) -> HttpResponse:
    return media_response(request, media.media_type, media.media_length, media.path,
                          file_name or media.upload_name)


class UploadServlet(RestServlet):
    PATTERNS = media_patterns("/upload")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._repo = hs.get_media_repository()

    # POST /_matrix/media/v3/upload
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        media_type, upload_name, length = _upload_metadata(request)
        uri = await self._repo.upload(requester.user_id, media_type, upload_name,
                                      request.body_file(), length)
        return 200, {"content_uri": uri}


class CreateServlet(RestServlet):
    PATTERNS = media_patterns("/create", versions=("v1",))

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._repo = hs.get_media_repository()

    # POST /_matrix/media/v1/create
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        created = await self._repo.create_media_id(requester.user_id)
        return 200, {"content_uri": created.content_uri,
                     "unused_expires_at": created.unused_expires_at}


class AsyncUploadServlet(RestServlet):
    PATTERNS = media_patterns(f"/upload/{_SERVER}/{_MEDIA}", versions=("v3",))

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._repo = hs.get_media_repository()

    # PUT /_matrix/media/v3/upload/{serverName}/{mediaId}
    async def on_PUT(self, request: HttpRequest, server_name: str,
                     media_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        media_type, upload_name, length = _upload_metadata(request)
        await self._repo.upload_pending(requester.user_id, server_name, media_id, media_type,
                                        upload_name, request.body_file(), length)
        return 200, {}


class ConfigServlet(RestServlet):
    PATTERNS = media_patterns("/config", versions=("r0", "v3")) + client_media_patterns(
        "/config")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._repo = hs.get_media_repository()

    # GET /_matrix/client/v1/media/config (and the deprecated /_matrix/media/v3/config)
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        await self._auth.get_user_by_req(request)
        return 200, {"m.upload.size": self._repo.max_upload_size}


class _DownloadBase(RestServlet):
    AUTHENTICATED = True

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._repo = hs.get_media_repository()

    async def on_GET(self, request: HttpRequest, server_name: str, media_id: str,
                     file_name: str | None = None) -> HttpResponse:
        if self.AUTHENTICATED:
            await self._auth.get_user_by_req(request)
        allow_remote = parse_boolean(request, "allow_remote", default=True)
        timeout_ms = parse_integer(request, "timeout_ms", minimum=0)
        if file_name is not None and _CONTROL_RE.search(file_name):
            raise NotFoundError("Unknown media")
        file_name = file_name or None
        media = await self._repo.get_media(
            server_name, media_id, authenticated=self.AUTHENTICATED,
            allow_remote=bool(allow_remote), timeout_ms=timeout_ms)
        return _download(request, media, file_name)


class DownloadServlet(_DownloadBase):
    PATTERNS = client_media_patterns(f"/download/{_SERVER}/{_MEDIA}(?:/(?P<file_name>[^/]*))?")
    # GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]


class LegacyDownloadServlet(_DownloadBase):
    """Deprecated (spec v1.11) but still used by old clients and servers."""

    AUTHENTICATED = False
    PATTERNS = media_patterns(f"/download/{_SERVER}/{_MEDIA}(?:/(?P<file_name>[^/]*))?",
                              versions=("r0", "v3", "v1"))
    # GET /_matrix/media/v3/download/{serverName}/{mediaId}[/{fileName}]


def register_servlets(hs: HomeServer, router: Router) -> None:
    UploadServlet(hs).register(router)
    CreateServlet(hs).register(router)
    AsyncUploadServlet(hs).register(router)
    ConfigServlet(hs).register(router)
    DownloadServlet(hs).register(router)
    LegacyDownloadServlet(hs).register(router)
