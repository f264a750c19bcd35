"""`GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event?ts=&dir=`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import (
    HttpRequest,
    RestServlet,
    Router,
    client_patterns,
    parse_integer,
    parse_string,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class TimestampToEventServlet(RestServlet):
    PATTERNS = client_patterns("/rooms/(?P<room_id>[^/]*)/timestamp_to_event", releases=(),
                               v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_timestamp_lookup_handler()

    # GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        ts = parse_integer(request, "ts", required=True)
        direction = parse_string(request, "dir", required=True, allowed_values=("f", "b"))
        assert ts is not None and direction is not None
        found = await self._handler.get_closest_event(requester.user_id, room_id, ts,
                                                      direction)
        return 200, {"event_id": found.event_id, "origin_server_ts": found.origin_server_ts}


def register_servlets(hs: HomeServer, router: Router) -> None:
    TimestampToEventServlet(hs).register(router)
