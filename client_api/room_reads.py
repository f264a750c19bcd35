"""Room reads: one event by ID, the room state, one state entry.

The PUT servlet for `/state/{eventType}/{stateKey}` lives in `client_api/room.py`; the
router tries every servlet whose pattern matches, so these GET-only servlets sit beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import HttpRequest, RestServlet, Router, client_patterns, parse_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer

ROOM = "(?P<room_id>[^/]*)"


class RoomEventServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/event/(?P<event_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._reads = hs.get_room_read_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}
    async def on_GET(self, request: HttpRequest, room_id: str,
                     event_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, await self._reads.get_event(requester.user_id, room_id, event_id)


class RoomStateServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/state/?")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._reads = hs.get_room_read_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/state
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, await self._reads.get_state(requester.user_id, room_id)


class RoomStateEventServlet(RestServlet):
    # The state key is optional: `/state/{eventType}` is the legacy form for "".
    PATTERNS = client_patterns(
        f"/rooms/{ROOM}/state/(?P<event_type>[^/]+)(?:/(?P<state_key>[^/]*))?")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._reads = hs.get_room_read_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
    async def on_GET(self, request: HttpRequest, room_id: str, event_type: str,
                     state_key: str = "") -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        fmt = parse_string(request, "format", default="content",
                           allowed_values=("content", "event"))
        return 200, await self._reads.get_state_event(
            requester.user_id, room_id, event_type, state_key, as_event=fmt == "event")


def register_servlets(hs: HomeServer, router: Router) -> None:
    RoomEventServlet(hs).register(router)
    RoomStateServlet(hs).register(router)
    RoomStateEventServlet(hs).register(router)
