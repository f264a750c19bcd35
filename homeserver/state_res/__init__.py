"""State resolution: merge the room states at several forward extremities into one.

`resolve_events` picks the algorithm by `room_version.state_res`: v1 (room 1), v2
(rooms 2–11) or v2.1 (room 12). Pure functions over events; all I/O goes through the
`load_events` callback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from homeserver.events import Event, StateMap
from homeserver.room_versions import RoomVersion, StateResAlgorithm
from homeserver.state_res import v1, v2
from homeserver.state_res.common import EventSource, LoadEvents

__all__ = ["LoadEvents", "resolve_events"]


async def resolve_events(
    room_version: RoomVersion,
    state_sets: Sequence[StateMap],
    event_map: Mapping[str, Event],
    load_events: LoadEvents,
) -> dict[tuple[str, str], str]:
    """Resolve several room states into one.

    Args:
        room_version: the room's version; chooses the algorithm.
        state_sets: the states to merge, `(type, state_key) -> event_id` each.
        event_map: events already in memory (e.g. not yet persisted); not modified.
        load_events: loads further events by ID (state events and auth chains),
            returning the ones it has, rejected ones included with `rejected_reason`.

    Returns:
        The resolved state, `(type, state_key) -> event_id`.
    """
    if not state_sets:
        return {}
    source = EventSource(event_map, load_events)
    algorithm = room_version.state_res
    if algorithm == StateResAlgorithm.V1:
        return await v1.resolve(state_sets, source)
    return await v2.resolve(state_sets, source, v2_1=algorithm == StateResAlgorithm.V2_1)
