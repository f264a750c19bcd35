"""Room aliases (`/directory/room`, `/rooms/{roomId}/aliases`) and the published room
directory (`/publicRooms`, `/directory/list/room`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

from handlers.directory import PublicRoomsQuery
from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_body,
    parse_integer,
    parse_string,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

ALIAS = "(?P<alias>[^/]*)"
ROOM = "(?P<room_id>[^/]*)"


class AliasBody(RequestBody):
    room_id: str


class RoomAliasServlet(RestServlet):
    PATTERNS = client_patterns(f"/directory/room/{ALIAS}")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._directory = hs.get_directory_handler()

    # GET /_matrix/client/v3/directory/room/{roomAlias}
    async def on_GET(self, request: HttpRequest, alias: str) -> tuple[int, Any]:
        return 200, await self._directory.resolve_alias(alias)

    # PUT /_matrix/client/v3/directory/room/{roomAlias}
    async def on_PUT(self, request: HttpRequest, alias: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, AliasBody)
        await self._directory.create_alias(requester.user_id, alias, body.room_id)
        return 200, {}

    # DELETE /_matrix/client/v3/directory/room/{roomAlias}
    async def on_DELETE(self, request: HttpRequest, alias: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        await self._directory.delete_alias(requester.user_id, alias)
        return 200, {}


class RoomAliasListServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/aliases")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._directory = hs.get_directory_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/aliases
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        aliases = await self._directory.get_local_aliases(requester.user_id, room_id)
        return 200, {"aliases": aliases}


class VisibilityBody(RequestBody):
    visibility: str = "public"


class RoomVisibilityServlet(RestServlet):
    PATTERNS = client_patterns(f"/directory/list/room/{ROOM}")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._directory = hs.get_directory_handler()

    # GET /_matrix/client/v3/directory/list/room/{roomId}
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        return 200, {"visibility": await self._directory.get_room_visibility(room_id)}

    # PUT /_matrix/client/v3/directory/list/room/{roomId}
    async def on_PUT(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, VisibilityBody)
        await self._directory.set_room_visibility(requester.user_id, room_id,
                                                  body.visibility)
        return 200, {}


class PublicRoomsFilter(RequestBody):
    generic_search_term: str | None = None
    room_types: list[str | None] | None = None


class PublicRoomsBody(RequestBody):
    limit: int | None = pydantic.Field(default=None, ge=0)
    since: str | None = None
    filter: PublicRoomsFilter | None = None
    include_all_networks: bool = False
    third_party_instance_id: str | None = None


class PublicRoomsServlet(RestServlet):
    PATTERNS = client_patterns("/publicRooms")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._directory = hs.get_directory_handler()

    # GET /_matrix/client/v3/publicRooms
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        # The spec lets this be public; like Synapse's default we require a token.
        await self._auth.get_user_by_req(request, allow_guest=True)
        query = PublicRoomsQuery(
            limit=parse_integer(request, "limit", minimum=0),
            since=parse_string(request, "since"),
            server=parse_string(request, "server"),
        )
        return 200, await self._directory.get_public_rooms(query)

    # POST /_matrix/client/v3/publicRooms
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        await self._auth.get_user_by_req(request, allow_guest=True)
        body = parse_body(request, PublicRoomsBody)
        search = body.filter.generic_search_term if body.filter is not None else None
        types = body.filter.room_types if body.filter is not None else None
        query = PublicRoomsQuery(
            limit=body.limit, since=body.since, server=parse_string(request, "server"),
            search_term=search, room_types=tuple(types) if types is not None else None,
            include_all_networks=body.include_all_networks,
            third_party_instance_id=body.third_party_instance_id,
        )
        return 200, await self._directory.get_public_rooms(query)


def register_servlets(hs: HomeServer, router: Router) -> None:
    RoomAliasServlet(hs).register(router)
    RoomAliasListServlet(hs).register(router)
    RoomVisibilityServlet(hs).register(router)
    PublicRoomsServlet(hs).register(router)
