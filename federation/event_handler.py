"""Events from other servers: checking them and adding them to our copy of the room.

Checks on receipt (server-server spec, "Checks performed on receipt of a PDU"): valid
format and canonical JSON, signatures of the sender's server (and, for v1/v2 event IDs, of
the event ID's server), the content hash (a mismatch keeps only the redacted event), the
auth rules against the event's own auth events and against the state before it. An event
that passes those but not the current state is soft-failed: stored, never shown to
clients, never a forward extremity.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from federation.keyring import KeyRingError
from federation.pdu_limits import check_pdu_limits
from handlers.state import StateBefore, current_state_delta
from homeserver.event_auth import (
    AuthError,
    MissingAuthEvents,
    auth_types_for_event,
    check_auth_rules,
    select_auth_events,
)
from homeserver.event_hashing import check_canonical_json, check_content_hash
from homeserver.events import Event
from homeserver.identifiers import UserID
from homeserver.redaction import prune_event_dict
from homeserver.room_versions import EventFormat, RoomVersion
from homeserver.state_res import resolve_events
from storage.stores.events import NewStateGroup, PersistContext

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]

#: how many missing prev events we ask the sender for at most (one request per gap)
MISSING_EVENTS_LIMIT = 10
#: how many events of a `/state_ids` answer we fetch one by one with `/event`; when more
#: are unknown, one `/state` request brings them all
MAX_EVENT_FETCHES = 10
#: the most events of an `/event_auth` answer we check, when a PDU cites auth events
#: we do not have
MAX_AUTH_CHAIN_FETCH = 200
#: seconds we wait for each gap-filling request
GAP_REQUEST_TIMEOUT = 30.0
#: gaps we try to fill for one origin per `GAP_BUDGET_WINDOW_MS`; beyond that, events
#: with unknown prev events are handled without fetching anything
GAP_FILLS_PER_ORIGIN = 10
GAP_BUDGET_WINDOW_MS = 60_000


class InvalidPdu(Exception):
    """A PDU that fails the checks on receipt."""


class FederationEventHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._clock = hs.get_clock()
        self._keyring = hs.get_keyring()
        stores = hs.get_datastores()
        self._events = stores.events
        self._state_store = stores.state
        self._rooms = stores.rooms
        self._state = hs.get_state_handler()
        self._creation = hs.get_event_creation_handler()
        self._notifier = hs.get_notifier()
        self._gap_fills: dict[str, deque[int]] = {}

    @contextlib.asynccontextmanager
    async def room_lock(self, room_id: str) -> AsyncIterator[None]:
        """The per-room lock local event creation uses too."""
        async with self._creation.room_lock(room_id):
            yield

    # -- checks --

    async def check_pdu(self, pdu: dict[str, Any], room_version: RoomVersion) -> Event:
        """Format, signature and content-hash checks.

        Raises:
            InvalidPdu: malformed, or not signed by the servers that must sign it.
        """
        check_pdu_limits(pdu, InvalidPdu)
        if not isinstance(pdu, dict):
            raise InvalidPdu("PDU is not an object")
        try:
            event = Event.from_pdu(pdu, room_version)
            check_canonical_json(pdu, room_version)
            UserID.parse(event.sender)
        except Exception as e:  # noqa: BLE001 - any malformed field
            raise InvalidPdu(f"malformed PDU: {e}") from None
        redacted = prune_event_dict(pdu, room_version)
        servers = {event.sender.split(":", 1)[1]}
        if room_version.event_format == EventFormat.V1 and ":" in event.event_id:
            servers.add(event.event_id.split(":", 1)[1])
        via = event.content.get("join_authorised_via_users_server")
        if room_version.restricted_join_rule and event.type == "m.room.member" \
                and event.membership == "join" and isinstance(via, str) and ":" in via:
            # A restricted join needs the signature of the authorising user's server.
            servers.add(via.split(":", 1)[1])
        min_ts = event.origin_server_ts if room_version.enforce_key_validity else 0
        for server in servers:
            try:
                await self._keyring.verify_json_for_server(server, redacted, min_ts)
            except KeyRingError as e:
                raise InvalidPdu(f"{event.event_id}: bad signature from {server}: {e}") from None
        if not check_content_hash(pdu):
            logger.warning("Content hash mismatch on %s: keeping the redacted event",
                           event.event_id)
            event = Event.from_pdu(redacted, room_version, event_id=event.event_id)
        return event

    async def _auth_against_own_auth_events(self, event: Event) -> str | None:
        """The reason the event fails against the auth events it names (the rules on the
        list itself, then the auth rules over it), or None.

        Raises:
            MissingAuthEvents: some of its auth events are unknown here.
        """
        try:
            if event.type == "m.room.create" and event.state_key == "":
                check_auth_rules(event, {})
                return None
            cited = await self._events.get_events(event.auth_event_ids)
            create = await self._create_event(event.room_id) \
                if event.room_version.room_id_from_create_event else None
            check_auth_rules(event, select_auth_events(event, cited, create))
        except MissingAuthEvents:
            raise
        except AuthError as e:
            return e.msg
        return None

    async def prev_events_failure(self, event: Event) -> str | None:
        """Why the event's known prev events disqualify it (one of another room), or None."""
        prevs = await self._events.get_events(event.prev_event_ids)
        strangers = [p.event_id for p in prevs.values() if p.room_id != event.room_id]
        return f"prev events from another room: {strangers[:3]}" if strangers else None

    async def auth_failure(self, event: Event, state_before: Mapping[StateKey, str]
                           ) -> str | None:
        """Why the event fails its own auth events (unknown ones included) or the auth
        rules against the state before it; None if it passes (backfill checks events with
        this, after `prev_events_failure`)."""
        try:
            own = await self._auth_against_own_auth_events(event)
        except MissingAuthEvents as e:
            own = e.msg
        return own or await self._auth_against_state(event, state_before)

    async def _create_event(self, room_id: str) -> Event | None:
        # v12 room IDs are the create event's ID with `!` for `$`.
        return await self._events.get_event("$" + room_id[1:])

    async def _auth_against_state(self, event: Event, state: Mapping[StateKey, str]
                                  ) -> str | None:
        wanted = [state[k] for k in auth_types_for_event(event) if k in state]
        create_key = ("m.room.create", "")
        if create_key in state:
            wanted.append(state[create_key])
        loaded = await self._events.get_events(wanted)
        auth_map = {ev.state_pair(): ev for ev in loaded.values() if ev.state_key is not None}
        try:
            check_auth_rules(event, auth_map)
        except AuthError as e:
            return e.msg
        return None

    # -- joining a remote room --

    async def persist_outliers(self, events: Collection[Event]) -> None:
        """Store events we only need as auth or state: no state of their own, not in any
        timeline. Each is checked like a received PDU against its own auth events (the
        rules on the list included), auth events first: failing ones are stored rejected,
        those citing events we do not have are dropped. The caller has checked signatures,
        hashes and the room."""
        unique = list({e.event_id: e for e in events}.values())
        known = await self._events.get_events([e.event_id for e in unique])
        for event in _auth_order([e for e in unique if e.event_id not in known]):
            try:
                reason = await self._auth_against_own_auth_events(event)
            except MissingAuthEvents as e:
                logger.info("Dropping outlier %s: %s", event.event_id, e.msg)
                continue
            if reason is not None:
                logger.info("Rejecting outlier %s: %s", event.event_id, reason)
                event = _rejected(event, reason)
            await self._events.persist_event(event, PersistContext(outlier=True))

    async def persist_remote_join(self, room_version: RoomVersion, join_event: Event,
                                  state: list[Event], auth_chain: list[Event]) -> int:
        """Add a room we join through another server: its state, auth chain and our join.

        Raises:
            InvalidPdu: the join does not pass the auth rules against the given state.
        """
        room_id = join_event.room_id
        async with self.room_lock(room_id):
            create = next((e for e in state if e.type == "m.room.create"
                           and e.state_key == ""), None)
            if create is None:
                raise InvalidPdu("the room state has no m.room.create event")
            await self._rooms.store_remote_room(room_id, room_version.identifier,
                                                create.sender, create.origin_server_ts)
            await self.persist_outliers([*auth_chain, *state])
            state_before: dict[StateKey, str] = {}
            stored = await self._events.get_events([e.event_id for e in state])
            for event in state:
                kept = stored.get(event.event_id)
                if kept is not None and kept.state_key is not None \
                        and kept.rejected_reason is None and kept.room_id == room_id:
                    state_before[kept.state_pair()] = kept.event_id
            try:
                reason = (await self._auth_against_own_auth_events(join_event)
                          or await self._auth_against_state(join_event, state_before))
            except MissingAuthEvents as e:
                reason = e.msg
            if reason is not None:
                raise InvalidPdu(f"join refused by the room's auth rules: {reason}")
            current = await self._state_store.get_current_state_ids(room_id)
            ctx = await self._context_for(join_event, None, state_before, current,
                                          other_extremities=[])
            stream_ordering = await self._events.persist_event(join_event, ctx)
        self._notifier.on_room_event(join_event, stream_ordering)
        return stream_ordering

    # -- events of rooms we are in --

    async def on_receive_pdu(self, origin: str, event: Event,
                             fetch_missing: bool = True) -> None:
        """Add an event of a room we are in, fetching missing prev events from `origin`
        (one bounded gap fill per event, within the origin's budget).

        Raises:
            InvalidPdu: unknown room, or the event fails its prev events, its auth events
                or its state.
        """
        room_version = await self._events.get_room_version(event.room_id)
        if room_version is None:
            raise InvalidPdu(f"unknown room {event.room_id}")
        if await self._events.get_stream_ordering(event.event_id) is not None:
            return  # cheap early answer; checked again under the lock
        reason = await self.prev_events_failure(event)
        if reason is not None:
            raise InvalidPdu(f"{event.event_id} refused: {reason}")
        gap_states: list[Mapping[StateKey, str]] = []
        if fetch_missing:
            gap_states = await self._fill_gap(origin, event, room_version)
            await self._fetch_missing_auth_events(origin, event, room_version)
        async with self.room_lock(event.room_id):
            # Inside the lock, so that one event delivered twice at once is stored once.
            if await self._events.get_stream_ordering(event.event_id) is not None:
                return
            await self._persist_received(event, room_version, gap_states)

    async def _have_state_for(self, event_ids: Collection[str]) -> set[str]:
        groups = await self._state_store.get_state_groups_for_events(list(event_ids))
        return set(groups)

    def _take_gap_budget(self, origin: str) -> bool:
        """Whether `origin` may make us fill one more gap now (sliding window)."""
        now = self._clock.time_msec()
        recent = self._gap_fills.setdefault(origin, deque())
        while recent and recent[0] <= now - GAP_BUDGET_WINDOW_MS:
            recent.popleft()
        if len(recent) >= GAP_FILLS_PER_ORIGIN:
            return False
        recent.append(now)
        return True

    async def _fill_gap(self, origin: str, event: Event, room_version: RoomVersion
                        ) -> list[Mapping[StateKey, str]]:
        """For an event with prev events we hold no state for: one `/get_missing_events`,
        then, if some are still missing, the state after one of them (one state fetch).
        Returns the fetched states (empty when nothing was needed or could be had)."""
        prevs = event.prev_event_ids
        if not set(prevs) - await self._have_state_for(prevs):
            return []
        if not self._take_gap_budget(origin):
            logger.info("Gap budget of %s spent: not filling the gap before %s", origin,
                        event.event_id)
            return []
        await self._fetch_missing_prevs(origin, event, room_version)
        missing = sorted(set(prevs) - await self._have_state_for(prevs))
        if not missing:
            return []
        state = await self._fetch_state_after(origin, event.room_id, missing[0],
                                              room_version)
        return [state] if state is not None else []

    async def _fetch_missing_auth_events(self, origin: str, event: Event,
                                         room_version: RoomVersion) -> None:
        """Auth events the event cites that we lack: its auth chain by one `/event_auth`
        (within the origin's gap budget), checked and stored as outliers."""
        known = await self._events.get_events(event.auth_event_ids)
        if all(e in known for e in event.auth_event_ids) or not self._take_gap_budget(origin):
            return
        try:
            answer = await self._hs.get_federation_client().get_json(
                origin, f"/_matrix/federation/v1/event_auth/{event.room_id}/{event.event_id}",
                timeout=GAP_REQUEST_TIMEOUT)
            pdus = answer.get("auth_chain") if isinstance(answer, dict) else None
            if not isinstance(pdus, list):
                raise InvalidPdu("malformed /event_auth answer")
            chain = [await self.check_pdu(p, room_version) for p in pdus[:MAX_AUTH_CHAIN_FETCH]]
        except Exception as e:  # noqa: BLE001 - the event is refused without them
            logger.info("Auth events of %s from %s failed: %s", event.event_id, origin, e)
            return
        await self.persist_outliers([e for e in chain if e.room_id == event.room_id])

    async def _fetch_missing_prevs(self, origin: str, event: Event,
                                   room_version: RoomVersion) -> None:
        latest = [e for e, _ in await self._events.get_forward_extremities(event.room_id)]
        try:
            answer = await self._hs.get_federation_client().post_json(
                origin, f"/_matrix/federation/v1/get_missing_events/{event.room_id}",
                {"earliest_events": latest, "latest_events": [event.event_id],
                 "limit": MISSING_EVENTS_LIMIT, "min_depth": 0},
                timeout=GAP_REQUEST_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - the event is still handled without them
            logger.info("get_missing_events for %s from %s failed: %s", event.event_id,
                        origin, e)
            return
        pdus = answer.get("events") if isinstance(answer, dict) else None
        fetched: list[Event] = []
        for pdu in pdus[:MISSING_EVENTS_LIMIT] if isinstance(pdus, list) else []:
            try:
                fetched.append(await self.check_pdu(pdu, room_version))
            except InvalidPdu as e:
                logger.info("Dropping a missing event from %s: %s", origin, e)
        for missing_event in sorted(fetched, key=lambda e: e.depth):
            if missing_event.room_id != event.room_id:
                continue
            try:
                await self.on_receive_pdu(origin, missing_event, fetch_missing=False)
            except InvalidPdu as e:
                logger.info("Missing event %s refused: %s", missing_event.event_id, e)

    async def _fetch_state_after(self, origin: str, room_id: str, prev_id: str,
                                 room_version: RoomVersion) -> Mapping[StateKey, str] | None:
        """The room state after a prev event we could not fetch a path to, from `origin`:
        `/state_ids` names the state before it and its auth chain; the events of those we
        lack come by `/event` (or, when more than `MAX_EVENT_FETCHES`, by one `/state`),
        are checked like received PDUs and stored as outliers. None on failure."""
        client = self._hs.get_federation_client()
        base = "/_matrix/federation/v1"
        try:
            answer = await client.get_json(origin, f"{base}/state_ids/{room_id}",
                                           {"event_id": prev_id}, timeout=GAP_REQUEST_TIMEOUT)
            state_ids = _id_list(answer, "pdu_ids")
            chain_ids = _id_list(answer, "auth_chain_ids")
            wanted = list(dict.fromkeys([prev_id, *state_ids, *chain_ids]))
            have = await self._events.get_events(wanted)
            unknown = [e for e in wanted if e not in have]
            if len(unknown) <= MAX_EVENT_FETCHES:
                fetched = [await self._fetch_event(origin, e, room_version) for e in unknown]
            else:
                fetched = await self._fetch_state_events(origin, room_id, prev_id,
                                                         set(unknown), room_version)
                if prev_id not in have:
                    fetched.append(await self._fetch_event(origin, prev_id, room_version))
        except Exception as e:  # noqa: BLE001 - network or bad answers: no state then
            logger.info("Fetching the state after %s from %s failed: %s", prev_id, origin, e)
            return None
        if any(e.room_id != room_id for e in fetched):
            logger.info("State answer for %s from %s names events of another room: ignored",
                        prev_id, origin)
            return None
        await self.persist_outliers(fetched)
        stored = await self._events.get_events([*state_ids, prev_id])
        if prev_id not in stored:
            return None  # the prev event itself could not be checked
        usable = {e.event_id: e for e in stored.values()
                  if e.room_id == room_id and e.state_key is not None
                  and e.rejected_reason is None}
        state = {usable[e].state_pair(): e for e in state_ids if e in usable}
        if prev_id in usable:
            state[usable[prev_id].state_pair()] = prev_id
        return state

    async def fetch_event(self, origin: str, event_id: str,
                          room_version: RoomVersion) -> Event:
        """One event from `origin`, checked (signatures, hashes), not persisted."""
        return await self._fetch_event(origin, event_id, room_version)

    async def _fetch_event(self, origin: str, event_id: str,
                           room_version: RoomVersion) -> Event:
        """One event by `GET /event`, checked like a received PDU (not its auth).

        Raises:
            InvalidPdu: the answer is not that event, validly signed.
        """
        answer = await self._hs.get_federation_client().get_json(
            origin, f"/_matrix/federation/v1/event/{event_id}", timeout=GAP_REQUEST_TIMEOUT)
        pdus = answer.get("pdus") if isinstance(answer, dict) else None
        if not isinstance(pdus, list) or len(pdus) != 1:
            raise InvalidPdu(f"malformed /event answer for {event_id}")
        event = await self.check_pdu(pdus[0], room_version)
        if event.event_id != event_id:
            raise InvalidPdu(f"/event answer for {event_id} is another event")
        return event

    async def _fetch_state_events(self, origin: str, room_id: str, at_id: str,
                                  wanted: set[str], room_version: RoomVersion
                                  ) -> list[Event]:
        """The `wanted` events among the state before `at_id` and its auth chain, from one
        `GET /state` (the rest of the answer is ignored).

        Raises:
            InvalidPdu: a malformed answer or an event that fails the PDU checks.
        """
        answer = await self._hs.get_federation_client().get_json(
            origin, f"/_matrix/federation/v1/state/{room_id}", {"event_id": at_id},
            timeout=GAP_REQUEST_TIMEOUT)
        pdus = answer.get("pdus") if isinstance(answer, dict) else None
        chain = answer.get("auth_chain") if isinstance(answer, dict) else None
        if not isinstance(pdus, list) or not isinstance(chain, list):
            raise InvalidPdu("malformed /state answer")
        events = [await self.check_pdu(p, room_version) for p in [*pdus, *chain]]
        return [e for e in events if e.event_id in wanted]

    async def _persist_received(self, event: Event, room_version: RoomVersion,
                                gap_states: list[Mapping[StateKey, str]] | None = None
                                ) -> None:
        try:
            reason = await self._auth_against_own_auth_events(event)
        except MissingAuthEvents as e:
            # Not stored: the same event may pass once we hold its auth events.
            raise InvalidPdu(f"{event.event_id}: {e.msg}") from None
        if reason is not None:
            await self._events.persist_event(_rejected(event, reason),
                                             PersistContext(outlier=True))
            raise InvalidPdu(f"{event.event_id} fails its auth events: {reason}")
        known_prevs = [p for p in event.prev_event_ids
                       if p in await self._have_state_for(event.prev_event_ids)]
        if not known_prevs and not gap_states:
            # A gap we could not fill: keep the event for reference, not in the timeline.
            await self._events.persist_event(event, PersistContext(outlier=True))
            logger.warning("No state for the prev events of %s: stored as an outlier",
                           event.event_id)
            return
        if gap_states:
            states: list[Mapping[StateKey, str]] = list(gap_states)
            if known_prevs:
                states.append((await self._state.state_before(room_version,
                                                              known_prevs)).state)
            resolved = states[0] if len(states) == 1 else await resolve_events(
                room_version, states, {}, self._events.get_events)
            before = StateBefore(None, resolved)
        else:
            before = await self._state.state_before(room_version, known_prevs)
        reason = await self._auth_against_state(event, before.state)
        if reason is not None:
            await self._events.persist_event(_rejected(event, reason),
                                             PersistContext(outlier=True))
            raise InvalidPdu(f"{event.event_id} fails the state before it: {reason}")
        current = await self._state_store.get_current_state_ids(event.room_id)
        if await self._auth_against_state(event, current) is not None:
            logger.info("Soft-failing %s: not allowed by the current state", event.event_id)
            await self._events.persist_event(event, PersistContext(
                outlier=True, internal_metadata={"soft_failed": True}))
            return
        extremities = [e for e, _ in await self._events.get_forward_extremities(event.room_id)
                       if e not in event.prev_event_ids]
        ctx = await self._context_for(event, before.group, before.state, current, extremities)
        stream_ordering = await self._events.persist_event(event, ctx)
        self._notifier.on_room_event(event, stream_ordering)

    async def _context_for(self, event: Event, group_before: int | None,
                           state_before: Mapping[StateKey, str],
                           current: Mapping[StateKey, str],
                           other_extremities: list[str]) -> PersistContext:
        """State group of the event and the new current state (resolved with the other
        forward extremities' states when the room has forked)."""
        state_after = dict(state_before)
        if event.state_key is not None:
            state_after[event.state_pair()] = event.event_id
            new_group = NewStateGroup(prev_group=group_before,
                                      delta={event.state_pair(): event.event_id},
                                      full_state=state_after)
            state_group = None
        elif group_before is None:
            new_group = NewStateGroup(prev_group=None, delta={}, full_state=state_after)
            state_group = None
        else:
            new_group, state_group = None, group_before
        new_current: Mapping[StateKey, str] = state_after
        if other_extremities:
            groups = await self._state_store.get_state_groups_for_events(other_extremities)
            states = [state_after] + [await self._state_store.get_state_for_group(g)
                                      for g in dict.fromkeys(groups.values())]
            new_current = await resolve_events(
                event.room_version, states, {event.event_id: event}, self._events.get_events)
        updates, removals = await current_state_delta(self._events.get_events, event,
                                                      new_current, current)
        target_is_local = (event.type == "m.room.member" and event.state_key is not None
                           and self._hs.is_mine_id(event.state_key))
        push_actions: tuple[Any, ...] = ()
        try:
            push_actions = tuple(await self._hs.get_bulk_push_rule_evaluator()
                                 .actions_for_event(event))
        except Exception:  # noqa: BLE001 - never lose an event over notifications
            logger.exception("Push rule evaluation failed for %s", event.event_id)
        return PersistContext(
            state_group=state_group, new_state_group=new_group,
            current_state_updates=updates, current_state_removals=removals,
            target_is_local=target_is_local, push_actions=push_actions)


def _rejected(event: Event, reason: str) -> Event:
    import attrs

    return attrs.evolve(event, rejected_reason=reason[:200])


def _id_list(answer: Any, key: str) -> list[str]:
    """A list of event IDs from a peer's answer.

    Raises:
        InvalidPdu: the answer has no such list.
    """
    ids = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(ids, list) or not all(isinstance(e, str) for e in ids):
        raise InvalidPdu(f"malformed answer: no {key} list")
    return ids


def _auth_order(events: Sequence[Event]) -> list[Event]:
    """The events with each after those of its auth events that are among them (depth
    breaks ties; a cycle, which only forged events can make, is appended by depth)."""
    by_id = {e.event_id: e for e in events}
    waiting = {e.event_id: {a for a in e.auth_event_ids if a in by_id and a != e.event_id}
               for e in events}
    ordered: list[Event] = []
    ready = sorted((e for e in events if not waiting[e.event_id]), key=lambda e: e.depth)
    dependants: dict[str, list[str]] = {}
    for event_id, needs in waiting.items():
        for need in needs:
            dependants.setdefault(need, []).append(event_id)
    done: set[str] = set()
    while ready:
        event = ready.pop(0)
        ordered.append(event)
        done.add(event.event_id)
        for child in dependants.get(event.event_id, []):
            waiting[child].discard(event.event_id)
            if not waiting[child] and child not in done:
                ready.append(by_id[child])
        ready.sort(key=lambda e: e.depth)
    ordered.extend(sorted((e for e in events if e.event_id not in done),
                          key=lambda e: e.depth))
    return ordered
