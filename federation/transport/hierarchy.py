"""`GET /_matrix/federation/v1/hierarchy/{roomId}`: a space and its direct children, for
another server walking the space tree for its users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport.server import FederationServlet, federation_patterns
from rest.http import HttpRequest, Router, parse_boolean

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class FederationHierarchyServlet(FederationServlet):
    PATTERNS = federation_patterns("/hierarchy/(?P<room_id>[^/]+)")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_space_hierarchy_handler()

    # GET /_matrix/federation/v1/hierarchy/{roomId}?suggested_only=
    async def on_GET_authed(self, request: HttpRequest, origin: str,
                            room_id: str) -> tuple[int, Any]:
        suggested_only = parse_boolean(request, "suggested_only", default=False)
        return 200, await self._handler.get_federation_hierarchy(
            origin, room_id, bool(suggested_only))


def register_servlets(hs: HomeServer, router: Router) -> None:
    FederationHierarchyServlet(hs).register(router)
