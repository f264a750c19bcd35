"""Read receipts (public, private, threaded) and the fully-read marker.

Receipts only move forward: a receipt for an event at or before the user's current one of
the same type and thread is accepted but not stored (as Synapse). `m.read.private`
receipts are only ever shown to their owner.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from handlers.relations import MAIN_TIMELINE, thread_of
from homeserver.errors import Codes, MatrixError
from homeserver.events import Event
from storage.stores.receipts import PRIVATE_TYPE, Receipt

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: receipt types a client may send to `/receipt` (m.fully_read sets the read marker)
RECEIPT_TYPES = ("m.read", "m.read.private")
FULLY_READ = "m.fully_read"


class ReceiptsHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._clock = hs.get_clock()
        stores = hs.get_datastores()
        self._store = stores.receipts
        self._events = stores.events
        self._relations = stores.relations
        self._members = stores.room_members
        self._notifier = hs.get_notifier()
        self._visibility = hs.get_visibility_handler()
        # The federation sender is fetched on first use (it is built lazily).
        self._get_federation_sender = hs.get_federation_sender

    def get_current_key(self) -> int:
        """The receipt stream position a sync token may point at."""
        return self._store.get_max_receipt_stream_id()

    # -- /sync --

    async def get_receipts_for_sync(self, user_id: str, room_ids: Collection[str],
                                    from_key: int | None, to_key: int
                                    ) -> dict[str, dict[str, Any]]:
        """One `m.receipt` ephemeral event per room with receipts changed in
        (from_key, to_key] (every current receipt when from_key is None). Other users'
        `m.read.private` receipts are left out."""
        receipts = await self._store.get_receipts_for_rooms(room_ids, from_key, to_key,
                                                            viewer=user_id)
        contents: dict[str, dict[str, Any]] = {}
        for r in receipts:
            by_event = contents.setdefault(r.room_id, {})
            by_type = by_event.setdefault(r.event_id, {}).setdefault(r.receipt_type, {})
            by_type[r.user_id] = _receipt_data(r)
        return {room_id: {"type": "m.receipt", "content": content}
                for room_id, content in contents.items()}

    async def get_read_positions(self, user_id: str,
                                 room_ids: Collection[str]) -> dict[str, int]:
        """room -> stream ordering of the user's furthest unthreaded or "main" `m.read` /
        `m.read.private` receipt; rooms without one are absent. Unread counts count
        notifications after it."""
        return await self._store.get_read_positions(user_id, room_ids)

    async def get_thread_read_positions_for_rooms(self, user_id: str,
                                                  room_ids: Collection[str]
                                                  ) -> dict[str, dict[str, int]]:
        """room -> thread -> the user's threaded read position (for unread counts)."""
        return await self._store.get_thread_read_positions_bulk(user_id, room_ids)

    async def get_thread_read_positions(self, user_id: str, room_id: str) -> dict[str, int]:
        """thread ID ("main" or a thread root's event ID) -> stream ordering of the user's
        furthest threaded `m.read` / `m.read.private` receipt in that thread."""
        return await self._store.get_thread_read_positions(user_id, room_id)

    # -- writing --

    # POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}
    async def received_receipt(self, user_id: str, room_id: str, receipt_type: str,
                               event_id: str, thread_id: str | None) -> None:
        """Store a local user's receipt and wake the room's syncs.

        An unknown event, or one of another room, is ignored (200, as Synapse: the spec
        gives no error for it and clients send receipts for events they may have lost).

        Raises:
            MatrixError: 400 M_INVALID_PARAM for an unknown receipt type, an empty
                thread ID or an event outside the thread; 403 M_FORBIDDEN when the user is
                not joined or may not see the event.
        """
        if receipt_type not in RECEIPT_TYPES:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"Receipt type must be one of {', '.join(RECEIPT_TYPES)}")
        if thread_id is not None and not thread_id:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "thread_id field must be a non-empty string")
        await self._check_joined(user_id, room_id)
        event = await self._get_visible_event(user_id, room_id, event_id)
        if event is None:
            return
        if thread_id is not None and not await self._is_event_in_thread(event, thread_id):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"event_id {event_id} is not related to thread {thread_id}")
        stream_ordering = await self._events.get_stream_ordering(event_id)
        if stream_ordering is None:
            return
        stream_id = await self._store.insert_receipt(
            room_id, receipt_type, user_id, thread_id, event_id, stream_ordering,
            {"ts": self._clock.time_msec()})
        if stream_id is None:
            return
        if receipt_type == PRIVATE_TYPE:
            # Only its owner ever sees it: do not wake the whole room.
            self._notifier.on_new_event("receipt", stream_id, users=[user_id])
        else:
            self._notifier.on_new_event("receipt", stream_id, rooms=[room_id])
            # Other servers get public receipts (an `m.receipt` EDU; a newer one replaces
            # the user's queued one in the same room and thread).
            data: dict[str, Any] = {"ts": self._clock.time_msec()}
            if thread_id is not None:
                data["thread_id"] = thread_id
            self._get_federation_sender().send_edu_to_room(
                room_id, "m.receipt",
                {room_id: {receipt_type: {user_id: {"event_ids": [event_id], "data": data}}}},
                key=(room_id, receipt_type, user_id, thread_id))

    async def on_remote_receipts(self, origin: str, content: Any) -> None:
        """An `m.receipt` EDU: public read receipts of `origin`'s users in rooms they are
        joined to; anything else in it is ignored."""
        if not isinstance(content, dict):
            return
        for room_id, by_type in content.items():
            if not isinstance(room_id, str) or not isinstance(by_type, dict):
                continue
            joined = set(await self._members.get_users_in_room(room_id))
            for receipt_type, by_user in by_type.items():
                if receipt_type != "m.read" or not isinstance(by_user, dict):
                    continue
                for user_id, receipt in by_user.items():
                    await self._remote_receipt(origin, room_id, user_id, receipt, joined)

    async def _remote_receipt(self, origin: str, room_id: str, user_id: Any, receipt: Any,
                              joined: set[str]) -> None:
        if not isinstance(user_id, str) or user_id not in joined \
                or user_id.split(":", 1)[-1] != origin or not isinstance(receipt, dict):
            return
        event_ids = receipt.get("event_ids")
        raw_data = receipt.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        if not isinstance(event_ids, list) or not event_ids \
                or not isinstance(event_ids[-1], str):
            return
        event = await self._events.get_event(event_ids[-1])
        ordering = await self._events.get_stream_ordering(event_ids[-1])
        if event is None or event.room_id != room_id or ordering is None:
            return
        thread_id = data.get("thread_id") if isinstance(data.get("thread_id"), str) else None
        ts = data.get("ts") if isinstance(data.get("ts"), int) else self._clock.time_msec()
        stream_id = await self._store.insert_receipt(
            room_id, "m.read", user_id, thread_id, event.event_id, ordering, {"ts": ts})
        if stream_id is not None:
            self._notifier.on_new_event("receipt", stream_id, rooms=[room_id])

    # POST /_matrix/client/v3/rooms/{roomId}/read_markers
    async def set_read_markers(self, user_id: str, room_id: str, fully_read: str | None,
                               read: str | None, read_private: str | None) -> None:
        """Move the fully-read marker and/or the read receipts (each optional).

        Raises:
            MatrixError: 403 M_FORBIDDEN when the user is not joined; 404 M_NOT_FOUND when
                the fully-read event is not in the room.
        """
        await self._check_joined(user_id, room_id)
        if fully_read is not None:
            await self.set_fully_read_marker(user_id, room_id, fully_read)
        if read is not None:
            await self.received_receipt(user_id, room_id, "m.read", read, None)
        if read_private is not None:
            await self.received_receipt(user_id, room_id, PRIVATE_TYPE, read_private, None)

    async def set_fully_read_marker(self, user_id: str, room_id: str, event_id: str) -> None:
        """Point the room account data `m.fully_read` at the event.

        Raises:
            MatrixError: 403 M_FORBIDDEN when the user is not joined; 404 M_NOT_FOUND when
                the event is unknown or not in the room (the spec: it MUST belong to it).
        """
        await self._check_joined(user_id, room_id)
        event = await self._get_visible_event(user_id, room_id, event_id)
        if event is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found in this room.")
        account_data = self._hs.get_account_data_handler()
        current = await account_data.get_room_account_data(user_id, room_id, FULLY_READ)
        current_id = current.get("event_id") if current else None
        if isinstance(current_id, str):
            # Like receipts, the marker only moves forward (as Synapse).
            current_pos = await self._events.get_stream_ordering(current_id)
            new_pos = await self._events.get_stream_ordering(event_id)
            if current_pos is not None and new_pos is not None and new_pos <= current_pos:
                return
        await account_data.set_room_account_data(
            user_id, room_id, FULLY_READ, {"event_id": event_id})

    # -- helpers --

    async def _check_joined(self, user_id: str, room_id: str) -> None:
        membership = await self._members.get_local_membership(user_id, room_id)
        if membership is None or membership.membership != "join":
            raise MatrixError(403, Codes.FORBIDDEN, f"User {user_id} not in room {room_id}")

    async def _get_visible_event(self, user_id: str, room_id: str,
                                 event_id: str) -> Event | None:
        """The event if it is in the room; None when unknown or elsewhere.

        Raises:
            MatrixError: 403 M_FORBIDDEN when the user may not see it.
        """
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id:
            return None
        if not await self._visibility.is_event_visible_to(user_id, event):
            raise MatrixError(403, Codes.FORBIDDEN,
                              "You don't have permission to access that event.")
        return event

    async def _is_event_in_thread(self, event: Event, thread_id: str) -> bool:
        """Whether a receipt on `event` may name `thread_id`.

        "main" fits events not in a thread (thread roots included). A root's ID fits the
        events of that thread, the root itself and events related (by non-thread
        relations) to the root.
        """
        thread, chain = await thread_of(self._relations, event)
        if thread_id == MAIN_TIMELINE:
            return thread == MAIN_TIMELINE
        return thread == thread_id or thread_id in chain


def _receipt_data(receipt: Receipt) -> dict[str, Any]:
    data = dict(receipt.data)
    if receipt.thread_id is not None:
        data["thread_id"] = receipt.thread_id
    return data
