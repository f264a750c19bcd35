"""Pieces shared by state resolution v1 and v2: event loading, auth edges, auth chains.

Spec: rooms/v1.md and rooms/v2.md ("State resolution"), rooms/v12.md for v2.1.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping

from homeserver.events import Event, StateMap

logger = logging.getLogger(__name__)

CREATE_KEY = ("m.room.create", "")
POWER_LEVELS_KEY = ("m.room.power_levels", "")
JOIN_RULES_KEY = ("m.room.join_rules", "")

#: Loads events by ID; returns those it has (rejected ones too, with `rejected_reason`).
LoadEvents = Callable[[Collection[str]], Awaitable[dict[str, Event]]]


class EventSource:
    """The events one resolution works on: the caller's `event_map`, then `load_events`.

    Each ID is asked of `load_events` at most once; IDs it cannot supply, and events of
    another room, are remembered as missing and treated as absent from then on.
    """

    def __init__(self, event_map: Mapping[str, Event], load_events: LoadEvents) -> None:
        self._events: dict[str, Event] = dict(event_map)
        self._load_events = load_events
        self._missing: set[str] = set()
        self._room_id: str | None = None

    async def load(self, event_ids: Iterable[str]) -> None:
        """Make sure every loadable event of `event_ids` is in memory (one batch)."""
        wanted = {
            eid for eid in event_ids if eid not in self._events and eid not in self._missing
        }
        if not wanted:
            return
        found = await self._load_events(wanted)
        for eid in wanted:
            event = found.get(eid)
            if event is None or event.event_id != eid:
                self._missing.add(eid)
            else:
                self._events[eid] = event

    def set_room(self, room_id: str) -> None:
        """Only events of `room_id` take part from now on; others count as missing."""
        self._room_id = room_id

    def get(self, event_id: str) -> Event | None:
        """The event if it is loaded and belongs to the room being resolved."""
        event = self._events.get(event_id)
        if event is None:
            return None
        if self._room_id is not None and event.room_id != self._room_id:
            # An auth edge into another room can only come from a broken or hostile
            # server; the event is ignored rather than trusted.
            logger.warning("state res: ignoring event %s from room %s", event_id,
                           event.room_id)
            return None
        return event

    async def fetch(self, event_id: str) -> Event | None:
        """`get`, loading the event first if needed."""
        await self.load((event_id,))
        return self.get(event_id)

    def auth_events_of(self, event: Event) -> list[Event]:
        """The loaded auth events of `event` (the implicit v12 create event included)."""
        out = []
        for aid in auth_event_ids(event):
            auth_event = self.get(aid)
            if auth_event is not None:
                out.append(auth_event)
        return out


def auth_event_ids(event: Event) -> tuple[str, ...]:
    """The event's auth events, with the create event made explicit for v12 rooms.

    From v12 the create event is not listed in `auth_events`: the room ID is its event ID
    with `!` for `$` (rooms/v12.md, auth rule 2), so it is implied by every other event.
    """
    version = event.room_version
    if (version.room_id_from_create_event
            and (event.type, event.state_key) != CREATE_KEY
            and event.room_id.startswith("!")):
        create_id = "$" + event.room_id[1:]
        if create_id not in event.auth_event_ids:
            return (*event.auth_event_ids, create_id)
    return event.auth_event_ids


def auth_map(events: Iterable[Event], *, skip_rejected: bool = False) -> dict[
        tuple[str, str], Event]:
    """`(type, state_key) -> event` for the state events among `events`."""
    out: dict[tuple[str, str], Event] = {}
    for event in events:
        if event.state_key is None or (skip_rejected and event.rejected_reason is not None):
            continue
        out[(event.type, event.state_key)] = event
    return out


async def auth_chain(source: EventSource, roots: Iterable[str], *,
                     include_roots: bool) -> set[str]:
    """Every event reachable from `roots` by `auth_events` edges.

    Breadth-first, one `load_events` batch per layer; each event is expanded once. An ID
    that cannot be loaded stays in the chain (it is referenced) but is not expanded.
    """
    roots = list(roots)
    seen: set[str] = set(roots) if include_roots else set()
    frontier = roots
    expanded: set[str] = set()
    while frontier:
        await source.load(frontier)
        next_frontier: list[str] = []
        for eid in frontier:
            if eid in expanded:
                continue
            expanded.add(eid)
            event = source.get(eid)
            if event is None:
                continue
            for aid in auth_event_ids(event):
                if aid not in seen:
                    seen.add(aid)
                    next_frontier.append(aid)
        frontier = next_frontier
    return seen


def state_event_ids(state_sets: Iterable[StateMap]) -> set[str]:
    """All event IDs appearing as values of the state maps."""
    out: set[str] = set()
    for state in state_sets:
        out.update(state.values())
    return out


async def pin_room(source: EventSource, unconflicted: Mapping[tuple[str, str], str],
                   conflicted_ids: Iterable[str]) -> None:
    """Tell `source` the room: the create event's (else the first conflicted event's)."""
    candidates = [unconflicted[CREATE_KEY]] if CREATE_KEY in unconflicted else []
    candidates += sorted(conflicted_ids)
    await source.load(candidates)
    for eid in candidates:
        event = source.get(eid)
        if event is not None:
            source.set_room(event.room_id)
            return
