"""`/sync`: everything that changed for a user since their token, waiting for it if nothing
has yet.

The answer is computed between two tokens, `since` (what the client has seen; None for an
initial sync) and `now` (the current position of every stream), so that `next_batch = now`
is exact: whatever is persisted after `now` is in the next answer, nothing twice. Room
sections come from `handlers/sync_rooms.py`; this module adds the per-user streams and
the long-poll.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from handlers.filtering import FilterCollection
from handlers.sync_rooms import RoomSyncBuilder, SyncRequest
from homeserver.stream_token import StreamToken

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: to-device messages per /sync answer; the rest follow in the next one
TO_DEVICE_LIMIT = 100


@attrs.frozen(slots=True)
class SyncParams:
    user_id: str
    device_id: str | None
    since: StreamToken | None
    timeout_ms: int
    full_state: bool
    filter: FilterCollection
    set_presence: str = "online"


class SyncHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._notifier = hs.get_notifier()
        stores = hs.get_datastores()
        self._events = stores.events
        self._members = stores.room_members
        self._account_data = hs.get_account_data_handler()
        self._receipts = hs.get_receipts_handler()
        self._typing = hs.get_typing_handler()
        self._presence = hs.get_presence_handler()
        self._to_device = hs.get_to_device_handler()
        self._push_rules = hs.get_push_rules_handler()
        self._device_lists = hs.get_device_list_handler()
        self._e2e_keys = hs.get_e2e_keys_handler()
        self._rooms = RoomSyncBuilder(hs)

    def current_token(self) -> StreamToken:
        return StreamToken(
            room=self._events.get_room_max_stream_ordering(),
            presence=self._presence.get_current_key(),
            typing=self._typing.get_current_key(),
            receipt=self._receipts.get_current_key(),
            account_data=self._account_data.get_current_key(),
            push_rules=self._push_rules.get_current_key(),
            to_device=self._to_device.get_current_key(),
            device_list=self._device_lists.get_current_key(),
        )

    async def sync(self, params: SyncParams) -> dict[str, Any]:
        """The /sync answer; long-polls up to `timeout_ms` when nothing changed."""
        await self._presence.user_syncing(params.user_id, params.set_presence)
        since = params.since
        if since is not None and params.device_id is not None and since.to_device:
            # Syncing from a token acknowledges the to-device messages it covered.
            await self._to_device.delete_to_device_up_to(
                params.user_id, params.device_id, since.to_device)
        if since is None or params.full_state or params.timeout_ms <= 0:
            return await self._generate(params, self.current_token())
        deadline = self._clock.time_msec() + params.timeout_ms
        while True:
            version = self._notifier.current_version()
            now = self.current_token()
            if now.advanced_past(since):
                result = await self._generate(params, now)
                if not _is_empty(result):
                    return result
            remaining = deadline - self._clock.time_msec()
            if remaining <= 0:
                return await self._generate(params, now)
            room_ids = await self._rooms.rooms_to_watch(params.user_id)
            woken = await self._notifier.wait_for_events(
                params.user_id, room_ids, version, remaining)
            if not woken:
                return await self._generate(params, self.current_token())

    async def _generate(self, params: SyncParams, now: StreamToken) -> dict[str, Any]:
        since = params.since
        user_id = params.user_id
        fc = params.filter
        request = SyncRequest(
            user_id=user_id, device_id=params.device_id, since=since, now=now,
            full_state=params.full_state, filter=fc,
            ignored=await self._account_data.get_ignored_users(user_id),
            invites_blocked=await self._account_data.blocks_invites(user_id))

        global_data, room_data = await self._account_data.get_account_data_for_sync(
            user_id, since.account_data if since else None, now.account_data)
        if since is None or await self._push_rules.push_rules_changed(
                user_id, since.push_rules, now.push_rules):
            global_data = [e for e in global_data if e.get("type") != "m.push_rules"]
            global_data.append({"type": "m.push_rules",
                                "content": await self._push_rules.get_push_rules_for_sync(
                                    user_id)})
        rooms = await self._rooms.build(request, room_data)

        presence = await self._presence.get_presence_for_sync(
            user_id, since.presence if since else None, now.presence)
        to_device: list[dict[str, Any]] = []
        next_batch = now
        if params.device_id is not None:
            to_device, upto = await self._to_device.get_to_device_for_sync(
                user_id, params.device_id, since.to_device if since else 0, now.to_device,
                TO_DEVICE_LIMIT)
            next_batch = now.replace(to_device=upto)

        changed, left = await self._device_lists.get_changes_for_sync(
            user_id, since.device_list if since else None, since.room if since else None,
            now.device_list, now.room)

        otk_counts: dict[str, int] = {}
        fallback_types: list[str] = []
        if params.device_id is not None:
            otk_counts, fallback_types = await self._e2e_keys.get_key_counts_for_sync(
                user_id, params.device_id)

        return {
            "next_batch": next_batch.serialize(),
            "rooms": rooms,
            "presence": {"events": fc.presence.filter(presence)},
            "account_data": {"events": fc.account_data.filter(global_data)},
            "to_device": {"events": to_device},
            "device_lists": {"changed": changed, "left": left},
            "device_one_time_keys_count": otk_counts,
            "device_unused_fallback_key_types": fallback_types,
            "org.matrix.msc2732.device_unused_fallback_key_types": fallback_types,
        }


def _is_empty(result: dict[str, Any]) -> bool:
    rooms = result["rooms"]
    return not (any(rooms.values()) or result["presence"]["events"]
                or result["account_data"]["events"] or result["to_device"]["events"]
                or result["device_lists"]["changed"] or result["device_lists"]["left"])
