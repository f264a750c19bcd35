"""Federation queries: `GET /query/profile` and `GET /query/directory` (server-server API
"Querying for information"). Authenticated with X-Matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport.server import FederationServlet, federation_patterns
from rest.http import HttpRequest, Router, parse_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class ProfileQueryServlet(FederationServlet):
    PATTERNS = federation_patterns("/query/profile")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_federation_query_handler()

    # GET /_matrix/federation/v1/query/profile?user_id=&field=
    async def on_GET_authed(self, request: HttpRequest, origin: str) -> tuple[int, Any]:
        user_id = parse_string(request, "user_id", required=True)
        assert user_id is not None
        field = parse_string(request, "field")
        return 200, await self._handler.get_profile(user_id, field)


class DirectoryQueryServlet(FederationServlet):
    PATTERNS = federation_patterns("/query/directory")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_federation_query_handler()

    # GET /_matrix/federation/v1/query/directory?room_alias=
    async def on_GET_authed(self, request: HttpRequest, origin: str) -> tuple[int, Any]:
        alias = parse_string(request, "room_alias", required=True)
        assert alias is not None
        return 200, await self._handler.get_room_alias(alias)


def register_servlets(hs: HomeServer, router: Router) -> None:
    ProfileQueryServlet(hs).register(router)
    DirectoryQueryServlet(hs).register(router)
