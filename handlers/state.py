"""The room state before a new event: from its prev events' state groups, resolved with
state resolution when they differ."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from homeserver.events import Event
from homeserver.room_versions import RoomVersion
from homeserver.state_res import resolve_events

if TYPE_CHECKING:
    from homeserver.server import HomeServer

StateKey = tuple[str, str]


@attrs.frozen(slots=True)
class StateBefore:
    #: the stored group that holds exactly this state, if there is one
    group: int | None
    state: Mapping[StateKey, str]


class StateHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._state = stores.state
        self._events = stores.events

    async def state_before(self, room_version: RoomVersion,
                           prev_event_ids: Sequence[str]) -> StateBefore:
        """The state the new event is authorised against (and builds on)."""
        if not prev_event_ids:
            return StateBefore(None, {})
        groups = []
        for prev in prev_event_ids:
            group = await self._state.get_state_group_for_event(prev)
            if group is None:
                raise RuntimeError(f"no state stored after prev event {prev}")
            groups.append(group)
        unique = list(dict.fromkeys(groups))
        if len(unique) == 1:
            return StateBefore(unique[0], await self._state.get_state_for_group(unique[0]))
        states = [await self._state.get_state_for_group(g) for g in unique]
        resolved = await resolve_events(room_version, states, {}, self._load_events)
        return StateBefore(None, resolved)

    async def _load_events(self, event_ids: Collection[str]) -> dict[str, Event]:
        return await self._events.get_events(event_ids)


async def current_state_delta(load_events: Callable[[Collection[str]], Awaitable[Mapping[str, Event]]],
                              event: Event, new_state: Mapping[StateKey, str],
                              current: Mapping[StateKey, str]
                              ) -> tuple[dict[StateKey, tuple[str, str | None]],
                                         tuple[StateKey, ...]]:
    """What persisting `event` changes in the room's current state: (key -> (event ID,
    membership for member events)) updates, and the keys removed."""
    changed = {k: v for k, v in new_state.items() if current.get(k) != v}
    removals = tuple(k for k in current if k not in new_state)
    members = await load_events([v for k, v in changed.items()
                                 if k[0] == "m.room.member" and v != event.event_id])
    updates: dict[StateKey, tuple[str, str | None]] = {}
    for key, event_id in changed.items():
        membership = None
        if key[0] == "m.room.member":
            ev = event if event_id == event.event_id else members.get(event_id)
            membership = ev.membership if ev is not None else None
        updates[key] = (event_id, membership)
    return updates, removals
