"""Backfill: fetching the parts of a remote room's history that we do not hold.

Our copy of a room joined through another server starts at our join, and has a hole
wherever we had no user in the room for a while (between a leave and a rejoin). When a
user pages back to such a place (`/messages`, `PaginationHandler`), we ask a server in the
room for `GET /backfill/{roomId}` from the backward extremities there (the prev events
that the history names but lacks, `event_backward_extremities`), check each PDU as any
received one (signatures, content hash, auth rules against its auth events and against
the state before it), and store the events oldest first with decreasing negative stream
orderings (`EventsStore.persist_backfilled_event`): /messages pages by depth first, so
they appear where their depth puts them. They get a state group each (for history
visibility) but never change the room's current state or forward extremities, and never
reach /sync as new events. The state before the oldest events of a batch, whose prev
events we do not hold, is fetched with `GET /state/{roomId}`.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from federation.event_handler import InvalidPdu
from federation.server_visibility import server_of
from homeserver.events import Event
from homeserver.room_versions import RoomVersion
from storage.stores.events import NewStateGroup, PersistContext

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

StateKey = tuple[str, str]

#: events asked for per backfill request at most (the serving side's cap in Synapse)
MAX_BACKFILL = 100
#: a /messages request waits on backfill: bound each request and the servers tried
REQUEST_TIMEOUT = 20.0
MAX_SERVERS_TRIED = 3


class FederationBackfillHandler:
    """Built once by the container (`hs.get_federation_backfill_handler()`)."""

    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._server_name = hs.hostname
        stores = hs.get_datastores()
        self._events = stores.events
        self._state_store = stores.state
        self._members = stores.room_members
        self._state = hs.get_state_handler()
        self._event_handler = hs.get_federation_event_handler()

    async def backfill(self, room_id: str, extremities: Sequence[str], limit: int) -> int:
        """Fetch up to about `limit` events from the given backward extremities of the
        room on (the missing events and those before them); returns how many were added
        to the room's history (0: nothing more to be had now)."""
        room_version = await self._events.get_room_version(room_id)
        if not extremities or room_version is None:
            return 0
        client = self._hs.get_federation_client()
        for server in (await self.servers_to_ask(room_id))[:MAX_SERVERS_TRIED]:
            try:
                answer = await client.get_json(
                    server, f"/_matrix/federation/v1/backfill/{_q(room_id)}",
                    query={"v": list(extremities[:20]),
                           "limit": str(min(limit + min(len(extremities), 20), MAX_BACKFILL))},
                    timeout=REQUEST_TIMEOUT)
            except Exception as e:  # noqa: BLE001 - any failure: try the next server
                logger.info("Backfill of %s from %s failed: %s", room_id, server, e)
                continue
            pdus = answer.get("pdus") if isinstance(answer, dict) else None
            if not isinstance(pdus, list):
                continue
            events = await self._checked(server, room_id, room_version, pdus)
            added = await self._persist(server, room_version, events)
            if added:
                return added
        return 0

    # -- internals --

    async def servers_to_ask(self, room_id: str) -> list[str]:
        """The other servers with users joined to the room now (sorted; the room
        creator's server first, as it is the likeliest to hold the whole history)."""
        joined = await self._members.get_users_in_room(room_id)
        servers = sorted({server_of(u) for u in joined} - {self._server_name})
        create = await self._events.get_event(
            (await self._state_store.get_current_state_ids(room_id)).get(
                ("m.room.create", ""), ""))
        if create is not None and server_of(create.sender) in servers:
            servers.remove(server_of(create.sender))
            servers.insert(0, server_of(create.sender))
        return servers

    async def _checked(self, origin: str, room_id: str, room_version: RoomVersion,
                       pdus: Iterable[Any]) -> list[Event]:
        events: list[Event] = []
        for pdu in pdus:
            try:
                event = await self._event_handler.check_pdu(pdu, room_version)
            except InvalidPdu as e:
                logger.info("Dropping a backfilled event from %s: %s", origin, e)
                continue
            if event.room_id == room_id:
                events.append(event)
        return events

    async def _persist(self, origin: str, room_version: RoomVersion,
                       events: Sequence[Event]) -> int:
        """Add the events the room's history lacks, oldest (lowest depth) first."""
        held = await self._events.get_non_outlier_ids([e.event_id for e in events])
        pending = sorted({e.event_id: e for e in events if e.event_id not in held}.values(),
                         key=lambda e: (e.depth, e.origin_server_ts))
        orderings = self._events.reserve_backfill_orderings(len(pending))
        added = 0
        for event, ordering in zip(pending, orderings, strict=True):
            reason = await self._event_handler.prev_events_failure(event)
            if reason is not None:
                logger.info("Dropping backfilled %s: %s", event.event_id, reason)
                continue
            with_state = set(await self._state_store.get_state_groups_for_events(
                list(event.prev_event_ids)))
            fetched: Mapping[StateKey, str] | None = None
            if any(p not in with_state for p in event.prev_event_ids):
                fetched = await self._fetch_state_before(origin, room_version, event)
                if fetched is None:
                    continue
            async with self._event_handler.room_lock(event.room_id):
                if await self._events.get_non_outlier_ids([event.event_id]):
                    continue
                if fetched is None:
                    before = await self._state.state_before(room_version,
                                                            event.prev_event_ids)
                    group, state_before = before.group, before.state
                else:
                    group, state_before = None, fetched
                reason = await self._event_handler.auth_failure(event, state_before)
                if reason is not None:
                    # Kept in the history (never shown: rejected) so that paging goes on
                    # past it; it changes no state.
                    logger.info("Rejecting backfilled %s: %s", event.event_id, reason)
                    event = _rejected(event, reason)
                await self._events.persist_backfilled_event(
                    event, _context(event, group, state_before), ordering)
            added += 1
        return added

    async def _fetch_state_before(self, origin: str, room_version: RoomVersion,
                                  event: Event) -> dict[StateKey, str] | None:
        """The state before `event` from `origin` (`GET /state`), its events stored as
        outliers; None if it could not be had."""
        try:
            answer = await self._hs.get_federation_client().get_json(
                origin, f"/_matrix/federation/v1/state/{_q(event.room_id)}",
                query={"event_id": event.event_id}, timeout=REQUEST_TIMEOUT)
        except Exception as e:  # noqa: BLE001 - the event is skipped without it
            logger.info("State at backfilled %s from %s failed: %s", event.event_id,
                        origin, e)
            return None
        if not isinstance(answer, dict):
            return None
        state = await self._checked(origin, event.room_id, room_version,
                                    _list(answer.get("pdus")))
        chain = await self._checked(origin, event.room_id, room_version,
                                    _list(answer.get("auth_chain")))
        await self._event_handler.persist_outliers([*chain, *state])
        stored = await self._events.get_events([e.event_id for e in state])
        return {ev.state_pair(): ev.event_id for ev in stored.values()
                if ev.state_key is not None and ev.rejected_reason is None}


def _context(event: Event, group_before: int | None,
             state_before: Mapping[StateKey, str]) -> PersistContext:
    """The state group after a backfilled event: a new one when it changes the state (or
    when the state before has no stored group), else the group before."""
    if event.state_key is not None and event.rejected_reason is None:
        return PersistContext(backfilled=True, new_state_group=NewStateGroup(
            prev_group=group_before, delta={event.state_pair(): event.event_id},
            full_state={**state_before, event.state_pair(): event.event_id}))
    if group_before is None:
        return PersistContext(backfilled=True, new_state_group=NewStateGroup(
            prev_group=None, delta={}, full_state=dict(state_before)))
    return PersistContext(backfilled=True, state_group=group_before)


def _rejected(event: Event, reason: str) -> Event:
    return attrs.evolve(event, rejected_reason=reason[:200])


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")
