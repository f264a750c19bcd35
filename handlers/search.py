"""Server-side search (`POST /search`, category `room_events`): full-text matches from
the `event_search` index, through history visibility, the ignore list and the
RoomEventFilter, with context, state, groupings and paging.

The rooms searched are those the user is joined to and those they left or were banned
from without forgetting them; in the latter, history visibility keeps to what they could
see while joined (or what is `world_readable`). Events of ignored users are dropped, as
Synapse's `filter_events_for_client` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from handlers.filtering import RoomEventFilter
from homeserver.errors import BadRequestError
from homeserver.events import Event
from storage.stores.search import ALL_KEYS, SearchHit, SearchQuery

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: the `filter.limit` when none is given, and the largest accepted
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
#: index reads per request when visibility or the filter hides hits (bounds the work;
#: the client pages on with `next_batch`)
_MAX_ROUNDS = 5
_HIGHLIGHT_WORD = re.compile(r"\w+")


@attrs.frozen(slots=True)
class ContextRequest:
    before_limit: int = 5
    after_limit: int = 5
    include_profile: bool = False


@attrs.frozen(slots=True)
class SearchRequest:
    """A validated `room_events` search."""

    search_term: str
    #: None: all of them
    keys: tuple[str, ...] | None = None
    event_filter: RoomEventFilter = RoomEventFilter()
    #: the io.axon time range on origin_server_ts, inclusive
    from_ts: int | None = None
    to_ts: int | None = None
    order_by: str = "rank"
    context: ContextRequest | None = None
    include_state: bool = False
    group_by: tuple[str, ...] = ()
    next_batch: str | None = None
    #: the filter gave a limit (else DEFAULT_LIMIT)
    limit: int = DEFAULT_LIMIT


@attrs.frozen(slots=True)
class ResultContext:
    events_before: list[dict[str, Any]]
    events_after: list[dict[str, Any]]
    start: str
    end: str
    #: sender -> {displayname, avatar_url} (only with include_profile)
    profile_info: dict[str, dict[str, Any]] | None = None


@attrs.frozen(slots=True)
class SearchResult:
    rank: float
    event: dict[str, Any]
    context: ResultContext | None = None


@attrs.frozen(slots=True)
class SearchResults:
    count: int
    highlights: list[str]
    results: list[SearchResult]
    #: room ID -> its state events (include_state)
    state: dict[str, list[dict[str, Any]]] | None
    #: grouping key -> group value -> (event IDs in result order, order)
    groups: dict[str, dict[str, tuple[list[str], int]]]
    next_batch: str | None


class SearchHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._search = stores.search
        self._events = stores.events
        self._state = stores.state
        self._members = stores.room_members
        self._visibility = hs.get_visibility_handler()
        self._reads = hs.get_room_read_handler()
        self._pagination = hs.get_pagination_handler()
        self._account_data = hs.get_account_data_handler()

    # POST /_matrix/client/v3/search
    async def search_room_events(self, user_id: str, req: SearchRequest) -> SearchResults:
        """One page of matching events the user may see.

        Raises:
            BadRequestError: 400 M_INVALID_PARAM for an empty search term, a limit over
                MAX_LIMIT, or a `next_batch` this server did not give for this order.
        """
        if not req.search_term.strip():
            raise BadRequestError("search_term must not be empty")
        if req.limit > MAX_LIMIT:
            raise BadRequestError(f"filter.limit must be at most {MAX_LIMIT}")
        offset, before = _parse_batch(req.next_batch, req.order_by)
        flt = req.event_filter
        rooms = await self._members.get_rooms_for_local_user(
            user_id, ("join", "leave", "ban"), include_forgotten=False)
        room_ids = sorted(r.room_id for r in rooms if r.room_id not in flt.not_rooms
                          and (flt.rooms is None or r.room_id in flt.rooms))
        query = SearchQuery(text=req.search_term, room_ids=tuple(room_ids),
                            keys=ALL_KEYS if req.keys is None else req.keys,
                            senders=flt.senders, not_senders=flt.not_senders,
                            from_ts=req.from_ts, to_ts=req.to_ts)
        ignored = await self._account_data.get_ignored_users(user_id)

        found: list[tuple[SearchHit, dict[str, Any], Event]] = []
        more = True
        batch = req.limit + 1
        for _ in range(_MAX_ROUNDS):
            if len(found) >= req.limit:
                break
            hits = await self._search.search(query, req.order_by, batch, offset=offset,
                                             before=before)
            passing = await self._passing(user_id, hits, flt, ignored)
            consumed = 0
            for hit in hits:
                if len(found) >= req.limit:
                    break
                consumed += 1
                offset += 1
                before = hit.stream_ordering
                if hit.event_id in passing:
                    found.append((hit, *passing[hit.event_id]))
            if consumed == len(hits) and len(hits) < batch:
                more = False
                break
            batch = min(batch * 2, MAX_LIMIT + 1)

        results = [SearchResult(rank=hit.rank, event=client,
                                context=await self._context(user_id, hit, event, req.context))
                   for hit, client, event in found]
        events = [event for _, _, event in found]
        return SearchResults(
            count=await self._search.count(query),
            highlights=_highlights(req.search_term, events),
            results=results,
            state=await self._room_states(user_id, events) if req.include_state else None,
            groups=_groups(req.group_by, events),
            next_batch=(_batch_token(req.order_by, offset, before)
                        if more and found else None))

    # -- internals --

    async def _passing(self, user_id: str, hits: Sequence[SearchHit],
                       flt: RoomEventFilter, ignored: frozenset[str]
                       ) -> dict[str, tuple[dict[str, Any], Event]]:
        """event ID -> (client event, event) for the hits the user may see that pass
        the filter: not redacted (a redaction that reached us before its target leaves
        the target indexed), not from an ignored user."""
        fetched = await self._events.get_events(h.event_id for h in hits)
        redacted = await self._events.get_redactions(list(fetched))
        candidates = [fetched[h.event_id] for h in hits if h.event_id in fetched
                      and h.event_id not in redacted
                      and fetched[h.event_id].sender not in ignored]
        visible = await self._visibility.filter_events_for_client(user_id, candidates)
        serialized = await self._reads.serialize_events(visible, user_id=user_id)
        return {e.event_id: (c, e) for c, e in zip(serialized, visible, strict=True)
                if flt.matches(c)}

    async def _context(self, user_id: str, hit: SearchHit, event: Event,
                       req: ContextRequest | None) -> ResultContext | None:
        if req is None:
            return None
        around = await self._pagination.events_around(
            user_id, event, hit.stream_ordering, req.before_limit, req.after_limit)
        profiles = None
        if req.include_profile:
            profiles = await self._profiles(event, {event.sender,
                                                    *(e.sender for e in around.sources)})
        return ResultContext(events_before=around.before, events_after=around.after,
                             start=around.start, end=around.end, profile_info=profiles)

    async def _profiles(self, event: Event, senders: set[str]) -> dict[str, dict[str, Any]]:
        """Each sender's displayname and avatar in the room state at the event."""
        state = await self._state.get_state_after_event(event.event_id) or {}
        member_ids = {s: state[("m.room.member", s)] for s in senders
                      if ("m.room.member", s) in state}
        members = await self._events.get_events(member_ids.values())
        profiles: dict[str, dict[str, Any]] = {}
        for sender, member_id in member_ids.items():
            member = members.get(member_id)
            if member is None:
                continue
            profile = {k: member.content.get(k) for k in ("displayname", "avatar_url")
                       if isinstance(member.content.get(k), str)}
            profiles[sender] = profile
        return profiles

    async def _room_states(self, user_id: str, events: Sequence[Event]
                           ) -> dict[str, list[dict[str, Any]]]:
        """The state of each room with a result, as the user may read it (current, or
        as of their leave)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for room_id in dict.fromkeys(e.room_id for e in events):
            access = await self._visibility.room_state_access(user_id, room_id)
            if access is None:
                continue
            state = await self._events.get_events(access.state.values())
            out[room_id] = await self._reads.serialize_events(
                [state[e] for e in access.state.values() if e in state])
        return out


def _parse_batch(token: str | None, order_by: str) -> tuple[int, int | None]:
    """(offset, before) from a `next_batch` token: `rank:<offset>` or
    `recent:<stream ordering>`."""
    if token is None:
        return 0, None
    kind, _, value = token.partition(":")
    if kind == order_by and re.fullmatch(r"-?[0-9]{1,19}", value):
        number = int(value)
        if kind == "rank" and 0 <= number:
            return number, None
        if kind == "recent":
            return 0, number
    raise BadRequestError("Invalid next_batch")


def _batch_token(order_by: str, offset: int, before: int | None) -> str:
    return f"rank:{offset}" if order_by == "rank" else f"recent:{before}"


def _highlights(term: str, events: Sequence[Event]) -> list[str]:
    """The words to highlight: the search words, and the words of the results that a
    search word is a prefix of (what the index matched, near enough on both engines)."""
    wanted = " ".join(t for t in term.split() if not t.startswith("-"))
    words = {w.lower() for w in _HIGHLIGHT_WORD.findall(wanted) if w.lower() != "or"}
    out = set(words)
    for event in events:
        for field in ("body", "name", "topic"):
            value = event.content.get(field)
            if isinstance(value, str):
                out.update(w for w in (x.lower() for x in _HIGHLIGHT_WORD.findall(value))
                           if any(w.startswith(t) for t in words))
    return sorted(out)


def _groups(group_by: Sequence[str], events: Sequence[Event]
            ) -> dict[str, dict[str, tuple[list[str], int]]]:
    groups: dict[str, dict[str, tuple[list[str], int]]] = {}
    for key in group_by:
        by_value: dict[str, list[str]] = {}
        for event in events:
            value = event.room_id if key == "room_id" else event.sender
            by_value.setdefault(value, []).append(event.event_id)
        groups[key] = {value: (ids, order)
                       for order, (value, ids) in enumerate(by_value.items())}
    return groups
