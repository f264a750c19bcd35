"""`GET /_matrix/federation/v1/media/download/{mediaId}`: local media for other servers,
as `multipart/mixed` (server-server API, "Content Repository")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from federation.transport.server import FederationServlet, federation_patterns
from rest.http import HttpRequest, HttpResponse, Router
from rest.media.responses import multipart_response

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class FederationDownloadServlet(FederationServlet):
    PATTERNS = federation_patterns("/media/download/(?P<media_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._repo = hs.get_media_repository()

    # GET /_matrix/federation/v1/media/download/{mediaId}
    async def on_GET_authed(self, request: HttpRequest, origin: str,
                            media_id: str) -> HttpResponse:
        media = await self._repo.get_local_media_for_federation(media_id)
        return multipart_response({}, media.media_type, media.media_length, media.path,
                                  media.upload_name)


def register_servlets(hs: HomeServer, router: Router) -> None:
    FederationDownloadServlet(hs).register(router)
