"""State resolution v1 (rooms/v1.md, "State resolution"; room version 1 only).

Known to reset state in some cases (the spec's own warning); kept for version 1 rooms.
Where the spec is silent this follows Synapse: conflicts of one category are each
resolved against the state as it stood before that category, and when no candidate of
an ordinary key passes auth, the one with the least depth is kept.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence

from homeserver.event_auth import AuthError, auth_types_for_event, check_auth_rules
from homeserver.events import Event, StateMap
from homeserver.state_res.common import POWER_LEVELS_KEY, EventSource, pin_room

logger = logging.getLogger(__name__)

Key = tuple[str, str]


async def resolve(state_sets: Sequence[StateMap], source: EventSource) -> dict[Key, str]:
    """Resolve `state_sets` with the v1 algorithm."""
    if len(state_sets) == 1:
        return dict(state_sets[0])
    # Start by setting R to the union of the states, excluding any conflicting events.
    resolved, conflicted_ids = separate(state_sets)
    all_ids = set().union(*conflicted_ids.values()) if conflicted_ids else set()
    await pin_room(source, resolved, all_ids)
    await source.load(all_ids)

    # Candidates we cannot load, or that were rejected, take no part.
    conflicted: dict[Key, list[Event]] = {}
    for key, ids in conflicted_ids.items():
        events = [ev for ev in (source.get(eid) for eid in ids)
                  if ev is not None and ev.rejected_reason is None]
        if len(events) == 1:
            resolved[key] = events[0].event_id
        elif events:
            conflicted[key] = events

    # First power levels, then join rules, then memberships: each category is checked
    # against R as it stood after the previous category.
    categories = (
        [k for k in conflicted if k == POWER_LEVELS_KEY],
        [k for k in conflicted if k[0] == "m.room.join_rules"],
        [k for k in conflicted if k[0] == "m.room.member"],
    )
    for keys in categories:
        winners = {}
        for key in sorted(keys):
            winners[key] = (await _resolve_auth_events(source, conflicted[key],
                                                       resolved)).event_id
        resolved.update(winners)

    # No other events affect the auth rules: the deepest (then lowest sha1) that passes.
    winners = {}
    special = {k for keys in categories for k in keys}
    for key in sorted(k for k in conflicted if k not in special):
        winners[key] = (await _resolve_normal_events(source, conflicted[key],
                                                     resolved)).event_id
    resolved.update(winners)
    return resolved


def separate(state_sets: Sequence[StateMap]) -> tuple[dict[Key, str], dict[Key, set[str]]]:
    """Unconflicted entries and conflicting event IDs per key.

    A conflict is two states with different event IDs for one key; a key missing from
    some states is not a conflict in v1.
    """
    unconflicted: dict[Key, str] = {}
    conflicted: dict[Key, set[str]] = {}
    for state in state_sets:
        for key, event_id in state.items():
            if key in conflicted:
                conflicted[key].add(event_id)
            elif key not in unconflicted:
                unconflicted[key] = event_id
            elif unconflicted[key] != event_id:
                conflicted[key] = {unconflicted.pop(key), event_id}
    return unconflicted, conflicted


def _order(events: Sequence[Event]) -> list[Event]:
    """Descending depth, then ascending sha1(event_id)."""
    return sorted(events, key=lambda ev: (-ev.depth,
                                          hashlib.sha1(ev.event_id.encode()).hexdigest()))


async def _passes(source: EventSource, event: Event, state: Mapping[Key, str],
                  extra: Event | None = None) -> bool:
    """Whether the auth rules allow `event` in `state` (with `extra` applied on top)."""
    auth_events: dict[Key, Event] = {}
    for key in auth_types_for_event(event):
        if extra is not None and (extra.type, extra.state_key) == key:
            auth_events[key] = extra
            continue
        event_id = state.get(key)
        if event_id is None:
            continue
        auth_event = await source.fetch(event_id)
        if auth_event is not None and auth_event.rejected_reason is None:
            auth_events[key] = auth_event
    try:
        check_auth_rules(event, auth_events)
    except AuthError as e:
        logger.debug("state res v1: %s not allowed: %s", event.event_id, e)
        return False
    return True


async def _resolve_auth_events(source: EventSource, events: Sequence[Event],
                               state: Mapping[Key, str]) -> Event:
    """Ascending depth then descending sha1: take the first, then each next one that is
    allowed after the one before it, stopping at the first that is not."""
    ordered = list(reversed(_order(events)))
    chosen = ordered[0]
    for event in ordered[1:]:
        if not await _passes(source, event, state, extra=chosen):
            break
        chosen = event
    return chosen


async def _resolve_normal_events(source: EventSource, events: Sequence[Event],
                                 state: Mapping[Key, str]) -> Event:
    """The deepest (then lowest sha1) event that passes auth in `state`."""
    ordered = _order(events)
    for event in ordered:
        if await _passes(source, event, state):
            return event
    # None passes: keep the one with the least depth, as Synapse does.
    return ordered[-1]
