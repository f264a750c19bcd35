"""Thumbnails: `GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}`, the
deprecated unauthenticated `/_matrix/media/v3/thumbnail/...`, and the federation
`GET /_matrix/federation/v1/media/thumbnail/{mediaId}` (multipart/mixed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from federation.transport.server import FederationServlet, federation_patterns
from homeserver.errors import BadRequestError, Codes
from rest.http import (
    HttpRequest,
    HttpResponse,
    RestServlet,
    Router,
    parse_boolean,
    parse_integer,
    parse_string,
)
from rest.media.responses import media_response, multipart_response
from rest.media.servlets import client_media_patterns, media_patterns

if TYPE_CHECKING:
    from homeserver.server import HomeServer

_PATH = "/thumbnail/(?P<server_name>[^/]+)/(?P<media_id>[^/]+)"


def _size_and_method(request: HttpRequest) -> tuple[int, int, str, bool]:
    width = parse_integer(request, "width", required=True, minimum=1)
    height = parse_integer(request, "height", required=True, minimum=1)
    method = parse_string(request, "method", default="scale")
    if method not in ("crop", "scale"):
        raise BadRequestError("method must be 'crop' or 'scale'", Codes.INVALID_PARAM)
    animated = parse_boolean(request, "animated", default=False)
    assert width is not None and height is not None
    return width, height, method, bool(animated)


class _ThumbnailBase(RestServlet):
    AUTHENTICATED = True

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_thumbnail_handler()

    async def on_GET(self, request: HttpRequest, server_name: str,
                     media_id: str) -> HttpResponse:
        if self.AUTHENTICATED:
            await self._auth.get_user_by_req(request)
        width, height, method, animated = _size_and_method(request)
        allow_remote = parse_boolean(request, "allow_remote", default=True)
        timeout_ms = parse_integer(request, "timeout_ms", minimum=0)
        thumb = await self._handler.get_thumbnail(
            server_name, media_id, width, height, method, animated,
            authenticated=self.AUTHENTICATED, allow_remote=bool(allow_remote),
            timeout_ms=timeout_ms)
        return media_response(request, thumb.content_type, thumb.length, thumb.path, None)


class ThumbnailServlet(_ThumbnailBase):
    PATTERNS = client_media_patterns(_PATH)
    # GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}


class LegacyThumbnailServlet(_ThumbnailBase):
    """Deprecated (spec v1.11); `enable_authenticated_media` limits what it serves."""

    AUTHENTICATED = False
    PATTERNS = media_patterns(_PATH, versions=("r0", "v3", "v1"))
    # GET /_matrix/media/v3/thumbnail/{serverName}/{mediaId}


class FederationThumbnailServlet(FederationServlet):
    PATTERNS = federation_patterns("/media/thumbnail/(?P<media_id>[^/]+)")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_thumbnail_handler()
        self._server_name = hs.hostname

    # GET /_matrix/federation/v1/media/thumbnail/{mediaId}
    async def on_GET_authed(self, request: HttpRequest, origin: str,
                            media_id: str) -> HttpResponse:
        width, height, method, animated = _size_and_method(request)
        thumb = await self._handler.get_thumbnail(
            self._server_name, media_id, width, height, method, animated,
            authenticated=True, allow_remote=False)
        return multipart_response({}, thumb.content_type, thumb.length, thumb.path, None)


def register_servlets(hs: HomeServer, router: Router) -> None:
    ThumbnailServlet(hs).register(router)
    LegacyThumbnailServlet(hs).register(router)
    FederationThumbnailServlet(hs).register(router)
