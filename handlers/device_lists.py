"""The device-list stream: announcing device changes of local users, and telling a syncing
client whose device lists to (re)fetch (`device_lists.changed`) or stop tracking (`left`).

Spec: end-to-end encryption module, "Tracking the device list for a user". A client tracks
the devices of every user it shares a room with; the server tells it when one of them
changed devices, started sharing a room with it, or no longer shares any room with it.

Federation: a local user's change goes to every server sharing a joined room with them as
an `m.device_list_update` EDU per device (with an empty `prev_id`, which makes Synapse
re-fetch the whole list through `GET /user/devices/{userId}`); a remote user's EDU, from
their own server, is recorded in the same stream so that local room-mates' /sync lists them
in `device_lists.changed`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from homeserver.errors import MatrixError
from homeserver.identifiers import UserID

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)


class DeviceListHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._store = stores.device_lists
        self._members = stores.room_members
        self._devices = stores.devices
        self._events = stores.events
        self._notifier = hs.get_notifier()
        self._is_mine_id = hs.is_mine_id
        # The federation sender is fetched on first use (it is built after us).
        self._get_federation_sender = hs.get_federation_sender

    def get_current_key(self) -> int:
        """The device-list stream position for a new sync token."""
        return self._store.get_current_position()

    async def notify_device_change(self, user_id: str, device_ids: Collection[str]) -> int | None:
        """Record that these devices of a local user were created, deleted or renamed, and
        wake the user and every local user sharing a joined room with them.

        Returns:
            the new stream position, or None when `device_ids` is empty (nothing changed).
        """
        if not device_ids:
            return None
        position = await self._store.add_device_changes(user_id, device_ids)
        users = await self._local_users_sharing_rooms_with(user_id)
        self._notifier.on_new_event("device_list", position, users=users)
        if self._is_mine_id(user_id):
            await self._federate(user_id, device_ids, position)
        return position

    async def _federate(self, user_id: str, device_ids: Collection[str],
                        position: int) -> None:
        """Send one `m.device_list_update` per changed device to the servers sharing a
        joined room with the user (a deleted device says `deleted`)."""
        rooms = await self._members.get_rooms_for_local_user(user_id)
        if not rooms:
            return
        sender = self._get_federation_sender()
        destinations: set[str] = set()
        for room in rooms:
            destinations |= await sender.destinations_for_room(room.room_id)
        if not destinations:
            return
        for device_id in sorted(set(device_ids)):
            device = await self._devices.get_device(user_id, device_id)
            content: dict[str, Any] = {"user_id": user_id, "device_id": device_id,
                                       "stream_id": position, "prev_id": []}
            if device is None:
                content["deleted"] = True
            elif device.display_name is not None:
                content["device_display_name"] = device.display_name
            for destination in sorted(destinations):
                sender.send_edu(destination, "m.device_list_update", content,
                                key=("m.device_list_update", user_id, device_id))

    async def on_remote_device_list_update(self, origin: str, content: Any) -> None:
        """An `m.device_list_update` EDU: a device of a user of `origin` changed. Recorded
        (and local room-mates woken) only for a user sharing a joined room with one of our
        users; malformed EDUs and other servers' users are ignored."""
        if not isinstance(content, dict):
            return
        user_id, device_id = content.get("user_id"), content.get("device_id")
        stream_id = content.get("stream_id")
        if not (isinstance(user_id, str) and isinstance(device_id, str) and device_id
                and isinstance(stream_id, int) and not isinstance(stream_id, bool)):
            return
        await self._record_remote_change(origin, user_id, device_id)

    async def on_remote_signing_key_update(self, origin: str, content: Any) -> None:
        """An `m.signing_key_update` EDU (a user's cross-signing keys changed). Cross-signing
        keys are not stored yet; clients learn of the change as a device-list change, which
        makes them query the user's keys again (as Synapse does)."""
        if not isinstance(content, dict):
            return
        user_id = content.get("user_id")
        if not isinstance(user_id, str):
            return
        await self._record_remote_change(origin, user_id, "*cross-signing*")

    async def _record_remote_change(self, origin: str, user_id: str, device_id: str) -> None:
        """Record a remote user's device change, only from their own server and only for a
        user sharing a joined room with one of ours; wake those local users."""
        try:
            if UserID.parse(user_id).domain != origin or self._is_mine_id(user_id):
                return
        except MatrixError:
            return
        users = await self._members.get_local_users_sharing_room_with(user_id)
        if not users:
            logger.info("Device list update for %s, who shares no room with us: ignored",
                        user_id)
            return
        position = await self._store.add_device_changes(user_id, [device_id])
        self._notifier.on_new_event("device_list", position, users=users)

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
