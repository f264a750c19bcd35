"""The device-list stream: announcing device changes of local users, and telling a syncing
client whose device lists to (re)fetch (`device_lists.changed`) or stop tracking (`left`).

Spec: end-to-end encryption module, "Tracking the device list for a user". A client tracks
the devices of every user it shares a room with; the server tells it when one of them
changed devices, started sharing a room with it, or no longer shares any room with it.

Federation: a local user's change goes to every server sharing a joined room with them as
an `m.device_list_update` EDU per device, with the device's keys and the user's previous
position as `prev_id` (a receiver that missed one re-fetches the whole list through
`GET /user/devices/{userId}`); cross-signing changes go as `m.signing_key_update`. A remote
user's EDU, from their own server, is recorded in the same stream so that local
room-mates' /sync lists them in `device_lists.changed`, and updates the remote cache
(`handlers/remote_device_lists.py`).

Pruning: a row superseded by a newer row for the same (user, device) is deleted (a
"changed since" question only needs each device's newest row), as are the rows of remote
users who no longer share a room with a local user.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import pydantic
from twisted.internet import defer, task

from handlers.e2e_keys import device_keys_json
from handlers.remote_device_lists import (
    DeviceListUpdate,
    RemoteDeviceListUpdater,
    SigningKeyUpdate,
)
from homeserver.errors import MatrixError
from homeserver.identifiers import UserID

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: the device ID under which a cross-signing change is recorded in the stream
CROSS_SIGNING_DEVICE = "*cross-signing*"
#: how often superseded stream rows and stale remote caches are pruned
PRUNE_INTERVAL_S = 3600


class DeviceListHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._store = stores.device_lists
        self._members = stores.room_members
        self._devices = stores.devices
        self._events = stores.events
        self._e2e = stores.e2e_keys
        self._clock = hs.get_clock()
        self._notifier = hs.get_notifier()
        self._is_mine_id = hs.is_mine_id
        # The federation sender is fetched on first use (it is built after us).
        self._get_federation_sender = hs.get_federation_sender
        self._remote = RemoteDeviceListUpdater(hs)
        self._prune_loop: task.LoopingCall | None = None
        # an IDelayedCall (zope interfaces do not type-check as attribute types)
        self._prune_start: Any = self._clock.call_later(PRUNE_INTERVAL_S, self._start_pruning)
        hs.add_shutdown_hook(self._stop_pruning)

    def _start_pruning(self) -> None:
        self._prune_start = None
        self._prune_loop = self._clock.looping_call(
            PRUNE_INTERVAL_S, lambda: defer.ensureDeferred(self.prune()))

    def _stop_pruning(self) -> None:
        if self._prune_start is not None and self._prune_start.active():
            self._prune_start.cancel()
        self._prune_start = None
        if self._prune_loop is not None and self._prune_loop.running:
            self._prune_loop.stop()

    async def prune(self) -> None:
        """Bound the stream and the remote cache (see the module docstring)."""
        try:
            await self._store.prune_superseded_changes()
            stale = [u for u in await self._e2e.get_cached_remote_users()
                     if not await self._members.get_local_users_sharing_room_with(u)]
            await self._e2e.delete_remote_device_lists(stale)
            await self._store.delete_changes_for_users(stale)
        except Exception:  # noqa: BLE001 - a failed run is retried at the next interval
            logger.exception("Pruning the device-list stream failed")

    def get_current_key(self) -> int:
        """The device-list stream position for a new sync token."""
        return self._store.get_current_position()

    async def notify_device_change(self, user_id: str, device_ids: Collection[str]) -> int | None:
        """Record that these devices of a local user were created, deleted, renamed or
        got keys, and wake the user and every local user sharing a joined room with them.

        Returns:
            the new stream position, or None when `device_ids` is empty (nothing changed).
        """
        if not device_ids:
            return None
        if not self._is_mine_id(user_id):
            position = await self._store.add_device_changes(user_id, device_ids)
        else:
            # One position per device: a receiver (Synapse) ignores an update whose
            # stream_id it has seen, and expects prev_id to be the last one it saw.
            chain: list[tuple[str, int, int]] = []
            prev = await self._store.get_last_position_for_user(
                user_id, exclude_device=CROSS_SIGNING_DEVICE)
            for device_id in sorted(set(device_ids)):
                position = await self._store.add_device_changes(user_id, [device_id])
                chain.append((device_id, position, prev))
                prev = position
        users = await self._local_users_sharing_rooms_with(user_id)
        self._notifier.on_new_event("device_list", position, users=users)
        if self._is_mine_id(user_id):
            await self._federate(user_id, chain)
        return position

    async def notify_cross_signing_change(self, user_id: str) -> int:
        """A local user's cross-signing keys (or signatures made with them) changed: their
        room-mates re-query their keys, and other servers get an `m.signing_key_update`."""
        position = await self._store.add_device_changes(user_id, [CROSS_SIGNING_DEVICE])
        users = await self._local_users_sharing_rooms_with(user_id)
        self._notifier.on_new_event("device_list", position, users=users)
        destinations = await self._destinations_for(user_id)
        if destinations:
            keys = (await self._e2e.get_cross_signing_keys([user_id])).get(user_id, {})
            content: dict[str, Any] = {"user_id": user_id}
            if "master" in keys:
                content["master_key"] = keys["master"]
            if "self_signing" in keys:
                content["self_signing_key"] = keys["self_signing"]
            sender = self._get_federation_sender()
            for destination in sorted(destinations):
                sender.send_edu(destination, "m.signing_key_update", content,
                                key=("m.signing_key_update", user_id))
        return position

    async def notify_signed_other_users(self, signer: str, targets: Collection[str]) -> None:
        """A local user signed these users' master keys: their keys, as the signer's
        clients see them, changed, so those clients re-query them (Synapse's user
        signature stream). Not federated: the signature is kept here."""
        position = None
        for target in sorted(set(targets)):
            position = await self._store.add_device_changes(target, [CROSS_SIGNING_DEVICE])
        if position is not None:
            self._notifier.on_new_event("device_list", position, users={signer})

    async def _destinations_for(self, user_id: str) -> set[str]:
        rooms = await self._members.get_rooms_for_local_user(user_id)
        if not rooms:
            return set()
        sender = self._get_federation_sender()
        destinations: set[str] = set()
        for room in rooms:
            destinations |= await sender.destinations_for_room(room.room_id)
        return destinations

    async def _federate(self, user_id: str, chain: list[tuple[str, int, int]]) -> None:
        """Send one `m.device_list_update` per (device, position, previous position) to
        the servers sharing a joined room with the user: its keys, or `deleted` for a
        deleted device, and the previous position as `prev_id` so that a receiver that
        missed one sees the gap."""
        destinations = await self._destinations_for(user_id)
        if not destinations:
            return
        devices = {d.device_id: d for d in
                   (await self._e2e.get_devices_with_keys([user_id]))[user_id]}
        signatures = await self._e2e.get_signatures_for_users([user_id])
        sender = self._get_federation_sender()
        for device_id, position, prev in chain:
            device = devices.get(device_id)
            content: dict[str, Any] = {"user_id": user_id, "device_id": device_id,
                                       "stream_id": position,
                                       "prev_id": [prev] if prev else []}
            if device is None:
                content["deleted"] = True
            else:
                if device.display_name is not None:
                    content["device_display_name"] = device.display_name
                if device.keys is not None:
                    content["keys"] = device_keys_json(device, signatures)
            for destination in sorted(destinations):
                # Not keyed: a receiver must see every position, or it resyncs.
                sender.send_edu(destination, "m.device_list_update", content)

    async def on_remote_device_list_update(self, origin: str, content: Any) -> None:
        """An `m.device_list_update` EDU: a device of a user of `origin` changed. Recorded
        (and local room-mates woken) only for a user sharing a joined room with one of our
        users; malformed EDUs and other servers' users are ignored. The cached device list
        is updated in place when `prev_id` follows what we have, else resynced."""
        try:
            edu = DeviceListUpdate.model_validate(content)
        except pydantic.ValidationError:
            return
        if not await self._record_remote_change(origin, edu.user_id, edu.device_id):
            return
        await self._remote.on_device_list_update(origin, edu)

    async def on_remote_signing_key_update(self, origin: str, content: Any) -> None:
        """An `m.signing_key_update` EDU (a user's cross-signing keys changed): the cache
        takes the new keys and clients learn of it as a device-list change."""
        try:
            edu = SigningKeyUpdate.model_validate(content)
        except pydantic.ValidationError:
            return
        if not await self._record_remote_change(origin, edu.user_id, CROSS_SIGNING_DEVICE):
            return
        await self._e2e.update_remote_signing_keys(edu.user_id, edu.master_key,
                                                   edu.self_signing_key)

    async def _record_remote_change(self, origin: str, user_id: str, device_id: str) -> bool:
        """Record a remote user's device change, only from their own server and only for a
        user sharing a joined room with one of ours; wake those local users."""
        try:
            if UserID.parse(user_id).domain != origin or self._is_mine_id(user_id):
                return False
        except MatrixError:
            return False
        users = await self._members.get_local_users_sharing_room_with(user_id)
        if not users:
            logger.info("Device list update for %s, who shares no room with us: ignored",
                        user_id)
            return False
        position = await self._store.add_device_changes(user_id, [device_id])
        self._notifier.on_new_event("device_list", position, users=users)
        return True

    async def _local_users_sharing_rooms_with(self, user_id: str) -> set[str]:
        users = {user_id}
        for room in await self._members.get_rooms_for_local_user(user_id):
            users.update(u for u in await self._members.get_users_in_room(room.room_id)
                         if self._is_mine_id(u))
        return users

    async def get_changes_for_sync(self, user_id: str, since_key: int | None,
                                   since_room: int | None, now_key: int, now_room: int
                                   ) -> tuple[list[str], list[str]]:
        """The `device_lists` of an incremental sync: (changed, left), both sorted.

        `changed`: the user themself and users sharing a joined room with them whose devices
        changed in (since_key, now_key], plus users who joined one of the user's rooms, or
        were in a room the user joined, in (since_room, now_room]. `left`: users who left a
        room shared with the user (or were in a room the user left) in that range and now
        share no joined room with them. Both empty on an initial sync (since_key None).
        Nothing is read from the database when neither position moved.
        """
        if since_key is None:
            return [], []
        device_moved = since_key < now_key
        # Only a membership change in the range matters, and the events store knows when
        # the last one happened: messages alone cost no query.
        room_moved = since_room is not None and since_room < now_room \
            and since_room < self._events.last_membership_change
        if not device_moved and not room_moved:
            return [], []

        my_rooms = {r.room_id for r in await self._members.get_rooms_for_local_user(user_id)}
        changed: set[str] = set()
        changed_candidates: set[str] = set()
        left_candidates: set[str] = set()

        if device_moved:
            users = await self._store.get_users_changed_between(since_key, now_key)
            if user_id in users:
                changed.add(user_id)
            changed_candidates.update(users)

        if room_moved:
            assert since_room is not None
            rows = await self._store.get_membership_changes_for_user(
                user_id, since_room, now_room)
            # The user's own last membership in each room where it changed in the range.
            mine = {r.room_id: r.membership for r in rows if r.user_id == user_id}
            left_rooms: set[str] = set()
            for room_id, membership in mine.items():
                if room_id in my_rooms and membership == "join":
                    # Newly joined: every member's devices are new to the client.
                    changed_candidates.update(await self._members.get_users_in_room(room_id))
                elif room_id not in my_rooms and membership in ("leave", "ban"):
                    left_rooms.add(room_id)
                    left_candidates.update(await self._members.get_users_in_room(room_id))
            for r in rows:
                if r.user_id == user_id:
                    continue
                if r.membership == "join" and r.room_id in my_rooms:
                    changed_candidates.add(r.user_id)
                elif r.membership in ("leave", "ban") and (
                        r.room_id in my_rooms or r.room_id in left_rooms):
                    left_candidates.add(r.user_id)

        changed_candidates.discard(user_id)
        left_candidates.discard(user_id)
        sharing = await self._filter_sharing(changed_candidates | left_candidates, my_rooms)
        changed.update(changed_candidates & sharing)
        left = left_candidates - sharing
        return sorted(changed), sorted(left)

    async def _filter_sharing(self, users: set[str], my_rooms: set[str]) -> set[str]:
        """Those of `users` joined to at least one of `my_rooms` now."""
        if not users or not my_rooms:
            return set()
        sharing: set[str] = set()
        remote: list[str] = []
        for user in users:
            if self._is_mine_id(user):
                # Cached per user: no query for local users seen recently.
                rooms = await self._members.get_rooms_for_local_user(user)
                if any(r.room_id in my_rooms for r in rooms):
                    sharing.add(user)
            else:
                remote.append(user)
        if remote:
            sharing |= await self._store.get_users_joined_to_any(remote, my_rooms)
        return sharing
