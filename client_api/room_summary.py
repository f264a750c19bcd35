"""`GET /_matrix/client/v1/room_summary/{roomIdOrAlias}` (and MSC3266's unstable path,
which Element Call used before v1.15). A token is optional: without one, only rooms
anyone may peek at are summarised."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.auth import get_access_token_from_request
from rest.http import HttpRequest, RestServlet, Router, client_patterns

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class RoomSummaryServlet(RestServlet):
    PATTERNS = (
        *client_patterns("/room_summary/(?P<room>[^/]*)", releases=(), v1=True),
        "^/_matrix/client/unstable/im.nheko.summary/summary/(?P<room>[^/]*)$",
    )

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_room_summary_handler()

    # GET /_matrix/client/v1/room_summary/{roomIdOrAlias}
    async def on_GET(self, request: HttpRequest, room: str) -> tuple[int, Any]:
        user_id = None
        if get_access_token_from_request(request) is not None:
            user_id = (await self._auth.get_user_by_req(request, allow_guest=True)).user_id
        via = request.query.get("via", [])
        return 200, await self._handler.get_room_summary(user_id, room, via)


def register_servlets(hs: HomeServer, router: Router) -> None:
    RoomSummaryServlet(hs).register(router)
