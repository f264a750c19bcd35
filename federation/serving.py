"""Serving room data to other servers: events, state at an event, auth chains, backfill
and missing events (server-server API "Retrieving events", "Backfilling and retrieving
missing events").

Every read first checks the asking server's right to the room (`ServerVisibility`:
404 unknown room, 403 ACL-denied or not resident). PDUs leave in federation format:
the stored `pdu_json` with `unsigned` cut to the keys other servers use, and pruned when
a redaction applies or when the server may not see the event (backfill, missing events,
single events). The state endpoints refuse (403) an event the server may not see.
Nothing of another room and no rejected event is ever served: every answer is filtered
by room and rejection after loading (`_servable`), whatever the DAG tables say.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from handlers.event_serialize import EventRedactions
from homeserver.errors import Codes, MatrixError
from homeserver.events import Event

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: the most events one backfill or get_missing_events answer carries
MAX_EVENTS_PER_REQUEST = 100
#: `unsigned` keys that mean something to the receiving server; the rest are local
_UNSIGNED_SENT = ("invite_room_state", "knock_room_state")


def federation_pdu(event: Event) -> dict[str, Any]:
    """The event as sent over federation (a copy): `unsigned` keeps only the stripped
    room state of invites and knocks."""
    pdu = copy.deepcopy(dict(event.pdu_json))
    unsigned = pdu.pop("unsigned", None)
    if isinstance(unsigned, Mapping):
        kept = {k: unsigned[k] for k in _UNSIGNED_SENT if k in unsigned}
        if kept:
            pdu["unsigned"] = kept
    return pdu


class FederationServingHandler:
    """Built once by the container (`hs.get_federation_serving_handler()`)."""

    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        self._clock = hs.get_clock()
        stores = hs.get_datastores()
        self._events = stores.events
        self._state_store = stores.state
        self._dag = stores.event_federation
        self._state = hs.get_state_handler()
        self._visibility = hs.get_server_visibility()
        self._redactions = EventRedactions(self._events)

    # GET /_matrix/federation/v1/event/{eventId}
    async def get_event(self, origin: str, event_id: str) -> dict[str, Any]:
        """`{origin, origin_server_ts, pdus: [pdu]}`; redacted if `origin` may not see it.

        Raises:
            MatrixError: 404 unknown (or rejected) event; 403 ACL-denied or not in the room.
        """
        event = await self._events.get_event(event_id)
        if event is None or event.rejected_reason is not None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Could not find event {event_id}")
        await self._visibility.check_room_access(origin, event.room_id)
        return self._transaction(await self._pdus_for_server(origin, [event]))

    # GET /_matrix/federation/v1/state/{roomId}
    async def get_state(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """`{pdus, auth_chain}`: the state before the event and its auth chain.

        Raises:
            MatrixError: 404 unknown room, event or state at the event; 403 not allowed.
        """
        state, chain = await self._state_and_chain(origin, room_id, event_id)
        return {"pdus": await self._pdus(state), "auth_chain": await self._pdus(chain)}

    # GET /_matrix/federation/v1/state_ids/{roomId}
    async def get_state_ids(self, origin: str, room_id: str,
                            event_id: str) -> dict[str, Any]:
        """`{pdu_ids, auth_chain_ids}`, as `get_state` but IDs only."""
        state, chain = await self._state_and_chain(origin, room_id, event_id)
        return {"pdu_ids": [e.event_id for e in state],
                "auth_chain_ids": [e.event_id for e in chain]}

    # GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}
    async def get_event_auth(self, origin: str, room_id: str,
                             event_id: str) -> dict[str, Any]:
        """`{auth_chain}`: the event's auth events, recursively (not the event itself)."""
        event = await self._visible_event_in_room(origin, room_id, event_id)
        chain_ids = sorted(await self._dag.get_auth_chain_ids(room_id, [event.event_id]))
        return {"auth_chain": await self._pdus(await self._load(room_id, chain_ids))}

    # GET /_matrix/federation/v1/backfill/{roomId}
    async def backfill(self, origin: str, room_id: str, event_ids: Collection[str],
                       limit: int) -> dict[str, Any]:
        """The given events and those before them, newest first, at most `limit` (capped at
        `MAX_EVENTS_PER_REQUEST`), as a transaction.

        Raises:
            MatrixError: 404 unknown room or none of `event_ids` in it; 403 not allowed.
        """
        await self._visibility.check_room_access(origin, room_id)
        ids = await self._dag.get_backfill_event_ids(
            room_id, event_ids, min(limit, MAX_EVENTS_PER_REQUEST))
        if not ids and limit > 0:
            raise MatrixError(404, Codes.NOT_FOUND, "None of the events are in the room")
        return self._transaction(await self._pdus_for_server(
            origin, await self._load(room_id, ids)))

    # POST /_matrix/federation/v1/get_missing_events/{roomId}
    async def get_missing_events(self, origin: str, room_id: str,
                                 earliest_events: Collection[str],
                                 latest_events: Collection[str], limit: int,
                                 min_depth: int) -> dict[str, Any]:
        """`{events}`: the events before `latest_events` back to `earliest_events`, oldest
        first, at most `limit` (capped at `MAX_EVENTS_PER_REQUEST`).

        Raises:
            MatrixError: 404 unknown room or none of `latest_events` in it; 403 not allowed.
        """
        await self._visibility.check_room_access(origin, room_id)
        latest = await self._events.get_events(latest_events)
        if not any(e.room_id == room_id for e in latest.values()):
            raise MatrixError(404, Codes.NOT_FOUND, "None of latest_events are in the room")
        ids = await self._dag.get_missing_event_ids(
            room_id, earliest_events, latest_events, min(limit, MAX_EVENTS_PER_REQUEST),
            min_depth)
        return {"events": await self._pdus_for_server(origin,
                                                      await self._load(room_id, ids))}

    # -- internals --

    def _transaction(self, pdus: list[dict[str, Any]]) -> dict[str, Any]:
        return {"origin": self._server_name, "origin_server_ts": self._clock.time_msec(),
                "pdus": pdus}

    async def _load(self, room_id: str, event_ids: Sequence[str]) -> list[Event]:
        """The servable events in order (see `_servable`)."""
        events = await self._events.get_events(event_ids)
        return [events[e] for e in event_ids if e in events and _servable(events[e], room_id)]

    async def _visible_event_in_room(self, origin: str, room_id: str,
                                     event_id: str) -> Event:
        await self._visibility.check_room_access(origin, room_id)
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id or event.rejected_reason is not None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Could not find event {event_id}")
        if event.event_id not in await self._visibility.visible_event_ids(origin, [event]):
            raise MatrixError(403, Codes.FORBIDDEN,
                              "You do not have permission to access this event")
        return event

    async def _state_and_chain(self, origin: str, room_id: str,
                               event_id: str) -> tuple[list[Event], list[Event]]:
        """The state before the event and its auth chain (each sorted by ID, servable
        events only)."""
        event = await self._visible_event_in_room(origin, room_id, event_id)
        not_known = MatrixError(404, Codes.NOT_FOUND,
                                f"Could not find the state at event {event_id}")
        if await self._state_store.get_state_group_for_event(event_id) is None:
            raise not_known  # an outlier: we do not know the room state there
        try:
            before = await self._state.state_before(event.room_version, event.prev_event_ids)
        except RuntimeError:
            raise not_known from None
        state = await self._load(room_id, sorted(set(before.state.values())))
        chain_ids = await self._dag.get_auth_chain_ids(room_id, [e.event_id for e in state])
        return state, await self._load(room_id, sorted(chain_ids))

    async def _pdus_for_server(self, origin: str, events: Sequence[Event]
                               ) -> list[dict[str, Any]]:
        """Federation PDUs, redacted where `origin` may not see the event."""
        return await self._pdus(await self._visibility.filter_events_for_server(origin, events))

    async def _pdus(self, events: Iterable[Event]) -> list[dict[str, Any]]:
        """Federation PDUs, pruned where a redaction applies (`EventRedactions`, the
        rule clients get too)."""
        return [federation_pdu(e) for e in await self._redactions.pruned(list(events))]


def _servable(event: Event, room_id: str) -> bool:
    """Whether the event may go out in an answer about `room_id`: of that room and not
    rejected (as Synapse serves them)."""
    return event.room_id == room_id and event.rejected_reason is None
