"""`GET /_matrix/federation/v1/timestamp_to_event/{roomId}?ts=&dir=`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation.transport.server import FederationServlet, federation_patterns
from rest.http import HttpRequest, Router, parse_integer, parse_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class FederationTimestampToEventServlet(FederationServlet):
    PATTERNS = federation_patterns("/timestamp_to_event/(?P<room_id>[^/]+)")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_timestamp_lookup_handler()

    # GET /_matrix/federation/v1/timestamp_to_event/{roomId}
    async def on_GET_authed(self, request: HttpRequest, origin: str,
                            room_id: str) -> tuple[int, Any]:
        ts = parse_integer(request, "ts", required=True)
        direction = parse_string(request, "dir", required=True, allowed_values=("f", "b"))
        assert ts is not None and direction is not None
        found = await self._handler.get_closest_event_for_server(origin, room_id, ts,
                                                                 direction)
        return 200, {"event_id": found.event_id, "origin_server_ts": found.origin_server_ts}


def register_servlets(hs: HomeServer, router: Router) -> None:
    FederationTimestampToEventServlet(hs).register(router)
