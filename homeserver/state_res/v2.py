"""State resolution v2 (rooms/v2.md, rooms 2–11) and v2.1 (rooms/v12.md, room 12).

v2.1 is v2 with two changes, both taken when `v2_1` is set:
  * the iterative auth checks of step 2 start from an empty state map, not from the
    unconflicted state map;
  * the full conflicted set also holds the *conflicted state subgraph*.

Where the spec leaves room, this follows Synapse so that servers converge:
  * each state set's auth chain includes the state events themselves;
  * `m.room.create` counts as a power event;
  * the auth DAG used for the power ordering only walks through events of the full
    conflicted set;
  * events already rejected are never admitted into the resolved state.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

from homeserver.event_auth import (
    AuthError,
    auth_types_for_event,
    check_auth_rules,
    get_user_power_level,
)
from homeserver.events import Event, StateMap
from homeserver.state_res.common import (
    CREATE_KEY,
    JOIN_RULES_KEY,
    POWER_LEVELS_KEY,
    EventSource,
    auth_chain,
    auth_event_ids,
    auth_map,
    pin_room,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str]
INFINITY = float("inf")


async def resolve(state_sets: Sequence[StateMap], source: EventSource, *,
                  v2_1: bool) -> dict[Key, str]:
    """Resolve `state_sets` with the v2 algorithm (v2.1 if `v2_1`)."""
    unconflicted, conflicted = separate(state_sets)
    if not conflicted:
        return unconflicted
    conflicted_ids = set().union(*conflicted.values())
    await pin_room(source, unconflicted, conflicted_ids)

    # Full conflicted set: conflicted state set ∪ auth difference (∪ subgraph in v2.1).
    full = conflicted_ids | await auth_difference(source, state_sets)
    if v2_1:
        full |= await conflicted_subgraph(source, conflicted_ids)
    await source.load(full)
    full = {eid for eid in full if source.get(eid) is not None}
    logger.debug("state res: %d conflicted keys, full conflicted set of %d",
                 len(conflicted), len(full))

    # 1. The power events of the full conflicted set and their auth chains within it,
    #    in reverse topological power ordering.
    power_ids = [eid for eid in full if is_power_event(_known(source, eid))]
    sorted_power = reverse_topological_power_order(source, power_ids, full)

    # 2. Iterative auth checks from the unconflicted state map (v2.1: an empty map).
    partial = await iterative_auth_checks(source, sorted_power, {} if v2_1 else unconflicted)

    # 3. The remaining events in mainline order based on the partial power levels.
    picked = set(sorted_power)
    leftover = [eid for eid in full if eid not in picked]
    ordered = await mainline_order(source, leftover, partial.get(POWER_LEVELS_KEY))

    # 4. Iterative auth checks on the partial state with those events.
    resolved = await iterative_auth_checks(source, ordered, partial)

    # 5. The unconflicted state map has the last word.
    resolved.update(unconflicted)
    return resolved


def separate(state_sets: Sequence[StateMap]) -> tuple[dict[Key, str], dict[Key, set[str]]]:
    """Split into the unconflicted state map and the conflicted state set (by key).

    A key is unconflicted only when every state map has it with the same event; a key
    missing from some map is conflicted between the maps that have it.
    """
    unconflicted: dict[Key, str] = {}
    conflicted: dict[Key, set[str]] = {}
    keys: set[Key] = set()
    for state in state_sets:
        keys.update(state)
    for key in keys:
        values = {state.get(key) for state in state_sets}
        if len(values) == 1 and None not in values:
            unconflicted[key] = values.pop()  # type: ignore[assignment]
        else:
            conflicted[key] = {v for v in values if v is not None}
    return unconflicted, conflicted


async def auth_difference(source: EventSource, state_sets: Sequence[StateMap]) -> set[str]:
    """∪ Cᵢ − ∩ Cᵢ where Cᵢ is the full auth chain of state set i."""
    chains = [await auth_chain(source, state.values(), include_roots=True)
              for state in state_sets]
    return set[str]().union(*chains) - chains[0].intersection(*chains[1:])


async def conflicted_subgraph(source: EventSource, conflicted_ids: set[str]) -> set[str]:
    """Events on an `auth_events` path between two conflicted events, endpoints included.

    An event is on such a path iff it is in the auth chain of a conflicted event (reached
    walking backwards) and a conflicted event is in its own auth chain (it is reached
    walking the reversed edges forwards from a conflicted event).
    """
    backwards = await auth_chain(source, conflicted_ids, include_roots=True)
    children: dict[str, list[str]] = {}
    for eid in backwards:
        event = source.get(eid)
        if event is None:
            continue
        for aid in auth_event_ids(event):
            if aid in backwards:
                children.setdefault(aid, []).append(eid)
    subgraph = set(conflicted_ids)
    stack = list(conflicted_ids)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in subgraph:
                subgraph.add(child)
                stack.append(child)
    return subgraph


def is_power_event(event: Event) -> bool:
    """Power levels, join rules (and create), or a kick or ban of someone else."""
    if event.state_key is None:
        return False
    if (event.type, event.state_key) in (POWER_LEVELS_KEY, JOIN_RULES_KEY, CREATE_KEY):
        return True
    return (event.type == "m.room.member" and event.membership in ("leave", "ban")
            and event.sender != event.state_key)


def reverse_topological_power_order(source: EventSource, power_ids: Iterable[str],
                                    full: set[str]) -> list[str]:
    """Kahn's algorithm over the auth DAG of `power_ids` within `full`, earliest first.

    Among the candidates, the smallest by (higher sender power first, origin_server_ts,
    event_id) goes next. All events involved are already loaded.
    """
    graph: dict[str, list[str]] = {}
    stack = list(power_ids)
    while stack:
        eid = stack.pop()
        if eid in graph:
            continue
        edges = graph[eid] = []
        for aid in auth_event_ids(_known(source, eid)):
            if aid in full:
                edges.append(aid)
                if aid not in graph:
                    stack.append(aid)

    def order_key(eid: str) -> tuple[float, int, str]:
        event = _known(source, eid)
        return (-sender_power_level(source, event), event.origin_server_ts, eid)

    return lexicographic_topological_sort(graph, order_key)


def lexicographic_topological_sort(
        graph: Mapping[str, Sequence[str]],
        key: Callable[[str], tuple[float, int, str]]) -> list[str]:
    """Order `graph`'s nodes so that a node's edges come before it, smallest key first.

    `graph` maps a node to the nodes it points at (its auth events), all of which must be
    nodes of `graph`. Nodes on a cycle (impossible with hash IDs) are left out.
    """
    pending = {node: len(set(edges)) for node, edges in graph.items()}
    dependants: dict[str, list[str]] = {node: [] for node in graph}
    for node, edges in graph.items():
        for target in set(edges):
            dependants[target].append(node)
    ready = [(key(node), node) for node, count in pending.items() if count == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        out.append(node)
        for dependant in dependants[node]:
            pending[dependant] -= 1
            if pending[dependant] == 0:
                heapq.heappush(ready, (key(dependant), dependant))
    return out


def sender_power_level(source: EventSource, event: Event) -> float:
    """The sender's power level according to the event's own auth events."""
    try:
        return get_user_power_level(event.sender, auth_map(source.auth_events_of(event)))
    except (TypeError, ValueError):
        # Malformed power levels in someone's auth events must not abort resolution.
        return 0


async def iterative_auth_checks(source: EventSource, event_ids: Sequence[str],
                                base_state: Mapping[Key, str]) -> dict[Key, str]:
    """Apply each event in turn to the state if the auth rules allow it there.

    The auth events are the state's entries for the event's auth types, falling back to
    the event's own (non-rejected) auth events for keys the state lacks.
    """
    state = dict(base_state)
    events = [ev for ev in (source.get(eid) for eid in event_ids) if ev is not None]
    # Load what the checks need in two batches rather than one per event.
    await source.load(aid for ev in events for aid in auth_event_ids(ev))
    await source.load(state[key] for ev in events for key in auth_types_for_event(ev)
                      if key in state)
    for event in events:
        if event.state_key is None or event.rejected_reason is not None:
            # A rejected event is never admitted, even if it would pass here.
            continue
        auth_events = auth_map(source.auth_events_of(event), skip_rejected=True)
        for key in auth_types_for_event(event):
            current_id = state.get(key)
            if current_id is None:
                continue
            current = await source.fetch(current_id)
            if current is not None and current.rejected_reason is None:
                auth_events[key] = current
        try:
            check_auth_rules(event, auth_events)
        except AuthError as e:
            logger.debug("state res: %s not allowed: %s", event.event_id, e)
            continue
        state[(event.type, event.state_key)] = event.event_id
    return state


async def mainline_order(source: EventSource, event_ids: Sequence[str],
                         power_levels_id: str | None) -> list[str]:
    """Sort by mainline position (greater first), then origin_server_ts, then event_id."""
    if not event_ids:
        return []
    # The mainline of P₀: P₀, P₁, … each the power levels in the previous one's auth events.
    index: dict[str, int] = {}
    current = power_levels_id
    while current is not None and current not in index:
        event = await source.fetch(current)
        if event is None:
            break
        index[current] = len(index)
        current = await _power_levels_parent(source, event)

    memo: dict[str, float] = {}

    async def position(event: Event) -> float:
        # e₁, e₂, …: walk up until an event of the mainline (or a memoized walk) is met.
        walked: list[str] = []
        found = INFINITY
        current = await _power_levels_parent(source, event)
        while current is not None:
            if current in index:
                found = index[current]
                break
            if current in memo:
                found = memo[current]
                break
            if current in walked:
                break  # a cycle: no mainline event is reachable
            walked.append(current)
            parent = await source.fetch(current)
            current = None if parent is None else await _power_levels_parent(source, parent)
        for eid in walked:
            memo[eid] = found
        return found

    keys: dict[str, tuple[float, int, str]] = {}
    for eid in event_ids:
        event = _known(source, eid)
        keys[eid] = (-(await position(event)), event.origin_server_ts, eid)
    return sorted(event_ids, key=keys.__getitem__)


async def _power_levels_parent(source: EventSource, event: Event) -> str | None:
    """The ID of the `m.room.power_levels` event among the event's auth events."""
    ids = auth_event_ids(event)
    await source.load(ids)
    for aid in ids:
        auth_event = source.get(aid)
        if auth_event is not None and (auth_event.type, auth_event.state_key) \
                == POWER_LEVELS_KEY:
            return aid
    return None


def _known(source: EventSource, event_id: str) -> Event:
    event = source.get(event_id)
    assert event is not None, event_id
    return event
