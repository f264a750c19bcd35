"""Send-to-device messaging: store a message per target device, hand it to that device's
/sync, delete it once the device has synced past it.

Only local targets are delivered for now: messages for users on other servers are
dropped with a log line until the federation sender exists (it will send them as
`m.direct_to_device` EDUs).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import UserID, is_valid_event_type
from homeserver.json_decode import MAX_CONTENT_DEPTH, check_content_depth, nesting_depth

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: the device ID meaning "every device of the user"
ALL_DEVICES = "*"


class ToDeviceHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._clock = hs.get_clock()
        self._notifier = hs.get_notifier()
        stores = hs.get_datastores()
        self._store = stores.to_device
        self._devices = stores.devices

    def get_current_key(self) -> int:
        """The to-device stream position (a sync token's `to_device`)."""
        return self._store.get_current_position()

    # PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}
    async def send_to_device(self, sender: str, sender_device: str | None, event_type: str,
                             txn_id: str,
                             messages: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
        """Queue `messages` ({user_id: {device_id or "*": content}}) for their devices.

        Unknown local users and devices are skipped silently (the spec); a retry with the
        same txn_id from the same device delivers nothing twice.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a bad event type or user ID, 400
                M_BAD_JSON for content nested too deep.
        """
        if not is_valid_event_type(event_type):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid event type")
        for user_id, targets in messages.items():
            UserID.parse(user_id)
            for content in targets.values():
                check_content_depth(content)

        by_device: dict[tuple[str, str], dict[str, Any]] = {}
        remote: dict[str, dict[str, Mapping[str, Any]]] = {}
        for user_id, targets in messages.items():
            if not self._hs.is_mine_id(user_id):
                remote.setdefault(UserID.parse(user_id).domain, {})[user_id] = targets
                continue
            known = {d.device_id for d in await self._devices.get_devices(user_id)}
            if ALL_DEVICES in targets:
                for device_id in known:
                    by_device[(user_id, device_id)] = self._message(
                        sender, event_type, targets[ALL_DEVICES])
            # An explicit device ID wins over "*": each device gets one message.
            for device_id, content in targets.items():
                if device_id != ALL_DEVICES and device_id in known:
                    by_device[(user_id, device_id)] = self._message(sender, event_type, content)
        if remote:
            self._send_remote(sender, sender_device, event_type, txn_id, remote)
        if not by_device:
            return

        stream_id = await self._store.add_messages(
            sender, sender_device or "", txn_id, self._clock.time_msec(), by_device)
        if stream_id is None:
            return  # a retried transaction: already delivered
        users = sorted({user_id for user_id, _ in by_device})
        self._notifier.on_new_event("to_device", stream_id, users=users)

    def _send_remote(self, sender: str, sender_device: str | None, event_type: str,
                     txn_id: str, by_server: Mapping[str, Mapping[str, Any]]) -> None:
        """One `m.direct_to_device` EDU per server; the message ID lets the receiver drop
        a retried request's copy."""
        message_id = hashlib.sha256(
            f"{sender}\0{sender_device}\0{txn_id}".encode()).hexdigest()[:32]
        sender_queue = self._hs.get_federation_sender()
        for server, messages in by_server.items():
            sender_queue.send_edu(server, "m.direct_to_device", {
                "sender": sender, "type": event_type, "message_id": message_id,
                "messages": {u: {d: dict(c) for d, c in targets.items()}
                             for u, targets in messages.items()}})

    async def on_remote_to_device(self, origin: str, content: Any) -> None:
        """An `m.direct_to_device` EDU: queue its messages for our users' devices."""
        if not isinstance(content, dict):
            return
        sender, event_type, message_id, messages = (
            content.get("sender"), content.get("type"), content.get("message_id"),
            content.get("messages"))
        if not (isinstance(sender, str) and isinstance(event_type, str)
                and isinstance(message_id, str) and isinstance(messages, dict)):
            return
        try:
            if UserID.parse(sender).domain != origin:
                return
        except MatrixError:
            return
        by_device: dict[tuple[str, str], dict[str, Any]] = {}
        for user_id, targets in messages.items():
            if not isinstance(user_id, str) or not self._hs.is_mine_id(user_id) \
                    or not isinstance(targets, dict):
                continue
            known = {d.device_id for d in await self._devices.get_devices(user_id)}
            for device_id, body in targets.items():
                # Too deep for the target's /sync: dropped, as a malformed message is.
                if not isinstance(body, dict) or nesting_depth(body) > MAX_CONTENT_DEPTH:
                    continue
                wanted = known if device_id == ALL_DEVICES else {device_id} & known
                for target in wanted:
                    by_device[(user_id, target)] = self._message(sender, event_type, body)
        if not by_device:
            return
        stream_id = await self._store.add_messages(
            sender, "", f"federation:{message_id}", self._clock.time_msec(), by_device)
        if stream_id is not None:
            self._notifier.on_new_event("to_device", stream_id,
                                        users=sorted({u for u, _ in by_device}))

    @staticmethod
    def _message(sender: str, event_type: str, content: Mapping[str, Any]) -> dict[str, Any]:
        return {"type": event_type, "sender": sender, "content": dict(content)}

    # -- /sync --

    async def get_to_device_for_sync(self, user_id: str, device_id: str, from_key: int,
                                     to_key: int, limit: int = 100
                                     ) -> tuple[list[dict[str, Any]], int]:
        """The device's messages with from_key < stream_id <= to_key, oldest first.

        Returns:
            At most `limit` messages (`{"type", "sender", "content"}`), and the position up
            to which the answer is complete: `to_key` if all fitted, else the position of
            the last message returned (each device has at most one message per position).
        """
        if limit <= 0:
            return [], from_key
        if from_key >= to_key:
            return [], to_key
        rows = await self._store.get_messages(user_id, device_id, from_key, to_key, limit)
        if len(rows) < limit:
            return [message for _, message in rows], to_key
        return [message for _, message in rows], rows[-1][0]

    async def delete_to_device_up_to(self, user_id: str, device_id: str, up_to: int) -> None:
        """The device acknowledged its messages up to `up_to` (it synced from a token at
        or beyond it): delete them."""
        await self._store.delete_messages_up_to(user_id, device_id, up_to)
