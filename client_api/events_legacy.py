"""The deprecated r0 event-stream endpoints: `GET /events`, `GET /initialSync` and
`GET /rooms/{roomId}/initialSync` (see `handlers/legacy_sync.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from homeserver.stream_token import StreamToken
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

#: the longest long-poll (Synapse caps /events similarly)
MAX_TIMEOUT_MS = 60_000
DEFAULT_TIMEOUT_MS = 30_000


class EventStreamServlet(RestServlet):
    PATTERNS = client_patterns("/events")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_legacy_sync_handler()

    # GET /_matrix/client/v3/events
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True)
        raw = parse_string(request, "from")
        from_token = None
        if raw is not None:
            try:
                from_token = StreamToken.parse(raw)
            except ValueError:
                raise MatrixError(400, Codes.INVALID_PARAM, "Invalid 'from' token") from None
        timeout = parse_integer(request, "timeout", default=DEFAULT_TIMEOUT_MS, minimum=0)
        assert timeout is not None
        result = await self._handler.get_events(requester.user_id, from_token,
                                                min(timeout, MAX_TIMEOUT_MS))
        return 200, {"chunk": result.chunk, "start": result.start, "end": result.end}


class InitialSyncServlet(RestServlet):
    PATTERNS = client_patterns("/initialSync")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_legacy_sync_handler()

    # GET /_matrix/client/v3/initialSync
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, await self._handler.initial_sync(
            requester.user_id, parse_integer(request, "limit"),
            bool(parse_boolean(request, "archived", default=False)))


class RoomInitialSyncServlet(RestServlet):
    PATTERNS = client_patterns("/rooms/(?P<room_id>[^/]*)/initialSync")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_legacy_sync_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/initialSync
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True)
        return 200, await self._handler.room_initial_sync(requester.user_id, room_id)


def register_servlets(hs: HomeServer, router: Router) -> None:
    EventStreamServlet(hs).register(router)
    InitialSyncServlet(hs).register(router)
    RoomInitialSyncServlet(hs).register(router)
