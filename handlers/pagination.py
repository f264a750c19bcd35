"""Room history: `/messages` (paging through a room) and `/context` (the events around
one event), both through history visibility and an optional RoomEventFilter.

Pages follow the topological order, depth then stream ordering (`TopologicalToken`), so
that events backfilled into a hole of our copy of the room (history from before our join,
or missed between a leave and a rejoin) appear where they belong. Paging backwards from a
token returns events at or before it, newest first, and ends at (depth, stream - 1) of
the last one returned; paging forwards returns those after it, oldest first, and ends at
the last one. A `from` may also be a /sync token (`prev_batch`): its room position bounds
the stream orderings of the first read, in the same order. A user who left (or was
banned) pages only up to their leave.

Paging back where a hole may lie (a backward extremity within the page's depths, or the
end of what we hold while some remain) first asks a server in the room for the missing
events (`FederationBackfillHandler`), then reads the page again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from handlers.filtering import RoomEventFilter
from homeserver.errors import Codes, MatrixError
from homeserver.events import Event
from homeserver.stream_token import PaginationToken, StreamToken, TopologicalToken
from storage.stores.stream import Bound, HistoryRow

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: /messages and /context: the default and the largest `limit`
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
#: store reads per page when visibility or the filter hides events (bounds the work of one
#: request; the client pages on with `end`)
_MAX_ROUNDS = 5


@attrs.frozen(slots=True)
class _Page:
    """One page of visible, filtered events."""

    #: (client event, source event), in paging order
    events: list[tuple[dict[str, Any], Event]]
    #: the position just past the last row consumed (the `end` token); None: no row was
    next_pos: TopologicalToken | None
    #: the store has more rows in range after `next_pos`
    more: bool


@attrs.frozen(slots=True)
class EventsAround:
    """The visible events either side of one (client format, nearest first before it,
    oldest first after it) and the tokens bounding them."""

    before: list[dict[str, Any]]
    after: list[dict[str, Any]]
    start: str
    end: str
    #: the source events, before then after
    sources: list[Event]


class PaginationHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._events = stores.events
        self._stream = stores.stream
        self._state = stores.state
        self._visibility = hs.get_visibility_handler()
        self._reads = hs.get_room_read_handler()
        self._backfill = hs.get_federation_backfill_handler()
        self._account_data = hs.get_account_data_handler()

    # GET /_matrix/client/v3/rooms/{roomId}/messages
    async def get_messages(self, user_id: str, device_id: str | None, room_id: str,
                           from_token: PaginationToken | None,
                           to_token: PaginationToken | None, direction: str, limit: int,
                           event_filter: RoomEventFilter | None) -> dict[str, Any]:
        """One page of a room's history.

        Args:
            from_token: where to start; None: the room's end (`b`) or beginning (`f`).
            to_token: where to stop, if anywhere.
            direction: "b" (newest first) or "f" (oldest first).
            limit: at most this many events (0..MAX_LIMIT).

        Raises:
            MatrixError: 403 M_FORBIDDEN when the user may not read the room (also for
                unknown rooms, as Synapse).
        """
        leave = await self._check_access(user_id, room_id)
        current = self._events.get_room_max_stream_ordering()
        if from_token is None:
            from_token = (StreamToken(room=current) if direction == "b" else
                          TopologicalToken(0, self._events.get_room_min_stream_ordering()))
        start = from_token.serialize()
        from_bound = _bound(from_token)
        to_bound = _bound(to_token) if to_token is not None else None
        if leave is not None:
            if direction == "b":
                from_bound = _capped(from_bound, leave)
            else:
                to_bound = _capped(to_bound, leave)
        page = await self._page(user_id, room_id, from_bound, to_bound, direction, limit,
                                event_filter, current)
        if direction == "b" and limit > 0:
            page = await self._fill_holes(user_id, room_id, page, from_bound, to_bound,
                                          limit, event_filter, current)
        result: dict[str, Any] = {"chunk": [], "start": start}
        if page.more:
            result["end"] = page.next_pos.serialize() if page.next_pos is not None else start
        events = [source for _, source in page.events]
        result["chunk"] = await self._with_txn_ids(user_id, device_id, page.events)
        if event_filter is not None and event_filter.lazy_load_members and events:
            state = await self._member_events(events, _senders(events))
            if state:
                result["state"] = await self._reads.serialize_events(state)
        return result

    # GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}
    async def get_event_context(self, user_id: str, device_id: str | None, room_id: str,
                                event_id: str, limit: int,
                                event_filter: RoomEventFilter | None) -> dict[str, Any]:
        """The event, up to `limit` events around it (half before), and the room state
        at the last one returned; the filter applies to all but the event itself.

        Raises:
            MatrixError: 403 M_FORBIDDEN for rooms the user may not read and events they
                may not see; 404 M_NOT_FOUND for an unknown event or one of another room.
        """
        leave = await self._check_access(user_id, room_id)
        event = await self._events.get_event(event_id)
        position = await self._events.get_stream_ordering(event_id)
        if event is None or event.room_id != room_id or position is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Can't find event {event_id}")
        if not await self._visibility.is_event_visible_to(user_id, event):
            raise MatrixError(403, Codes.FORBIDDEN,
                              "You don't have permission to access that event.")
        before_limit = limit // 2
        current = self._events.get_room_max_stream_ordering()
        before = await self._page(user_id, room_id, (event.depth, position - 1), None, "b",
                                  before_limit, event_filter, current)
        after = await self._page(user_id, room_id, (event.depth, position),
                                 None if leave is None else (leave.depth, leave.stream),
                                 "f", limit - before_limit, event_filter, current)
        last_id = after.events[-1][1].event_id if after.events else event_id
        state_ids = await self._state.get_state_after_event(last_id) or {}
        if event_filter is not None and event_filter.lazy_load_members:
            around = [event, *(e for _, e in before.events), *(e for _, e in after.events)]
            wanted = _senders(around)
            state_ids = {k: v for k, v in state_ids.items()
                         if k[0] != "m.room.member" or k[1] in wanted}
        state_events = await self._events.get_events(state_ids.values())
        state = await self._reads.serialize_events(
            [state_events[e] for e in state_ids.values() if e in state_events])
        if event_filter is not None:
            state = event_filter.filter(state)
        serialized = await self._with_txn_ids(user_id, device_id, [
            *before.events, *after.events,
            ((await self._reads.serialize_events([event], user_id=user_id))[0], event)])
        n_before = len(before.events)
        return {
            "event": serialized[-1],
            "events_before": serialized[:n_before],
            "events_after": serialized[n_before:-1],
            "start": (before.next_pos
                      or TopologicalToken(event.depth, position - 1)).serialize(),
            "end": (after.next_pos or TopologicalToken(event.depth, position)).serialize(),
            "state": state,
        }

    async def events_around(self, user_id: str, event: Event, position: int,
                            before_limit: int, after_limit: int) -> EventsAround:
        """Up to `before_limit`/`after_limit` events the user may see either side of
        `event` (at stream `position`) in topological order: the context of a search
        result (the caller has checked that the user sees that event)."""
        current = self._events.get_room_max_stream_ordering()
        before = await self._page(user_id, event.room_id, (event.depth, position - 1), None,
                                  "b", before_limit, None, current)
        after = await self._page(user_id, event.room_id, (event.depth, position), None,
                                 "f", after_limit, None, current)
        return EventsAround(
            before=[c for c, _ in before.events], after=[c for c, _ in after.events],
            start=(before.next_pos
                   or TopologicalToken(event.depth, position - 1)).serialize(),
            end=(after.next_pos or TopologicalToken(event.depth, position)).serialize(),
            sources=[e for _, e in (*before.events, *after.events)])

    # -- internals --

    async def _fill_holes(self, user_id: str, room_id: str, page: _Page,
                          from_bound: Bound, to_bound: Bound | None, limit: int,
                          event_filter: RoomEventFilter | None, max_stream: int) -> _Page:
        """Backfill the holes whose events would be part of this backward page, then
        read it again. A hole lies below each backward extremity's depth (that of the
        events naming it); it counts when its top is within the page's depths, or
        anywhere above the page's bottom when the page reached the end of what we hold.
        While backfill makes progress there, the page keeps an `end` token, so the
        client pages on."""
        extremities = await self._events.get_backward_extremities(room_id)
        if not extremities:
            return page
        reached_end = not page.more and to_bound is None
        if page.next_pos is None and not reached_end:
            return page
        low = None if reached_end or page.next_pos is None else page.next_pos.depth
        top = from_bound[0]  # None: a stream position, which bounds no depth
        holes = [event_id for event_id, depth in extremities
                 if (low is None or depth > low) and (top is None or depth <= top + 1)]
        if not holes or not await self._backfill.backfill(room_id, holes, limit):
            return page
        page = await self._page(user_id, room_id, from_bound, to_bound, "b", limit,
                                event_filter, max_stream)
        if not page.more and to_bound is None and page.next_pos is not None \
                and await self._events.get_backward_extremities(room_id):
            page = attrs.evolve(page, more=True)
        return page

    async def _check_access(self, user_id: str, room_id: str) -> TopologicalToken | None:
        """Raise 403 unless the user may read the room; returns the position of their
        leave or ban, which they may page up to (None: no bound)."""
        state = await self._visibility.check_can_see_room_state(user_id, room_id)
        member_id = state.get(("m.room.member", user_id))
        member = await self._events.get_event(member_id) if member_id is not None else None
        if member is not None and member.membership in ("leave", "ban"):
            leave_pos = await self._events.get_stream_ordering(member.event_id)
            if leave_pos is not None:
                return TopologicalToken(member.depth, leave_pos)
        return None

    async def _page(self, user_id: str, room_id: str, from_bound: Bound | None,
                    to_bound: Bound | None, direction: str, limit: int,
                    event_filter: RoomEventFilter | None, max_stream: int) -> _Page:
        """Read rows from `from_bound` towards `to_bound` until `limit` events pass
        visibility and the filter, the range ends, or `_MAX_ROUNDS` reads were made."""
        collected: list[tuple[dict[str, Any], Event]] = []
        # Ignored users' messages are dropped; their state events still count (Synapse).
        ignored = await self._account_data.get_ignored_users(user_id)
        more = True
        batch = limit + 1
        pos = from_bound
        last: HistoryRow | None = None
        for _ in range(_MAX_ROUNDS):
            if len(collected) >= limit:
                break
            rows = await self._stream.get_room_events_topological(
                room_id, pos, to_bound, direction, batch, max_stream)
            if not rows:
                more = False
                break
            fetched = await self._events.get_events(r.event_id for r in rows)
            visible = await self._visibility.filter_events_for_client(
                user_id, [fetched[r.event_id] for r in rows if r.event_id in fetched
                          and (fetched[r.event_id].sender not in ignored
                               or fetched[r.event_id].state_key is not None)])
            serialized = await self._reads.serialize_events(visible, user_id=user_id)
            client_of = {e.event_id: (c, e) for c, e in zip(serialized, visible, strict=True)}
            consumed = 0
            for row in rows:
                if len(collected) >= limit:
                    break
                consumed += 1
                last = row
                pair = client_of.get(row.event_id)
                if pair is not None and (event_filter is None
                                         or event_filter.matches(pair[0])):
                    collected.append(pair)
            assert last is not None
            pos = _past(last, direction)
            if consumed == len(rows) and len(rows) < batch:
                more = False
                break
            batch = min(batch * 2, MAX_LIMIT + 1)
        next_pos = None if last is None else TopologicalToken(*_past(last, direction))
        return _Page(events=collected, next_pos=next_pos, more=more)

    async def _member_events(self, events: list[Event], senders: Iterable[str]
                             ) -> list[Event]:
        """Each sender's membership event, from the state at the first of `events` that
        has one (lazy-loading members)."""
        group_of = await self._state.get_state_groups_for_events(
            [e.event_id for e in events])
        states = await self._state.get_state_for_groups(set(group_of.values()))
        wanted = set(senders)
        member_ids: dict[str, str] = {}
        for event in events:
            state = states.get(group_of.get(event.event_id, -1), {})
            for sender in wanted - member_ids.keys():
                if (member_id := state.get(("m.room.member", sender))) is not None:
                    member_ids[sender] = member_id
        found = await self._events.get_events(member_ids.values())
        return [found[m] for m in member_ids.values() if m in found]

    async def _with_txn_ids(self, user_id: str, device_id: str | None,
                            pairs: list[tuple[dict[str, Any], Event]]
                            ) -> list[dict[str, Any]]:
        """The client events, with `unsigned.transaction_id` on this device's own sends."""
        own = [e.event_id for _, e in pairs if e.sender == user_id]
        txn_ids: Mapping[str, str] = {}
        if device_id is not None and own:
            txn_ids = await self._events.get_txn_ids_for_device(user_id, device_id, own)
        out = []
        for client, event in pairs:
            txn_id = txn_ids.get(event.event_id)
            if txn_id is not None:
                client = {**client, "unsigned": {**client["unsigned"],
                                                 "transaction_id": txn_id}}
            out.append(client)
        return out


def _bound(token: PaginationToken) -> Bound:
    if isinstance(token, TopologicalToken):
        return (token.depth, token.stream)
    return (None, token.room)


def _past(row: HistoryRow, direction: str) -> tuple[int, int]:
    """The position just past a row in paging order (backwards: just below it)."""
    return (row.depth, row.stream_ordering - 1 if direction == "b" else row.stream_ordering)


def _capped(bound: Bound | None, leave: TopologicalToken) -> Bound:
    """The earlier of a bound and a leave's position (a stream bound before the leave
    stays one)."""
    at_leave = (leave.depth, leave.stream)
    if bound is None:
        return at_leave
    depth, stream = bound
    if depth is None:
        return at_leave if stream >= leave.stream else bound
    return min((depth, stream), at_leave)


def _senders(events: Iterable[Event]) -> set[str]:
    return {e.sender for e in events}
