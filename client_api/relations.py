"""Relations and threads: `GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]`
and `GET /rooms/{roomId}/threads`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.relations import DEFAULT_LIMIT, MAX_LIMIT
from homeserver.errors import BadRequestError, Codes
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

ROOM = "(?P<room_id>[^/]*)"


def _parse_token(request: HttpRequest, name: str) -> StreamToken | None:
    text = parse_string(request, name)
    if text is None:
        return None
    try:
        return StreamToken.parse(text)
    except ValueError:
        raise BadRequestError(f"Invalid token in '{name}'", Codes.INVALID_PARAM) from None


def _parse_limit(request: HttpRequest) -> int:
    # Over the maximum is clamped (the spec lets the server cap it); negative is refused.
    limit = parse_integer(request, "limit", default=DEFAULT_LIMIT, minimum=0)
    return min(limit if limit is not None else DEFAULT_LIMIT, MAX_LIMIT)


class RelationsServlet(RestServlet):
    PATTERNS = client_patterns(
        f"/rooms/{ROOM}/relations/(?P<event_id>[^/]*)"
        "(?:/(?P<rel_type>[^/]*)(?:/(?P<event_type>[^/]*))?)?", releases=(), v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._relations = hs.get_relations_handler()

    # GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]
    async def on_GET(self, request: HttpRequest, room_id: str, event_id: str,
                     rel_type: str | None = None,
                     event_type: str | None = None) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        direction = parse_string(request, "dir", default="b", allowed_values=("b", "f"))
        recurse = parse_boolean(request, "recurse", default=False)
        page = await self._relations.get_relations(
            requester.user_id, room_id, event_id, rel_type, event_type,
            _parse_token(request, "from"), _parse_token(request, "to"),
            direction or "b", _parse_limit(request), bool(recurse))
        body: dict[str, Any] = {"chunk": page.chunk}
        if page.next_batch is not None:
            body["next_batch"] = page.next_batch
        if page.prev_batch is not None:
            body["prev_batch"] = page.prev_batch
        if page.recursion_depth is not None:
            body["recursion_depth"] = page.recursion_depth
        return 200, body


class ThreadsServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/threads", releases=(), v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._relations = hs.get_relations_handler()

    # GET /_matrix/client/v1/rooms/{roomId}/threads
    async def on_GET(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        include = parse_string(request, "include", default="all",
                               allowed_values=("all", "participated"))
        page = await self._relations.get_threads(
            requester.user_id, room_id, include == "participated",
            _parse_token(request, "from"), _parse_limit(request))
        body: dict[str, Any] = {"chunk": page.chunk}
        if page.next_batch is not None:
            body["next_batch"] = page.next_batch
        return 200, body


def register_servlets(hs: HomeServer, router: Router) -> None:
    RelationsServlet(hs).register(router)
    ThreadsServlet(hs).register(router)
