"""Room history: `/messages` (paging through a room by stream position) and `/context`
(the events around one event), both through history visibility and an optional
RoomEventFilter.

A token's `room` position p lies between the events with stream_ordering <= p and those
after: paging backwards from p returns events <= p newest first and ends at (oldest
returned - 1); paging forwards returns events > p oldest first and ends at the newest
returned. A user who left (or was banned) pages only up to their leave.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from handlers.filtering import RoomEventFilter
from homeserver.errors import Codes, MatrixError
from homeserver.events import Event
from homeserver.stream_token import StreamToken

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
    #: the position just past the last row consumed (the `end` token's room part)
    next_pos: int
    #: the store has more rows in range after `next_pos`
    more: bool


class PaginationHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._events = stores.events
        self._stream = stores.stream
        self._state = stores.state
        self._visibility = hs.get_visibility_handler()
        self._reads = hs.get_room_read_handler()
        self._account_data = hs.get_account_data_handler()
        self._hs = hs

    # GET /_matrix/client/v3/rooms/{roomId}/messages
    async def get_messages(self, user_id: str, device_id: str | None, room_id: str,
                           from_token: StreamToken | None, to_token: StreamToken | None,
                           direction: str, limit: int,
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
        leave_pos = await self._check_access(user_id, room_id)
        current = self._events.get_room_max_stream_ordering()
        if from_token is None:
            from_token = StreamToken(room=current if direction == "b"
                                     else self._events.get_room_min_stream_ordering())
        start = from_token.serialize()
        if direction == "b":
            pos = min(from_token.room, current, leave_pos)
            stop = to_token.room if to_token is not None else None
        else:
            pos = from_token.room
            stop = min(current, leave_pos,
                       to_token.room if to_token is not None else current)
        page = await self._page(user_id, room_id, pos, stop, direction, limit, event_filter)
        if direction == "b" and stop is None and not page.more and len(page.events) < limit:
            page = await self._backfill_and_continue(user_id, room_id, page, limit,
                                                     event_filter)
        result: dict[str, Any] = {"chunk": [], "start": start}
        if page.more:
            result["end"] = from_token.replace(room=page.next_pos).serialize()
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
        leave_pos = await self._check_access(user_id, room_id)
        event = await self._events.get_event(event_id)
        position = await self._events.get_stream_ordering(event_id)
        if event is None or event.room_id != room_id or position is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Can't find event {event_id}")
        if not await self._visibility.is_event_visible_to(user_id, event):
            raise MatrixError(403, Codes.FORBIDDEN,
                              "You don't have permission to access that event.")
        before_limit = limit // 2
        current = self._events.get_room_max_stream_ordering()
        before = await self._page(user_id, room_id, position - 1, None, "b", before_limit,
                                  event_filter)
        after = await self._page(user_id, room_id, position, min(current, leave_pos), "f",
                                 limit - before_limit, event_filter)
        token = StreamToken(room=position)
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
            ((await self._reads.serialize_events([event]))[0], event)])
        n_before = len(before.events)
        return {
            "event": serialized[-1],
            "events_before": serialized[:n_before],
            "events_after": serialized[n_before:-1],
            "start": token.replace(room=before.next_pos).serialize(),
            "end": token.replace(room=after.next_pos).serialize(),
            "state": state,
        }

    # -- internals --

    async def _backfill_and_continue(self, user_id: str, room_id: str, page: _Page,
                                     limit: int, event_filter: RoomEventFilter | None
                                     ) -> _Page:
        """Paging back reached the oldest event we hold: fetch older ones from a server
        in the room (federation backfill) and fill the page up with them. While backfill
        makes progress the page keeps an `end` token, so the client pages on."""
        missing = limit - len(page.events)
        added = await self._hs.get_federation_backfill_handler().backfill(room_id, missing)
        if not added:
            return page
        rest = await self._page(user_id, room_id, page.next_pos, None, "b", missing,
                                event_filter)
        return _Page(events=[*page.events, *rest.events], next_pos=rest.next_pos,
                     more=rest.more
                     or bool(await self._events.get_backward_extremities(room_id)))

    async def _check_access(self, user_id: str, room_id: str) -> int:
        """Raise 403 unless the user may read the room; returns the position they may
        page up to (their leave or ban, or no bound)."""
        state = await self._visibility.check_can_see_room_state(user_id, room_id)
        member_id = state.get(("m.room.member", user_id))
        member = await self._events.get_event(member_id) if member_id is not None else None
        if member is not None and member.membership in ("leave", "ban"):
            leave_pos = await self._events.get_stream_ordering(member.event_id)
            if leave_pos is not None:
                return leave_pos
        return 1 << 62

    async def _page(self, user_id: str, room_id: str, pos: int, stop: int | None,
                    direction: str, limit: int,
                    event_filter: RoomEventFilter | None) -> _Page:
        """Read rows from `pos` towards `stop` until `limit` events pass visibility and
        the filter, the range ends, or `_MAX_ROUNDS` reads were made."""
        collected: list[tuple[dict[str, Any], Event]] = []
        # Ignored users' messages are dropped; their state events still count (Synapse).
        ignored = await self._account_data.get_ignored_users(user_id)
        more = True
        batch = limit + 1
        for _ in range(_MAX_ROUNDS):
            if len(collected) >= limit:
                break
            rows = await self._stream.get_room_events_between(
                room_id, pos, stop, direction, batch)
            if not rows:
                more = False
                break
            fetched = await self._events.get_events(r[0] for r in rows)
            visible = await self._visibility.filter_events_for_client(
                user_id, [fetched[r[0]] for r in rows if r[0] in fetched
                          and (fetched[r[0]].sender not in ignored
                               or fetched[r[0]].state_key is not None)])
            serialized = await self._reads.serialize_events(visible)
            client_of = {e.event_id: (c, e) for c, e in zip(serialized, visible, strict=True)}
            consumed = 0
            for event_id, position in rows:
                if len(collected) >= limit:
                    break
                consumed += 1
                pos = position - 1 if direction == "b" else position
                pair = client_of.get(event_id)
                if pair is not None and (event_filter is None
                                         or event_filter.matches(pair[0])):
                    collected.append(pair)
            if consumed == len(rows) and len(rows) < batch:
                more = False
                break
            batch = min(batch * 2, MAX_LIMIT + 1)
        return _Page(events=collected, next_pos=pos, more=more)

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


def _senders(events: Iterable[Event]) -> set[str]:
    return {e.sender for e in events}
