"""Relations and threads: the bundled aggregations (`unsigned["m.relations"]`) every
client path attaches to the events it serves, `/relations` and `/threads`.

Rules (client-server API, "Forming relationships between events" and its modules):
`m.annotation` is not aggregated; `m.reference` is the chunk of child IDs; `m.replace`
is the newest valid edit (same sender and type, the original neither a state event nor
an edit itself, the edit has an object `m.new_content`; newest by `origin_server_ts`,
then the largest event ID) as a whole event; `m.thread` is the count, the newest reply
(itself with its aggregations) and whether the user started or replied in it. A
redacted event gets none, and redacted children are gone from the index.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from handlers.event_serialize import EventRedactions, serialize_event
from homeserver.errors import NotFoundError
from homeserver.events import Event
from homeserver.stream_token import StreamToken
from storage.stores.relations import THREAD, RelationRow, RelationsStore, relation_of

if TYPE_CHECKING:
    from homeserver.server import HomeServer

MAIN_TIMELINE = "main"
REPLACE = "m.replace"
REFERENCE = "m.reference"
#: /relations `recurse` (MSC3981) follows relations this many levels down (as Synapse)
MAX_RECURSION_DEPTH = 3
#: relation hops followed to find an event's thread (the spec recommends 3)
MAX_THREAD_HOPS = 3
#: /relations and /threads: the default and the largest `limit`
DEFAULT_LIMIT = 5
MAX_LIMIT = 1000
#: no position is this high: "from the newest"
_TOP = 1 << 62


async def thread_of(relations: RelationsStore, event: Event) -> tuple[str, set[str]]:
    """The event's thread ("main" or the root's event ID) and the IDs on the way to it
    (itself included): its own `m.thread` relation, else its parent's (a reaction or edit
    of a reply is in the reply's thread), up to `MAX_THREAD_HOPS`, through the index."""
    chain = {event.event_id}
    own = relation_of(event)
    relation = (own[0], own[1]) if own is not None else None
    for _ in range(MAX_THREAD_HOPS):
        if relation is None:
            break
        parent, rel_type = relation
        if rel_type == THREAD:
            return parent, chain
        chain.add(parent)
        relation = await relations.get_parent(event.room_id, parent)
    return MAIN_TIMELINE, chain


class BundledAggregations:
    """The one place that computes `unsigned["m.relations"]`, for any path that serves
    events (sync, messages, context, event, relations, threads, search)."""

    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._clock = hs.get_clock()
        self._events = stores.events
        self._relations = stores.relations
        self._account_data = hs.get_account_data_handler()
        self._redactions = EventRedactions(self._events)

    async def for_events(self, events: Sequence[Event], user_id: str,
                         redacted: Collection[str] | None = None
                         ) -> dict[str, dict[str, Any]]:
        """event ID -> its `m.relations` object, for those of `events` that have one.

        One relation query for the parents not cached, one event load for the
        edits and newest thread replies, whatever the number of events.

        Args:
            redacted: the IDs of those of `events` that are redacted, if the caller
                knows them already (they get no aggregations).
        """
        return await self._aggregate(events, user_id, nested=True, redacted=redacted)

    async def _aggregate(self, events: Sequence[Event], user_id: str, nested: bool,
                         redacted: Collection[str] | None = None
                         ) -> dict[str, dict[str, Any]]:
        if not events:
            return {}
        if redacted is None:
            redacted = (await self._redactions.redactions_of(events)).keys()
        parents = {e.event_id: e for e in events if e.event_id not in redacted}
        children: dict[str, tuple[RelationRow, ...]] = {}
        for parent_id, rows in (await self._relations.get_children(parents)).items():
            # A relation to an event of another room is never served.
            same_room = tuple(r for r in rows if r.room_id == parents[parent_id].room_id)
            if same_room:
                children[parent_id] = same_room
        if not children:
            return {}
        # Thread counts and newest replies leave out users the reader ignores (spec).
        ignored = await self._account_data.get_ignored_users(user_id)
        wanted: set[str] = set()
        for parent_id, rows in children.items():
            parent = parents[parent_id]
            wanted.update(r.event_id for r in rows if _may_edit(parent, r))
            threads = _thread_rows(rows, ignored)
            if nested and threads:
                wanted.add(threads[-1].event_id)
        loaded = await self._events.get_events(wanted) if wanted else {}
        now = self._clock.time_msec()
        latest: list[Event] = []
        out: dict[str, dict[str, Any]] = {}
        for parent_id, rows in children.items():
            parent = parents[parent_id]
            agg: dict[str, Any] = {}
            refs = [{"event_id": r.event_id} for r in rows if r.rel_type == REFERENCE]
            if refs:
                agg[REFERENCE] = {"chunk": refs}
            edit = _newest_edit(parent, rows, loaded)
            if edit is not None:
                agg[REPLACE] = serialize_event(edit, now)
            threads = _thread_rows(rows, ignored)
            if nested and threads and threads[-1].event_id in loaded:
                last = loaded[threads[-1].event_id]
                latest.append(last)
                agg[THREAD] = {
                    "latest_event": serialize_event(last, now),
                    "count": len(threads),
                    "current_user_participated": parent.sender == user_id
                    or any(r.sender == user_id for r in threads),
                }
            if agg:
                out[parent_id] = agg
        # The newest replies carry their own aggregations (edits, references).
        for event_id, agg in (await self._aggregate(latest, user_id, nested=False)).items():
            for thread in (a[THREAD] for a in out.values() if THREAD in a):
                if thread["latest_event"]["event_id"] == event_id:
                    thread["latest_event"]["unsigned"]["m.relations"] = agg
        return out


def _thread_rows(rows: Sequence[RelationRow], ignored: Collection[str]
                 ) -> list[RelationRow]:
    return [r for r in rows if r.rel_type == THREAD and r.sender not in ignored]


def _may_edit(parent: Event, row: RelationRow) -> bool:
    """Whether the child could be a valid edit of the parent (all but `m.new_content`)."""
    if row.rel_type != REPLACE or row.sender != parent.sender or row.type != parent.type:
        return False
    if parent.state_key is not None:
        return False
    own = relation_of(parent)
    return own is None or own[1] != REPLACE


def _newest_edit(parent: Event, rows: Sequence[RelationRow],
                 loaded: Mapping[str, Event]) -> Event | None:
    best: Event | None = None
    for row in rows:
        if not _may_edit(parent, row):
            continue
        edit = loaded.get(row.event_id)
        if edit is None or edit.state_key is not None \
                or not isinstance(edit.content.get("m.new_content"), Mapping):
            continue
        if best is None or (edit.origin_server_ts, edit.event_id) \
                > (best.origin_server_ts, best.event_id):
            best = edit
    return best


@attrs.frozen(slots=True)
class RelationsPage:
    """One page of /relations (client events) and where to go on."""

    chunk: list[dict[str, Any]]
    next_batch: str | None
    prev_batch: str | None
    recursion_depth: int | None


@attrs.frozen(slots=True)
class ThreadsPage:
    """One page of /threads: thread roots, newest activity first."""

    chunk: list[dict[str, Any]]
    next_batch: str | None


class RelationsHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._events = stores.events
        self._relations = stores.relations
        self._visibility = hs.get_visibility_handler()
        self._reads = hs.get_room_read_handler()

    # GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]
    async def get_relations(self, user_id: str, room_id: str, event_id: str,
                            rel_type: str | None, event_type: str | None,
                            from_token: StreamToken | None, to_token: StreamToken | None,
                            direction: str, limit: int, recurse: bool) -> RelationsPage:
        """The children of an event the user can see, that they can see.

        Raises:
            ForbiddenError: the user may not read the room.
            NotFoundError: the event is unknown, in another room, or not visible.
        """
        await self._visibility.check_can_see_room_state(user_id, room_id)
        parent = await self._events.get_event(event_id)
        if parent is None or parent.room_id != room_id \
                or not await self._visibility.is_event_visible_to(user_id, parent):
            raise NotFoundError("Event not found.")
        parent_ids = await self._descendants(room_id, event_id) if recurse else [event_id]
        if from_token is not None:
            pos = from_token.room
        else:
            pos = _TOP if direction == "b" else self._events.get_room_min_stream_ordering()
        stop = to_token.room if to_token is not None else None
        rows = await self._relations.get_relations_page(
            room_id, parent_ids, rel_type, event_type, pos, stop, direction, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        fetched = await self._events.get_events(r.event_id for r in rows)
        visible = await self._visibility.filter_events_for_client(
            user_id, [fetched[r.event_id] for r in rows if r.event_id in fetched])
        chunk = await self._reads.serialize_events(visible, user_id=user_id)
        next_batch = None
        if more and rows:
            last = rows[-1].stream_ordering
            next_batch = StreamToken(room=last - 1 if direction == "b" else last).serialize()
        return RelationsPage(
            chunk=chunk, next_batch=next_batch,
            prev_batch=from_token.serialize() if from_token is not None else None,
            recursion_depth=MAX_RECURSION_DEPTH if recurse else None)

    async def _descendants(self, room_id: str, event_id: str) -> list[str]:
        """The event and its descendants whose children are within the recursion
        depth; a cycle is followed once."""
        seen = {event_id}
        level = [event_id]
        for _ in range(MAX_RECURSION_DEPTH - 1):
            children = await self._relations.get_children(level)
            level = [r.event_id for rows in children.values() for r in rows
                     if r.event_id not in seen and r.room_id == room_id]
            if not level:
                break
            seen.update(level)
        return list(seen)

    # GET /_matrix/client/v1/rooms/{roomId}/threads
    async def get_threads(self, user_id: str, room_id: str, participated: bool,
                          from_token: StreamToken | None, limit: int) -> ThreadsPage:
        """The room's thread roots the user can see, newest activity first.

        Raises:
            ForbiddenError: the user may not read the room.
        """
        await self._visibility.check_can_see_room_state(user_id, room_id)
        before = from_token.room if from_token is not None else _TOP
        rows = await self._relations.get_threads(
            room_id, before, limit + 1, participant=user_id if participated else None)
        more = len(rows) > limit
        rows = rows[:limit]
        fetched = await self._events.get_events(r.root_id for r in rows)
        visible = await self._visibility.filter_events_for_client(
            user_id, [fetched[r.root_id] for r in rows if r.root_id in fetched])
        chunk = await self._reads.serialize_events(visible, user_id=user_id)
        next_batch = StreamToken(room=rows[-1].latest_ordering).serialize() \
            if more and rows else None
        return ThreadsPage(chunk=chunk, next_batch=next_batch)
