"""`GET /_matrix/client/v1/rooms/{roomId}/hierarchy`: the rooms below a space."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import (
    HttpRequest,
    RestServlet,
    Router,
    client_patterns,
    parse_boolean,
    parse_integer,
    parse_string,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class RoomHierarchyServlet(RestServlet):
    PATTERNS = client_patterns("/rooms/(?P<room_id>[^/]*)/hierarchy", releases=(),
                               v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_space_hierarchy_handler()

    # GET /_matrix/client/v1/rooms/{roomId}/hierarchy
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, await self._handler.get_room_hierarchy(
            requester.user_id, room_id,
            suggested_only=bool(parse_boolean(request, "suggested_only", default=False)),
            max_depth=parse_integer(request, "max_depth"),
            limit=parse_integer(request, "limit"),
            from_token=parse_string(request, "from"))


def register_servlets(hs: HomeServer, router: Router) -> None:
    RoomHierarchyServlet(hs).register(router)
