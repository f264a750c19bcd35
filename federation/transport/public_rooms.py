"""`GET/POST /_matrix/federation/v1/publicRooms`: our room directory for other servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.directory import PublicRoomsBody
from federation.transport.server import FederationServlet, federation_patterns
from handlers.directory import PublicRoomsQuery
from rest.http import HttpRequest, Router, parse_body, parse_boolean, parse_integer, parse_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class FederationPublicRoomsServlet(FederationServlet):
    PATTERNS = federation_patterns("/publicRooms")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._directory = hs.get_directory_handler()

    async def on_GET_authed(self, request: HttpRequest, origin: str) -> tuple[int, Any]:
        query = PublicRoomsQuery(
            limit=parse_integer(request, "limit", minimum=0),
            since=parse_string(request, "since"),
            include_all_networks=bool(parse_boolean(request, "include_all_networks",
                                                    default=False)),
            third_party_instance_id=parse_string(request, "third_party_instance_id"),
        )
        return 200, await self._directory.get_public_rooms(query)

    async def on_POST_authed(self, request: HttpRequest, origin: str) -> tuple[int, Any]:
        body = parse_body(request, PublicRoomsBody)
        search = body.filter.generic_search_term if body.filter is not None else None
        types = body.filter.room_types if body.filter is not None else None
        query = PublicRoomsQuery(
            limit=body.limit, since=body.since, search_term=search,
            room_types=tuple(types) if types is not None else None,
            include_all_networks=body.include_all_networks,
            third_party_instance_id=body.third_party_instance_id,
        )
        return 200, await self._directory.get_public_rooms(query)


def register_servlets(hs: HomeServer, router: Router) -> None:
    FederationPublicRoomsServlet(hs).register(router)
