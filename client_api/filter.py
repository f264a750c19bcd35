"""Sync filters: `POST /user/{userId}/filter` and `GET /user/{userId}/filter/{filterId}`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from rest.http import HttpRequest, RestServlet, Router, client_patterns, parse_json_object

if TYPE_CHECKING:
    from homeserver.server import HomeServer

USER = "(?P<user_id>[^/]*)"


class CreateFilterServlet(RestServlet):
    PATTERNS = client_patterns(f"/user/{USER}/filter")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._filters = hs.get_filter_handler()

    # POST /_matrix/client/v3/user/{userId}/filter
    async def on_POST(self, request: HttpRequest, user_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        if requester.user_id != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Cannot create filters for other users")
        body = parse_json_object(request)
        return 200, {"filter_id": await self._filters.create_filter(user_id, body)}


class GetFilterServlet(RestServlet):
    PATTERNS = client_patterns(f"/user/{USER}/filter/(?P<filter_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._filters = hs.get_filter_handler()

    # GET /_matrix/client/v3/user/{userId}/filter/{filterId}
    async def on_GET(self, request: HttpRequest, user_id: str,
                     filter_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        if requester.user_id != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Cannot get filters for other users")
        return 200, await self._filters.get_filter_json(user_id, filter_id)


def register_servlets(hs: HomeServer, router: Router) -> None:
    CreateFilterServlet(hs).register(router)
    GetFilterServlet(hs).register(router)
