"""Room history: `GET /rooms/{roomId}/messages` and `GET /rooms/{roomId}/context/{eventId}`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.filtering import parse_room_event_filter_param
from handlers.pagination import DEFAULT_LIMIT, MAX_LIMIT
from homeserver.errors import Codes, MatrixError
from homeserver.stream_token import PaginationToken, parse_pagination_token
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

ROOM = "(?P<room_id>[^/]*)"


def _parse_token(request: HttpRequest, name: str) -> PaginationToken | None:
    text = parse_string(request, name)
    if text is None:
        return None
    try:
        return parse_pagination_token(text)
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid token in '{name}'") from None


def _parse_limit(request: HttpRequest) -> int:
    # Over the maximum is clamped, not refused (as Synapse); negative is refused.
    limit = parse_integer(request, "limit", default=DEFAULT_LIMIT, minimum=0)
    return min(limit if limit is not None else DEFAULT_LIMIT, MAX_LIMIT)


class RoomMessagesServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/messages")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._pagination = hs.get_pagination_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/messages
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        from_token = _parse_token(request, "from")
        to_token = _parse_token(request, "to")
        # The spec requires `dir`; a missing one means backwards, as Synapse.
        direction = parse_string(request, "dir", default="b", allowed_values=("b", "f"))
        limit = _parse_limit(request)
        event_filter = parse_room_event_filter_param(parse_string(request, "filter"))
        return 200, await self._pagination.get_messages(
            requester.user_id, requester.device_id, room_id, from_token, to_token,
            direction or "b", limit, event_filter)


class RoomContextServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/context/(?P<event_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._pagination = hs.get_pagination_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}
    async def on_GET(self, request: HttpRequest, room_id: str,
                     event_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        limit = _parse_limit(request)
        event_filter = parse_room_event_filter_param(parse_string(request, "filter"))
        return 200, await self._pagination.get_event_context(
            requester.user_id, requester.device_id, room_id, event_id, limit, event_filter)


def register_servlets(hs: HomeServer, router: Router) -> None:
    RoomMessagesServlet(hs).register(router)
    RoomContextServlet(hs).register(router)
