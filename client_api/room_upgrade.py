"""Room upgrades: `POST /rooms/{roomId}/upgrade`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.room_upgrade import RoomUpgradeHandler
from rest.http import HttpRequest, RequestBody, RestServlet, Router, client_patterns, parse_body

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class UpgradeBody(RequestBody):
    new_version: str
    additional_creators: list[str] | None = None


class RoomUpgradeServlet(RestServlet):
    PATTERNS = client_patterns("/rooms/(?P<room_id>[^/]*)/upgrade")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        # No container getter exists for this handler yet; the servlet is built once.
        self._upgrades = RoomUpgradeHandler(hs)

    # POST /_matrix/client/v3/rooms/{roomId}/upgrade
    async def on_POST(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, UpgradeBody)
        new_room_id = await self._upgrades.upgrade_room(
            requester.user_id, room_id, body.new_version, body.additional_creators)
        return 200, {"replacement_room": new_room_id}


def register_servlets(hs: HomeServer, router: Router) -> None:
    RoomUpgradeServlet(hs).register(router)
