"""Sending events into rooms: messages, state, redactions; and event reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.event_creation import EventSpec
from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import is_valid_event_type, is_valid_state_key

if TYPE_CHECKING:
    from handlers.auth import Requester
    from homeserver.server import HomeServer


class MessageHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._clock = hs.get_clock()
        self._creation = hs.get_event_creation_handler()
        self._limiter = hs.get_ratelimiters().message
        stores = hs.get_datastores()
        self._events = stores.events
        self._rooms = stores.rooms
        self._members = stores.room_members

    def _txn_key(self, requester: Requester, txn_id: str) -> tuple[str, str, str]:
        # Tokens without a device (admin tools) scope transaction IDs by token.
        device = requester.device_id or f"token:{requester.access_token_id}"
        return (requester.user_id, device, txn_id)

    async def _check_joined(self, user_id: str, room_id: str) -> None:
        if await self._events.get_room_version(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        membership = await self._members.get_local_membership(user_id, room_id)
        if membership is None or membership.membership != "join":
            raise MatrixError(403, Codes.FORBIDDEN,
                              f"User {user_id} not in room {room_id}")

    # PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}
    async def send_message(self, requester: Requester, room_id: str, event_type: str,
                           content: dict[str, Any], txn_id: str) -> str:
        """Send a non-state event; the same txn ID from the same device gives the same ID."""
        if not is_valid_event_type(event_type):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid event type")
        if event_type == "m.room.redaction":
            redacts = content.get("redacts")
            if not isinstance(redacts, str):
                raise MatrixError(400, Codes.BAD_JSON, "m.room.redaction needs 'redacts'")
            return await self.redact(requester, room_id, redacts, content, txn_id)
        self._limiter.check(requester.user_id)
        await self._check_joined(requester.user_id, room_id)
        sent = await self._creation.send(EventSpec(
            room_id=room_id, type=event_type, sender=requester.user_id, content=content,
            txn_key=self._txn_key(requester, txn_id)))
        return sent.event.event_id

    # PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
    async def send_state(self, requester: Requester, room_id: str, event_type: str,
                         state_key: str, content: dict[str, Any]) -> str:
        if not is_valid_event_type(event_type):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid event type")
        if not is_valid_state_key(state_key):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid state key")
        if event_type == "m.room.member":
            membership = content.get("membership")
            if not isinstance(membership, str):
                raise MatrixError(400, Codes.BAD_JSON, "m.room.member needs 'membership'")
            sent = await self._hs.get_room_member_handler().update_membership(
                requester.user_id, room_id, state_key, membership,
                content.get("reason") if isinstance(content.get("reason"), str) else None,
                extra_content={k: v for k, v in content.items()
                               if k not in ("membership", "reason")})
            return sent.event.event_id
        if event_type == "m.room.create":
            raise MatrixError(403, Codes.FORBIDDEN, "m.room.create cannot be changed")
        self._limiter.check(requester.user_id)
        await self._check_joined(requester.user_id, room_id)
        if event_type == "m.room.canonical_alias":
            await self._hs.get_directory_handler().check_canonical_alias(room_id, content)
        sent = await self._creation.send(EventSpec(
            room_id=room_id, type=event_type, sender=requester.user_id, content=content,
            state_key=state_key))
        return sent.event.event_id

    # PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}
    async def redact(self, requester: Requester, room_id: str, redacts: str,
                     content: dict[str, Any], txn_id: str) -> str:
        """Redact an event. Others' events need the `redact` power level (auth rules for
        v1–v2; checked here for later versions, where the rules leave it to servers)."""
        self._limiter.check(requester.user_id)
        await self._check_joined(requester.user_id, room_id)
        target = await self._events.get_event(redacts)
        if target is not None and target.room_id == room_id and \
                target.sender != requester.user_id:
            await self._check_redact_power(requester.user_id, room_id)
        body = {k: v for k, v in content.items() if k != "redacts"}
        sent = await self._creation.send(EventSpec(
            room_id=room_id, type="m.room.redaction", sender=requester.user_id,
            content=body, redacts=redacts, txn_key=self._txn_key(requester, txn_id)))
        return sent.event.event_id

    async def _check_redact_power(self, user_id: str, room_id: str) -> None:
        from homeserver.event_auth import get_named_level, get_user_power_level

        state = await self._hs.get_datastores().state.get_current_state_ids(room_id)
        keys = [("m.room.create", ""), ("m.room.power_levels", "")]
        events = await self._events.get_events([state[k] for k in keys if k in state])
        auth_events = {e.state_pair(): e for e in events.values()}
        if get_user_power_level(user_id, auth_events) < get_named_level(auth_events, "redact",
                                                                        50):
            raise MatrixError(403, Codes.FORBIDDEN,
                              "You don't have permission to redact others' events")

    # POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}
    async def report_event(self, requester: Requester, room_id: str, event_id: str,
                           reason: str | None, content: dict[str, Any]) -> None:
        event = await self._events.get_event(event_id)
        membership = await self._members.get_local_membership(requester.user_id, room_id)
        # The spec: 404 both for unknown events and for events the user cannot see.
        if event is None or event.room_id != room_id or membership is None \
                or membership.membership != "join":
            raise MatrixError(404, Codes.NOT_FOUND, "Unable to report event")
        await self._rooms.add_event_report(room_id, event_id, requester.user_id, reason,
                                           content, self._clock.time_msec())
