"""`GET /_matrix/client/v1/media/preview_url` (off unless `url_preview_enabled`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import HttpRequest, RestServlet, Router, parse_integer, parse_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class PreviewUrlServlet(RestServlet):
    # the deprecated /_matrix/media/ path still needs a token, as in Synapse
    PATTERNS = ("^/_matrix/client/v1/media/preview_url$",
                "^/_matrix/media/(?:r0|v3|v1)/preview_url$")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_url_preview_handler()

    # GET /_matrix/client/v1/media/preview_url (and /_matrix/media/v3/preview_url)
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        url = parse_string(request, "url", required=True)
        assert url is not None
        # `ts` only asks for a preview no older than it; any cached one is as good.
        parse_integer(request, "ts", minimum=0)
        return 200, await self._handler.preview(requester.user_id, url)


def register_servlets(hs: HomeServer, router: Router) -> None:
    PreviewUrlServlet(hs).register(router)
