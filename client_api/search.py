"""Server-side search: `POST /search` (category `room_events`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from handlers.filtering import RoomEventFilter
from handlers.search import ContextRequest, SearchRequest, SearchResults
from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_body,
    parse_string,
    validate_model,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: the most context events asked for on each side of a result
MAX_CONTEXT = 100

_Context = Annotated[int, Field(ge=0, le=MAX_CONTEXT)]
# Matrix integers are at most 2**53 - 1 (canonical JSON)
_Ts = Annotated[int, Field(ge=0, le=2**53 - 1)]


class _EventContext(RequestBody):
    before_limit: _Context = 5
    after_limit: _Context = 5
    include_profile: bool = False


class _Group(RequestBody):
    key: Literal["room_id", "sender"]


class _Groupings(RequestBody):
    group_by: list[_Group] = []


class _RoomEvents(RequestBody):
    search_term: str
    keys: list[Literal["content.body", "content.name", "content.topic"]] | None = None
    filter: dict[str, Any] | None = None
    order_by: Literal["recent", "rank"] = "rank"
    event_context: _EventContext | None = None
    include_state: bool = False
    groupings: _Groupings | None = None


class _Categories(RequestBody):
    room_events: _RoomEvents | None = None


class SearchBody(RequestBody):
    search_categories: _Categories


class TimeRangeFilter(RequestBody):
    """The io.axon extension of the search filter: origin_server_ts bounds (ms)."""

    from_ts: _Ts | None = Field(default=None, alias="io.axon.from_ts")
    to_ts: _Ts | None = Field(default=None, alias="io.axon.to_ts")


class SearchServlet(RestServlet):
    PATTERNS = client_patterns("/search")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._search = hs.get_search_handler()

    # POST /_matrix/client/v3/search
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, SearchBody)
        next_batch = parse_string(request, "next_batch")
        room_events = body.search_categories.room_events
        if room_events is None:
            return 200, {"search_categories": {}}
        raw_filter = room_events.filter or {}
        event_filter = RoomEventFilter.parse(raw_filter)
        time_range = validate_model(TimeRangeFilter, raw_filter)
        ctx = room_events.event_context
        req = SearchRequest(
            search_term=room_events.search_term,
            keys=None if room_events.keys is None else tuple(dict.fromkeys(room_events.keys)),
            event_filter=event_filter, from_ts=time_range.from_ts, to_ts=time_range.to_ts,
            order_by=room_events.order_by,
            context=None if ctx is None else ContextRequest(
                ctx.before_limit, ctx.after_limit, ctx.include_profile),
            include_state=room_events.include_state,
            group_by=tuple(dict.fromkeys(
                g.key for g in (room_events.groupings.group_by
                                if room_events.groupings else []))),
            next_batch=next_batch,
            limit=event_filter.limit)
        found = await self._search.search_room_events(requester.user_id, req)
        return 200, {"search_categories": {"room_events": _serialize(found)}}


def _serialize(found: SearchResults) -> dict[str, Any]:
    results = []
    for item in found.results:
        result: dict[str, Any] = {"rank": item.rank, "result": item.event}
        if item.context is not None:
            ctx = item.context
            context: dict[str, Any] = {"events_before": ctx.events_before,
                                       "events_after": ctx.events_after,
                                       "start": ctx.start, "end": ctx.end}
            if ctx.profile_info is not None:
                context["profile_info"] = ctx.profile_info
            result["context"] = context
        results.append(result)
    out: dict[str, Any] = {"count": found.count, "highlights": found.highlights,
                           "results": results}
    if found.state is not None:
        out["state"] = found.state
    if found.groups:
        out["groups"] = {key: {value: {"results": ids, "order": order}
                               for value, (ids, order) in values.items()}
                         for key, values in found.groups.items()}
    if found.next_batch is not None:
        out["next_batch"] = found.next_batch
    return out


def register_servlets(hs: HomeServer, router: Router) -> None:
    SearchServlet(hs).register(router)
