"""Creating local events: build → auth-check against the state before → compute the state
after → persist in one transaction → tell listeners. Serialised per room."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from handlers.state import StateBefore, StateKey, current_state_delta
from homeserver.async_utils import Linearizer
from homeserver.errors import Codes, MatrixError
from homeserver.event_auth import AuthError, auth_types_for_event, check_auth_rules
from homeserver.event_hashing import (
    add_content_hash,
    canonical_json,
    check_canonical_json,
    compute_reference_hash,
    encode_base64,
    sign_event,
)
from homeserver.events import Event
from homeserver.json_decode import check_content_depth
from homeserver.room_versions import EventFormat, RoomVersion
from storage.database import IntegrityError
from storage.stores.events import MAX_PREV_EVENTS, NewStateGroup, PersistContext

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: the spec's limit on a whole PDU, in bytes of canonical JSON
MAX_PDU_SIZE = 65536

@attrs.frozen(slots=True)
class EventSpec:
    """What a local user wants to send."""

    room_id: str | None
    type: str
    sender: str
    content: Mapping[str, Any]
    state_key: str | None = None
    redacts: str | None = None
    #: (user_id, device_id, txn_id): the same key always yields the same event
    txn_key: tuple[str, str, str] | None = None


@attrs.frozen(slots=True)
class SentEvent:
    event: Event
    stream_ordering: int
    #: False when the transaction ID had already been used (nothing new was sent)
    new: bool = True


PersistListener = Callable[[Event, int], Any]
#: (invite event, state before it) -> the invite countersigned by the invitee's server
RemoteInviteSender = Callable[[Event, Mapping[StateKey, str]], Awaitable[Event]]


class EventCreationHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._clock = hs.get_clock()
        self._server_name = hs.hostname
        stores = hs.get_datastores()
        self._events = stores.events
        self._state_store = stores.state
        self._state = hs.get_state_handler()
        self._linearizer = Linearizer()
        self._listeners: list[PersistListener] = []
        self._last_create_ts = 0
        self._bulk_push = hs.get_bulk_push_rule_evaluator()
        self._remote_invite_sender: RemoteInviteSender | None = None

    def room_lock(self, room_id: str) -> Any:
        """The per-room lock serialising every change to a room's graph (an async context
        manager); remote events take it too."""
        return self._linearizer.queue(room_id)

    def add_persist_listener(self, listener: PersistListener) -> None:
        """Call `listener(event, stream_ordering)` after each local event is persisted."""
        self._listeners.append(listener)

    async def create_room_event(self, spec: EventSpec, room_version: RoomVersion) -> SentEvent:
        """Send the `m.room.create` event of a new room (its room ID is in the spec for
        v1–v11; v12 derives it from the event)."""
        return await self._send(spec, room_version, creating=True)

    async def send(self, spec: EventSpec) -> SentEvent:
        """Build, authorise and persist an event in an existing room.

        Raises:
            MatrixError: 404 M_NOT_FOUND for an unknown room; 403 M_FORBIDDEN when the
                auth rules refuse the event; 413 M_TOO_LARGE for an oversized event.
        """
        assert spec.room_id is not None
        room_version = await self._events.get_room_version(spec.room_id)
        if room_version is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        return await self._send(spec, room_version, creating=False)

    async def _send(self, spec: EventSpec, room_version: RoomVersion,
                    creating: bool) -> SentEvent:
        check_content_depth(spec.content)
        lock_key = spec.room_id or "!new"
        async with self._linearizer.queue(lock_key):
            # A retried transaction ID is caught by the unique key of `event_txn_ids` in
            # the persist transaction itself: the common, new send pays no extra query.
            try:
                sent = await self._build_and_persist(spec, room_version, creating)
            except IntegrityError:
                previous = await self._previous_send(spec)
                if previous is None:
                    raise
                return previous
        for listener in self._listeners:
            listener(sent.event, sent.stream_ordering)
        return sent

    async def _previous_send(self, spec: EventSpec) -> SentEvent | None:
        """The event already sent with this transaction ID, if any."""
        if spec.txn_key is None:
            return None
        existing_id = await self._events.get_event_id_for_txn(*spec.txn_key)
        if existing_id is None:
            return None
        existing = await self._events.get_event(existing_id)
        ordering = await self._events.get_stream_ordering(existing_id)
        if existing is None or ordering is None:
            return None
        return SentEvent(existing, ordering, new=False)

    def set_remote_invite_sender(self, sender: RemoteInviteSender) -> None:
        """Have invites of remote users countersigned by their server before persisting
        (federation wires this: `PUT /v2/invite`)."""
        self._remote_invite_sender = sender

    async def build_event_template(self, spec: EventSpec, room_version: RoomVersion
                                   ) -> tuple[dict[str, Any], dict[StateKey, Event]]:
        """The unhashed, unsigned PDU of an event in an existing room (prev events, auth
        events and depth from the current extremities and state) and its auth events by
        state key: what `make_join`/`make_leave` answer other servers with.

        Raises:
            MatrixError: 404 M_NOT_FOUND when the room has no forward extremities.
        """
        pdu, auth_map, _ = await self._prepare_pdu(spec, room_version, creating=False)
        return pdu, auth_map

    async def _prepare_pdu(self, spec: EventSpec, room_version: RoomVersion, creating: bool
                           ) -> tuple[dict[str, Any], dict[StateKey, Event], StateBefore]:
        if creating:
            extremities: list[tuple[str, int]] = []
        else:
            assert spec.room_id is not None
            extremities = (await self._events.get_forward_extremities(spec.room_id))
            extremities = extremities[:MAX_PREV_EVENTS]
            if not extremities:
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        prev_ids = [e for e, _ in extremities]
        before = await self._state.state_before(room_version, prev_ids)

        pdu = self._build_pdu(spec, room_version, extremities)
        if room_version.event_format == EventFormat.V1:
            prev_events = await self._events.get_events(prev_ids)
            pdu["prev_events"] = self._event_refs(
                [prev_events[e] for e in prev_ids], room_version)
        else:
            pdu["prev_events"] = prev_ids
        auth_map = await self._auth_events_for(pdu, room_version, before.state)
        pdu["auth_events"] = self._event_refs(
            [e for key, e in auth_map.items()
             if not (room_version.room_id_from_create_event and key == ("m.room.create", ""))],
            room_version)
        return pdu, auth_map, before

    async def _build_and_persist(self, spec: EventSpec, room_version: RoomVersion,
                                 creating: bool) -> SentEvent:
        pdu, auth_map, before = await self._prepare_pdu(spec, room_version, creating)
        pdu = add_content_hash(pdu)
        pdu = sign_event(pdu, self._server_name, self._hs.get_signing_key(), room_version)
        try:
            check_canonical_json(pdu, room_version)
        except ValueError as e:
            raise MatrixError(400, Codes.BAD_JSON, str(e)) from None
        if len(canonical_json(pdu)) > MAX_PDU_SIZE:
            raise MatrixError(413, Codes.TOO_LARGE, "Event is too large")
        event = Event.from_pdu(pdu, room_version)
        try:
            check_auth_rules(event, auth_map)
        except AuthError as e:
            raise MatrixError(403, Codes.FORBIDDEN, e.msg) from None
        if self._remote_invite_sender is not None and event.type == "m.room.member" \
                and event.membership == "invite" and event.state_key is not None \
                and not self._hs.is_mine_id(event.state_key):
            event = await self._remote_invite_sender(event, before.state)

        ctx = await self._persist_context(event, before.group, before.state, spec)
        if not creating:
            ctx = attrs.evolve(ctx, push_actions=await self._push_actions(event))
        stream_ordering = await self._events.persist_event(event, ctx)
        return SentEvent(event, stream_ordering)

    async def _push_actions(self, event: Event) -> tuple[tuple[str, bool, bool, str | None],
                                                         ...]:
        """Who the event notifies; a failure here must not stop the event being sent."""
        try:
            return tuple(await self._bulk_push.actions_for_event(event))
        except Exception:
            logger.exception("Push rule evaluation failed for %s", event.event_id)
            return ()

    def _build_pdu(self, spec: EventSpec, room_version: RoomVersion,
                   extremities: list[tuple[str, int]]) -> dict[str, Any]:
        depth = max((d for _, d in extremities), default=0) + 1
        pdu: dict[str, Any] = {
            "type": spec.type,
            "sender": spec.sender,
            "content": dict(spec.content),
            "origin_server_ts": self._clock.time_msec(),
            "depth": depth,
            "prev_events": [],
            "auth_events": [],
        }
        room_id = spec.room_id
        is_create = spec.type == "m.room.create" and spec.state_key == ""
        if is_create:
            # v12 room IDs hash the create event: two identical createRoom requests in
            # one millisecond must still get distinct rooms.
            pdu["origin_server_ts"] = max(pdu["origin_server_ts"], self._last_create_ts + 1)
            self._last_create_ts = pdu["origin_server_ts"]
        if not (is_create and room_version.room_id_from_create_event):
            if room_id is None:
                room_id = f"!{secrets.token_urlsafe(12)}:{self._server_name}"
            pdu["room_id"] = room_id
        if spec.state_key is not None:
            pdu["state_key"] = spec.state_key
        if spec.redacts is not None:
            if room_version.updated_redaction_rules:
                pdu["content"]["redacts"] = spec.redacts
            pdu["redacts"] = spec.redacts
        if not room_version.updated_redaction_rules:
            pdu["origin"] = self._server_name
        if room_version.event_format == EventFormat.V1:
            pdu["event_id"] = f"${secrets.token_urlsafe(18)}:{self._server_name}"
        return pdu

    async def _auth_events_for(self, pdu: dict[str, Any], room_version: RoomVersion,
                               state: Mapping[StateKey, str]) -> dict[StateKey, Event]:
        """The auth events (by state key) for the event being built, from the state."""
        if pdu["type"] == "m.room.create" and pdu.get("state_key") == "":
            return {}
        probe = Event.from_pdu({**pdu, "room_id": pdu.get("room_id", "!probe")}, room_version,
                               event_id="$probe")
        wanted = [state[k] for k in auth_types_for_event(probe) if k in state]
        create_key = ("m.room.create", "")
        if create_key in state and state[create_key] not in wanted:
            wanted.append(state[create_key])
        events = await self._events.get_events(wanted)
        return {ev.state_pair(): ev for ev in events.values() if ev.state_key is not None}

    def _event_refs(self, events: list[Event], room_version: RoomVersion) -> list[Any]:
        """References as the room version writes them: IDs, or [ID, hashes] pairs (v1, v2)."""
        if room_version.event_format != EventFormat.V1:
            return [e.event_id for e in events]
        return [[e.event_id, {"sha256": encode_base64(
            compute_reference_hash(dict(e.pdu_json), room_version))}] for e in events]

    async def _persist_context(self, event: Event, group_before: int | None,
                               state_before: Mapping[StateKey, str],
                               spec: EventSpec) -> PersistContext:
        state_after = dict(state_before)
        new_group: NewStateGroup | None = None
        state_group = group_before
        if event.state_key is not None:
            state_after[event.state_pair()] = event.event_id
            new_group = NewStateGroup(prev_group=group_before,
                                      delta={event.state_pair(): event.event_id},
                                      full_state=state_after)
            state_group = None
        elif group_before is None:
            new_group = NewStateGroup(prev_group=None, delta={}, full_state=state_after)
        current = await self._state_store.get_current_state_ids(event.room_id)
        updates, removals = await current_state_delta(self._events.get_events, event,
                                                      state_after, current)
        target_is_local = (event.type == "m.room.member" and event.state_key is not None
                           and self._hs.is_mine_id(event.state_key))
        metadata: dict[str, Any] = {}
        if spec.txn_key is not None:
            metadata = {"txn_id": spec.txn_key[2], "device_id": spec.txn_key[1]}
        return PersistContext(
            state_group=state_group, new_state_group=new_group,
            current_state_updates=updates, current_state_removals=removals,
            target_is_local=target_is_local, txn_key=spec.txn_key,
            internal_metadata=metadata,
        )
