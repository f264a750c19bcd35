"""Room events: persisting an event with everything that changes with it, in one
transaction, and reading events back (cached: events are immutable)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import attrs

from homeserver.events import Event
from homeserver.room_versions import RoomVersion, get_room_version
from storage.caches import LruCache
from storage.database import DatabasePool, Transaction
from storage.recent_events import RecentRoomEvents
from storage.stores.push_actions import PushAction, insert_push_actions_txn
from storage.stores.relations import RelationsStore
from storage.stores.search import SearchStore
from storage.stores.state import StateKey, StateStore
from storage.stream import StreamIdGenerator

#: how many forward extremities a new local event references at most
MAX_PREV_EVENTS = 10


@attrs.frozen(slots=True)
class NewStateGroup:
    """A state group to create for the state after an event."""

    prev_group: int | None
    delta: Mapping[StateKey, str | None]
    full_state: Mapping[StateKey, str]


@attrs.frozen(slots=True)
class PersistContext:
    """What persisting one event changes besides the event itself."""

    #: the existing group holding the state after the event, or a new one to create
    state_group: int | None = None
    new_state_group: NewStateGroup | None = None
    #: (type, state_key) -> (event_id, membership) changes to the room's current state
    current_state_updates: Mapping[StateKey, tuple[str, str | None]] = attrs.Factory(dict)
    current_state_removals: tuple[StateKey, ...] = ()
    #: the membership target is one of our users (keeps local_current_membership)
    target_is_local: bool = False
    #: (user_id, device_id, txn_id) for idempotent client sends
    txn_key: tuple[str, str, str] | None = None
    internal_metadata: Mapping[str, Any] = attrs.Factory(dict)
    outlier: bool = False
    #: who the event notifies (written in the same transaction as the event)
    push_actions: tuple[PushAction, ...] = ()
    #: an older event fetched by backfill: placed in the history (a negative stream
    #: ordering, a state group) without touching current state or forward extremities;
    #: an outlier row of the same event is turned into this one
    backfilled: bool = False


class EventsStore:
    def __init__(self, db: DatabasePool, state: StateStore, search: SearchStore,
                 relations: RelationsStore) -> None:
        self.db = db
        self._state = state
        self._search = search
        self._relations = relations
        self._stream_ids = StreamIdGenerator(db, "events", "stream_ordering")
        self._event_cache: LruCache[str, Event] = LruCache(20_000)
        self._room_versions: dict[str, RoomVersion] = {}
        self._extremities_cache: LruCache[str, list[tuple[str, int]]] = LruCache(5000)
        self._backward_cache: LruCache[str, list[tuple[str, int]]] = LruCache(5000)
        self._local_membership_listeners: list[Callable[[str], None]] = []
        self._room_membership_listeners: list[Callable[[str], None]] = []
        #: the position of the newest event that changed a room's current membership (the
        #: boot position until one does): lets /sync skip membership queries
        self.last_membership_change = self._stream_ids.get_current_token()
        #: newest events per room, for /sync without the database
        self.recent = RecentRoomEvents(self._stream_ids.get_current_token())
        #: the lowest stream ordering given out so far (<= 0); backfilled events get
        #: decreasing negative orderings, below every event of the live stream
        self._backfill_min = min(0, db.run_sync("min_events_stream_ordering", _min_ordering_txn))
        # event ID -> the redaction that applies to it, or "" for none known
        self._redaction_cache: LruCache[str, str] = LruCache(50_000)

    def add_local_membership_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener(user_id)` after a local user's current membership changes."""
        self._local_membership_listeners.append(listener)

    def _note_membership_change(self, stream_ordering: int) -> None:
        self.last_membership_change = max(self.last_membership_change, stream_ordering)

    def _advance_extremities(self, room_id: str, event: Event) -> None:
        """After a new event: it replaces its prev events among the cached extremities
        (no query for the next event of the room)."""
        cached = self._extremities_cache.get(room_id)
        self._extremities_cache.invalidate(room_id)
        if cached is None:
            return
        prevs = set(event.prev_event_ids)
        # Deepest first; among equal depths the newest first (as the query orders them).
        updated = [(event.event_id, event.depth)] + [e for e in cached if e[0] not in prevs]
        updated.sort(key=lambda e: -e[1])
        self._extremities_cache.set(room_id, updated)

    def add_room_membership_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener(room_id)` after a room's current membership changes."""
        self._room_membership_listeners.append(listener)

    def get_room_max_stream_ordering(self) -> int:
        """The room-event stream position up to which every event is persisted."""
        return self._stream_ids.get_current_token()

    def get_room_min_stream_ordering(self) -> int:
        """A position just below every stored event, backfilled ones included (0 while
        nothing was backfilled): where paging forwards from the start begins."""
        return self._backfill_min - 1 if self._backfill_min < 0 else 0

    # -- writing --

    def reserve_backfill_orderings(self, count: int) -> list[int]:
        """`count` stream orderings below every one given out so far, ascending: a
        backfilled batch, persisted oldest first, takes them in order (unused ones are
        gaps, which paging does not mind)."""
        self._backfill_min -= count
        return list(range(self._backfill_min, self._backfill_min + count))

    async def persist_backfilled_event(self, event: Event, ctx: PersistContext,
                                       stream_ordering: int) -> None:
        """Persist an event fetched by backfill (`ctx.backfilled`) at an ordering from
        `reserve_backfill_orderings` (callers hold the room lock)."""
        assert ctx.backfilled and not ctx.outlier and stream_ordering < 0
        await self.db.run_interaction(
            "persist_backfilled_event", self._persist_event_txn, event, ctx, stream_ordering)
        self._event_cache.set(event.event_id, event)

    async def persist_event(self, event: Event, ctx: PersistContext) -> int:
        """Persist the event, its edges, state and membership; returns its stream ordering."""
        with self._stream_ids.get_next() as stream_ordering:
            await self.db.run_interaction(
                "persist_event", self._persist_event_txn, event, ctx, stream_ordering)
            # Before the position is released: readers holding it must find the event.
            self._event_cache.set(event.event_id, event)
            if not ctx.outlier:
                self.recent.add(event.room_id, event.event_id, stream_ordering, {
                    user_id: (notify, highlight, thread_id or "main")
                    for user_id, notify, highlight, thread_id in ctx.push_actions})
        return stream_ordering

    def _persist_event_txn(self, txn: Transaction, event: Event, ctx: PersistContext,
                           stream_ordering: int) -> None:
        room_id = event.room_id
        if not ctx.outlier:
            self._search.index_event_txn(txn, event, stream_ordering)
        if ctx.backfilled and txn.select_one(
                "SELECT 1 FROM events WHERE event_id = ? AND outlier = 1", (event.event_id,)):
            # Held as an outlier (auth or state of our join): it takes its place in the
            # history now; its edges are already stored.
            txn.execute("UPDATE events SET stream_ordering = ?, outlier = 0,"
                        " rejected_reason = ? WHERE event_id = ?",
                        (stream_ordering, event.rejected_reason, event.event_id))
            self._update_backward_extremities_txn(txn, event)
            self._persist_backfilled_rest_txn(txn, event, ctx, stream_ordering)
            self._relations.persist_event_txn(txn, event, stream_ordering, new_local=False)
            return
        if event.type == "m.room.create" and event.state_key == "" and not ctx.outlier \
                and not ctx.backfilled:
            txn.insert("rooms", {
                "room_id": room_id, "room_version": event.room_version.identifier,
                "creator": event.sender, "created_ts": event.origin_server_ts,
            })
        txn.insert("events", {
            "stream_ordering": stream_ordering, "event_id": event.event_id,
            "room_id": room_id, "type": event.type, "state_key": event.state_key,
            "sender": event.sender, "depth": event.depth,
            "origin_server_ts": event.origin_server_ts,
            "received_ts": event.origin_server_ts,
            "json": json.dumps(event.pdu_json, ensure_ascii=False, separators=(",", ":")),
            "internal_metadata": json.dumps(dict(ctx.internal_metadata)),
            "outlier": int(ctx.outlier), "rejected_reason": event.rejected_reason,
            "redacts": event.redacts,
        })
        if event.redacts is not None:
            txn.call_after(self._redaction_cache.invalidate, event.redacts)
        txn.executemany(
            "INSERT INTO event_edges (event_id, prev_event_id, room_id) VALUES (?, ?, ?)",
            [(event.event_id, p, room_id) for p in event.prev_event_ids])
        txn.executemany(
            "INSERT INTO event_auth (event_id, auth_id, room_id) VALUES (?, ?, ?)",
            [(event.event_id, a, room_id) for a in event.auth_event_ids])
        if ctx.txn_key is not None:
            user_id, device_id, txn_id = ctx.txn_key
            txn.insert("event_txn_ids", {
                "user_id": user_id, "device_id": device_id, "txn_id": txn_id,
                "event_id": event.event_id, "inserted_ts": event.origin_server_ts,
            })
        if ctx.outlier:
            return
        self._update_backward_extremities_txn(txn, event)
        self._relations.persist_event_txn(txn, event, stream_ordering,
                                          new_local=ctx.txn_key is not None)
        if ctx.backfilled:
            self._persist_backfilled_rest_txn(txn, event, ctx, stream_ordering)
            return
        if ctx.push_actions:
            insert_push_actions_txn(txn, room_id, event.event_id, stream_ordering,
                                    ctx.push_actions)

        # The new event replaces the extremities it points at.
        for prev in event.prev_event_ids:
            txn.execute("DELETE FROM event_forward_extremities WHERE room_id = ? AND event_id = ?",
                        (room_id, prev))
        txn.insert("event_forward_extremities", {"room_id": room_id, "event_id": event.event_id})
        txn.call_after(self._advance_extremities, room_id, event)

        group = ctx.state_group
        if ctx.new_state_group is not None:
            new = ctx.new_state_group
            group = self._state.create_group_txn(txn, room_id, event.event_id, new.prev_group,
                                                 new.delta, new.full_state)
        if group is not None:
            self._state.set_event_state_group_txn(txn, event.event_id, group)

        if any(t == "m.room.member" for t, _ in (*ctx.current_state_updates,
                                                 *ctx.current_state_removals)):
            for room_listener in self._room_membership_listeners:
                txn.call_after(room_listener, room_id)
            txn.call_after(self._note_membership_change, stream_ordering)
        if ctx.current_state_updates or ctx.current_state_removals:
            self._state.update_current_state_txn(txn, room_id, ctx.current_state_updates,
                                                 list(ctx.current_state_removals))

        if event.type == "m.room.member" and event.state_key is not None \
                and event.rejected_reason is None:
            membership = event.membership or ""
            content = event.content
            txn.insert("room_memberships", {
                "event_id": event.event_id, "user_id": event.state_key,
                "sender": event.sender, "room_id": room_id, "membership": membership,
                "stream_ordering": stream_ordering,
                "displayname": _str_or_none(content.get("displayname")),
                "avatar_url": _str_or_none(content.get("avatar_url")),
            })
            if ctx.target_is_local and (("m.room.member", event.state_key)
                                        in ctx.current_state_updates):
                txn.upsert("local_current_membership",
                           {"user_id": event.state_key, "room_id": room_id},
                           {"event_id": event.event_id, "membership": membership,
                            "stream_ordering": stream_ordering, "forgotten": 0})
                for listener in self._local_membership_listeners:
                    txn.call_after(listener, event.state_key)

    def _update_backward_extremities_txn(self, txn: Transaction, event: Event) -> None:
        """The event joins the room's history: it is no longer a backward extremity, and
        those of its prev events the history lacks become ones."""
        room_id = event.room_id
        txn.execute("DELETE FROM event_backward_extremities WHERE room_id = ? AND event_id = ?",
                    (room_id, event.event_id))
        changed = txn.rowcount > 0
        prevs = list(dict.fromkeys(event.prev_event_ids))
        if prevs:
            marks = ", ".join("?" for _ in prevs)
            held = {r[0] for r in txn.select_all(
                f"SELECT event_id FROM events WHERE event_id IN ({marks}) AND outlier = 0",
                prevs)}
            missing = [p for p in prevs if p not in held]
            if missing:
                txn.executemany(
                    "INSERT INTO event_backward_extremities (room_id, event_id) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING", [(room_id, p) for p in missing])
                changed = True
        if changed:
            txn.call_after(self._backward_cache.invalidate, room_id)

    def _persist_backfilled_rest_txn(self, txn: Transaction, event: Event,
                                     ctx: PersistContext, stream_ordering: int) -> None:
        """A backfilled event's state group and membership row; current state, forward
        extremities, local memberships and notifications are about the present and stay
        as they are."""
        group = ctx.state_group
        if ctx.new_state_group is not None:
            new = ctx.new_state_group
            group = self._state.create_group_txn(txn, event.room_id, event.event_id,
                                                 new.prev_group, new.delta, new.full_state)
        if group is not None:
            self._state.set_event_state_group_txn(txn, event.event_id, group)
        if event.type == "m.room.member" and event.state_key is not None \
                and event.rejected_reason is None:
            txn.insert("room_memberships", {
                "event_id": event.event_id, "user_id": event.state_key,
                "sender": event.sender, "room_id": event.room_id,
                "membership": event.membership or "", "stream_ordering": stream_ordering,
                "displayname": _str_or_none(event.content.get("displayname")),
                "avatar_url": _str_or_none(event.content.get("avatar_url")),
            })

    # -- reading --

    async def get_backward_extremities(self, room_id: str) -> list[tuple[str, int]]:
        """(event_id, depth) of the room's backward extremities (the prev events its
        history lacks), deepest first, where depth is that of the shallowest event of the
        history naming it: the missing events lie below it."""
        cached = self._backward_cache.get(room_id)
        if cached is not None:
            return cached
        seq = self._backward_cache.sequence
        rows = await self.db.execute(
            "get_backward_extremities",
            "SELECT b.event_id, MIN(e.depth) FROM event_backward_extremities b"
            " JOIN event_edges g ON g.prev_event_id = b.event_id AND g.room_id = b.room_id"
            " JOIN events e ON e.event_id = g.event_id AND e.outlier = 0"
            " WHERE b.room_id = ? GROUP BY b.event_id", room_id)
        result = sorted(((r[0], int(r[1])) for r in rows), key=lambda r: (-r[1], r[0]))
        self._backward_cache.set(room_id, result, expected_sequence=seq)
        return result

    async def get_non_outlier_ids(self, event_ids: Collection[str]) -> set[str]:
        """Those of the events that are in a room's history (not outliers)."""
        ids = list(event_ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.db.execute(
                "get_non_outlier_ids",
                f"SELECT event_id FROM events WHERE event_id IN ({marks}) AND outlier = 0",
                *chunk)
            found.update(r[0] for r in rows)
        return found

    async def get_room_version(self, room_id: str) -> RoomVersion | None:
        version = self._room_versions.get(room_id)
        if version is not None:
            return version
        rows = await self.db.execute(
            "get_room_version", "SELECT room_version FROM rooms WHERE room_id = ?", room_id)
        if not rows:
            return None
        version = get_room_version(rows[0][0])
        if version is not None:
            self._room_versions[room_id] = version
        return version

    async def get_event(self, event_id: str) -> Event | None:
        events = await self.get_events([event_id])
        return events.get(event_id)

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]:
        """The events we have of these IDs (missing ones are left out)."""
        result: dict[str, Event] = {}
        missing: list[str] = []
        for event_id in event_ids:
            cached = self._event_cache.get(event_id)
            if cached is not None:
                result[event_id] = cached
            else:
                missing.append(event_id)
        if missing:
            rows = await self.db.run_interaction("get_events", _fetch_events_txn, missing)
            for event_id, room_id, raw, rejected in rows:
                version = await self.get_room_version(room_id)
                if version is None:
                    continue
                event = Event.from_pdu(json.loads(raw), version, event_id=event_id)
                if rejected is not None:
                    event = attrs.evolve(event, rejected_reason=rejected)
                self._event_cache.set(event_id, event)
                result[event_id] = event
        return result

    async def get_forward_extremities(self, room_id: str) -> list[tuple[str, int]]:
        """(event_id, depth) of the room's forward extremities, deepest first."""
        cached = self._extremities_cache.get(room_id)
        if cached is not None:
            return cached
        seq = self._extremities_cache.sequence
        rows = await self.db.execute(
            "get_forward_extremities",
            "SELECT f.event_id, e.depth FROM event_forward_extremities f"
            " JOIN events e ON e.event_id = f.event_id"
            " WHERE f.room_id = ? ORDER BY e.depth DESC, e.stream_ordering DESC",
            room_id)
        result = [(r[0], int(r[1])) for r in rows]
        self._extremities_cache.set(room_id, result, expected_sequence=seq)
        return result

    async def get_event_id_for_txn(self, user_id: str, device_id: str,
                                   txn_id: str) -> str | None:
        rows = await self.db.execute(
            "get_event_id_for_txn",
            "SELECT event_id FROM event_txn_ids WHERE user_id = ? AND device_id = ?"
            " AND txn_id = ?", user_id, device_id, txn_id)
        return rows[0][0] if rows else None

    async def get_redactions(self, event_ids: Collection[str]) -> dict[str, str]:
        """For each given event that a stored redaction targets: the redaction's event ID."""
        result: dict[str, str] = {}
        missing: list[str] = []
        for event_id in event_ids:
            known = self._redaction_cache.get(event_id)
            if known is None:
                missing.append(event_id)
            elif known:
                result[event_id] = known
        if not missing:
            return result
        seq = self._redaction_cache.sequence
        marks = ", ".join("?" for _ in missing)
        rows = await self.db.execute(
            "get_redactions",
            f"SELECT redacts, event_id FROM events WHERE redacts IN ({marks})"
            " AND rejected_reason IS NULL ORDER BY stream_ordering",
            *missing)
        found = {target: redaction for target, redaction in rows}
        for event_id in missing:
            self._redaction_cache.set(event_id, found.get(event_id, ""),
                                      expected_sequence=seq)
        result.update(found)
        return result

    async def get_txn_ids_for_device(self, user_id: str, device_id: str,
                                     event_ids: Collection[str]) -> dict[str, str]:
        """event_id -> the transaction ID this device sent it with (for local echo)."""
        result: dict[str, str] = {}
        ids = list(event_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.db.execute(
                "get_txn_ids_for_device",
                f"SELECT event_id, txn_id FROM event_txn_ids WHERE event_id IN ({marks})"
                " AND user_id = ? AND device_id = ?", *chunk, user_id, device_id)
            result.update({r[0]: r[1] for r in rows})
        return result

    async def get_stream_ordering(self, event_id: str) -> int | None:
        rows = await self.db.execute(
            "get_stream_ordering", "SELECT stream_ordering FROM events WHERE event_id = ?",
            event_id)
        return int(rows[0][0]) if rows else None


def _fetch_events_txn(txn: Transaction, event_ids: list[str]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(0, len(event_ids), 500):
        chunk = event_ids[i:i + 500]
        marks = ", ".join("?" for _ in chunk)
        rows.extend(txn.select_all(
            f"SELECT event_id, room_id, json, rejected_reason FROM events"
            f" WHERE event_id IN ({marks})", chunk))
    return rows


def _min_ordering_txn(txn: Transaction) -> int:
    row = txn.select_one("SELECT COALESCE(MIN(stream_ordering), 0) FROM events")
    return int(row[0]) if row else 0


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
