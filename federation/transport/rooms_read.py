"""Federation reads of room data: one event, the state at an event (full or IDs), an
event's auth chain, backfill and missing events. All authenticated with X-Matrix; the
checks of the asking server's rights live in `FederationServingHandler`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

from federation.transport.server import FederationServlet, federation_patterns
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import EventID, RoomID
from rest.http import HttpRequest, RequestBody, Router, parse_body, parse_integer, parse_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer

ROOM = "(?P<room_id>[^/]+)"
EVENT = "(?P<event_id>[^/]+)"


def _event_id(value: str) -> str:
    EventID.parse(value)  # 400 M_INVALID_PARAM
    return value


def _room_id(value: str) -> str:
    RoomID.parse(value)  # 400 M_INVALID_PARAM
    return value


def _required_event_id(request: HttpRequest) -> str:
    value = parse_string(request, "event_id", required=True)
    assert value is not None
    return _event_id(value)


class _ReadServlet(FederationServlet):
    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_federation_serving_handler()


class EventServlet(_ReadServlet):
    PATTERNS = federation_patterns(f"/event/{EVENT}/?")

    # GET /_matrix/federation/v1/event/{eventId}
    async def on_GET_authed(self, request: HttpRequest, origin: str,
                            event_id: str) -> tuple[int, Any]:
        return 200, await self._handler.get_event(origin, _event_id(event_id))


class StateServlet(_ReadServlet):
    PATTERNS = federation_patterns(f"/state/{ROOM}/?")

    # GET /_matrix/federation/v1/state/{roomId}?event_id=
    async def on_GET_authed(self, request: HttpRequest, origin: str,
                            room_id: str) -> tuple[int, Any]:
        return 200, await self._handler.get_state(
            origin, _room_id(room_id), _required_event_id(request))


class StateIdsServlet(_ReadServlet):
    PATTERNS = federation_patterns(f"/state_ids/{ROOM}/?")

    # GET /_matrix/federation/v1/state_ids/{roomId}?event_id=
    async def on_GET_authed(self, request: HttpRequest, origin: str,
                            room_id: str) -> tuple[int, Any]:
        return 200, await self._handler.get_state_ids(
            origin, _room_id(room_id), _required_event_id(request))


class EventAuthServlet(_ReadServlet):
    PATTERNS = federation_patterns(f"/event_auth/{ROOM}/{EVENT}/?")

    # GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}
    async def on_GET_authed(self, request: HttpRequest, origin: str, room_id: str,
                            event_id: str) -> tuple[int, Any]:
        return 200, await self._handler.get_event_auth(
            origin, _room_id(room_id), _event_id(event_id))


class BackfillServlet(_ReadServlet):
    PATTERNS = federation_patterns(f"/backfill/{ROOM}/?")

    # GET /_matrix/federation/v1/backfill/{roomId}?v=&limit=
    async def on_GET_authed(self, request: HttpRequest, origin: str,
                            room_id: str) -> tuple[int, Any]:
        event_ids = [_event_id(v) for v in request.query.get("v", []) if v]
        if not event_ids:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing query parameter v")
        limit = parse_integer(request, "limit", required=True, minimum=1)
        assert limit is not None
        return 200, await self._handler.backfill(origin, _room_id(room_id), event_ids, limit)


class MissingEventsBody(RequestBody):
    earliest_events: list[str]
    latest_events: list[str]
    limit: int = pydantic.Field(default=10, ge=0)
    min_depth: int = pydantic.Field(default=0, ge=0)


class GetMissingEventsServlet(_ReadServlet):
    PATTERNS = federation_patterns(f"/get_missing_events/{ROOM}/?")

    # POST /_matrix/federation/v1/get_missing_events/{roomId}
    async def on_POST_authed(self, request: HttpRequest, origin: str,
                             room_id: str) -> tuple[int, Any]:
        body = parse_body(request, MissingEventsBody)
        return 200, await self._handler.get_missing_events(
            origin, _room_id(room_id), body.earliest_events, body.latest_events,
            body.limit, body.min_depth)


def register_servlets(hs: HomeServer, router: Router) -> None:
    for servlet in (EventServlet, StateServlet, StateIdsServlet, EventAuthServlet,
                    BackfillServlet, GetMissingEventsServlet):
        servlet(hs).register(router)
