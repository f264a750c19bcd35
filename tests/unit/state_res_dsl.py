"""A tiny DSL for state resolution tests: named events, DAG edges, expected state.

A scenario is a list of event descriptions (`Ev`) and chains of `prev_events` edges, each
written newest first: `["END", "MB", "PA", "START"]` means END's prev is MB, MB's is PA…
The room's first events (`INITIAL`) form a chain ending at START. Events get IDs
`$NAME:example.com`, timestamps in order of definition, and auth events chosen from the
state before them; at a merge the state is resolved with the algorithm under test.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from homeserver.event_auth import auth_types_for_event
from homeserver.events import Event
from homeserver.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.state_res import resolve_events

ALICE = "@alice:example.com"
BOB = "@bob:example.com"
CHARLIE = "@charlie:example.com"
EVELYN = "@evelyn:example.com"
ZARA = "@zara:example.com"

Key = tuple[str, str]


@attrs.frozen
class Ev:
    """One named event of a scenario."""

    name: str
    sender: str
    type: str
    state_key: str | None = None
    content: Mapping[str, Any] = attrs.field(factory=dict)
    rejected: bool = False


def create() -> Ev:
    return Ev("CREATE", ALICE, "m.room.create", "", {"creator": ALICE})


def member(name: str, sender: str, membership: str, target: str | None = None) -> Ev:
    return Ev(name, sender, "m.room.member", target or sender, {"membership": membership})


def power(name: str, sender: str, users: Mapping[str, int], **levels: int) -> Ev:
    return Ev(name, sender, "m.room.power_levels", "", {"users": dict(users), **levels})


def join_rules(name: str, sender: str, rule: str) -> Ev:
    return Ev(name, sender, "m.room.join_rules", "", {"join_rule": rule})


def topic(name: str, sender: str, rejected: bool = False) -> Ev:
    return Ev(name, sender, "m.room.topic", "", {"topic": name}, rejected)


def message(name: str, sender: str = ALICE) -> Ev:
    return Ev(name, sender, "m.room.message", None, {"body": name})


INITIAL = [
    create(),
    member("IMA", ALICE, "join"),
    power("IPOWER", ALICE, {ALICE: 100}),
    join_rules("IJR", ALICE, "public"),
    member("IMB", BOB, "join"),
    member("IMC", CHARLIE, "join"),
    member("IMZ", ZARA, "join"),
    message("START"),
]


def run(coro: Any) -> Any:
    """Run a coroutine that never waits on the reactor; return its result."""
    results: list[Any] = []
    Deferred.fromCoroutine(coro).addBoth(results.append)
    assert results, "coroutine did not complete synchronously"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def eid(name: str) -> str:
    return f"${name}:example.com"


class Room:
    """Events of one room built from a scenario, with the state after each of them."""

    def __init__(self, version: str) -> None:
        self.version = KNOWN_ROOM_VERSIONS[version]
        self.room_id = ("!CREATE:example.com" if self.version.room_id_from_create_event
                        else "!room:example.com")
        self.events: dict[str, Event] = {}
        self.state_after: dict[str, dict[Key, str]] = {}
        self.load_calls: list[set[str]] = []
        self._ts: dict[str, int] = {}

    # -- building ------------------------------------------------------------------
    def build(self, scenario: Sequence[Ev], edges: Sequence[Sequence[str]]) -> dict[Key, str]:
        """Build INITIAL, the scenario and END; return the state at END."""
        specs = {ev.name: ev for ev in [*INITIAL, *scenario, message("END")]}
        self._ts = {name: i for i, name in enumerate(specs)}
        prevs: dict[str, list[str]] = {name: [] for name in specs}
        for before, after in zip(INITIAL[1:], INITIAL, strict=False):
            prevs[before.name].append(after.name)
        for chain in edges:
            for newer, older in zip(chain, chain[1:], strict=False):
                if older not in prevs[newer]:
                    prevs[newer].append(older)
        for name in _topological(prevs, list(specs)):
            self.add(specs[name], prevs[name])
        return self.state_after["END"]

    def add(self, spec: Ev, prev: Sequence[str]) -> Event:
        """Add one event after `prev`, auth events picked from the state before it."""
        before = self.resolve([self.state_after[p] for p in prev]) if prev else {}
        version = self.version
        content = dict(spec.content)
        if spec.type == "m.room.create":
            content["room_version"] = version.identifier
            if version.implicit_room_creator:
                content.pop("creator", None)
        if spec.type == "m.room.power_levels" and version.privileged_creators:
            # v12 creators have infinite power and may not be listed.
            content["users"] = {u: v for u, v in content["users"].items() if u != ALICE}
        event = Event(
            event_id=eid(spec.name), room_id=self.room_id, type=spec.type,
            state_key=spec.state_key, sender=spec.sender, content=content,
            prev_event_ids=tuple(eid(p) for p in prev), auth_event_ids=(),
            depth=1 + max((self.events[p].depth for p in prev), default=0),
            origin_server_ts=self._ts.get(spec.name, len(self.events)),
            room_version=version,
            rejected_reason="test: rejected" if spec.rejected else None,
        )
        keys = sorted(auth_types_for_event(event))
        if version.room_id_from_create_event:
            keys = [k for k in keys if k != ("m.room.create", "")]
        event = attrs.evolve(event, auth_event_ids=tuple(before[k] for k in keys
                                                         if k in before))
        self.events[spec.name] = event
        after = dict(before)
        if event.state_key is not None:
            after[(event.type, event.state_key)] = event.event_id
        self.state_after[spec.name] = after
        return event

    # -- resolving -----------------------------------------------------------------
    def resolve(self, state_sets: Sequence[Mapping[Key, str]],
                event_map: Mapping[str, Event] | None = None) -> dict[Key, str]:
        """Resolve with the room's algorithm, loading every event through `load`."""
        if len(state_sets) == 1:
            return dict(state_sets[0])
        return run(resolve_events(self.version, state_sets, event_map or {}, self.load))

    async def load(self, event_ids: Collection[str]) -> dict[str, Event]:
        self.load_calls.append(set(event_ids))
        by_id = {ev.event_id: ev for ev in self.events.values()}
        return {i: by_id[i] for i in event_ids if i in by_id}

    # -- expectations --------------------------------------------------------------
    def state_with(self, names: Iterable[str], base: str = "START") -> dict[Key, str]:
        """The state after `base` with the named events applied on top."""
        state = dict(self.state_after[base])
        for name in names:
            event = self.events[name]
            assert event.state_key is not None
            state[(event.type, event.state_key)] = event.event_id
        return state

    def key(self, name: str) -> Key:
        event = self.events[name]
        assert event.state_key is not None
        return (event.type, event.state_key)


def _topological(prevs: Mapping[str, Sequence[str]], order: Sequence[str]) -> list[str]:
    """Parents before children; ties in definition order."""
    done: set[str] = set()
    out: list[str] = []
    while len(out) < len(order):
        progressed = False
        for name in order:
            if name not in done and all(p in done for p in prevs[name]):
                done.add(name)
                out.append(name)
                progressed = True
                break
        assert progressed, "cycle in scenario edges"
    return out
