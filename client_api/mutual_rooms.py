"""`GET /_matrix/client/v1/mutual_rooms?user_id=`: rooms shared with another user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import HttpRequest, RestServlet, Router, client_patterns, parse_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class MutualRoomsServlet(RestServlet):
    PATTERNS = client_patterns("/mutual_rooms", releases=(), v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_mutual_rooms_handler()

    # GET /_matrix/client/v1/mutual_rooms
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        other = parse_string(request, "user_id", required=True)
        assert other is not None
        result = await self._handler.get_mutual_rooms(
            requester.user_id, other, parse_string(request, "from"))
        body: dict[str, Any] = {"joined": result.joined, "count": result.count}
        if result.next_batch is not None:
            body["next_batch"] = result.next_batch
        return 200, body


def register_servlets(hs: HomeServer, router: Router) -> None:
    MutualRoomsServlet(hs).register(router)
