"""Account data (global and per room), room tags and the ignored-users list.

All of them share the account-data stream: every write returns its stream position and
wakes the user's long-polling /sync requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from homeserver.json_decode import check_content_depth
from storage.stores.account_data import GLOBAL, IGNORED_USER_LIST

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: types the server manages: clients may read them but not set them (spec, 405)
SERVER_MANAGED_TYPES = frozenset({"m.fully_read", "m.push_rules"})

TAG_EVENT_TYPE = "m.tag"


class AccountDataHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._notifier = hs.get_notifier()
        self._store = hs.get_datastores().account_data

    def get_current_key(self) -> int:
        """The account-data stream position (a sync token's `account_data`)."""
        return self._store.get_current_position()

    # -- /sync --

    async def get_account_data_for_sync(
            self, user_id: str, from_key: int | None, to_key: int,
    ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """Global events and per-room events ({room_id: [events]}) changed in
        (from_key, to_key]; everything when from_key is None. A room whose tags changed
        gets one `m.tag` event holding all its tags."""
        if from_key is not None and (
                from_key >= to_key or not self._store.may_have_changed(user_id, from_key)):
            return [], {}
        global_events: list[dict[str, Any]] = []
        room_events: dict[str, list[dict[str, Any]]] = {}
        for row in await self._store.get_account_data_changes(user_id, from_key, to_key):
            event = {"type": row.type, "content": dict(row.content)}
            if row.room_id == GLOBAL:
                global_events.append(event)
            else:
                room_events.setdefault(row.room_id, []).append(event)
        tag_changes = await self._store.get_tag_changes(user_id, from_key, to_key)
        for room_id, tags in tag_changes.items():
            if from_key is None and not tags:
                continue  # an initial sync does not need "no tags any more"
            room_events.setdefault(room_id, []).append(
                {"type": TAG_EVENT_TYPE, "content": {"tags": tags}})
        return global_events, room_events

    # -- reading --

    # GET /_matrix/client/v3/user/{userId}/account_data/{type}
    async def get_global_account_data(self, user_id: str, type: str) -> dict[str, Any] | None:
        """The content of a global account data type, or None if never set."""
        return await self._store.get_account_data(user_id, GLOBAL, type)

    # GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
    async def get_room_account_data(self, user_id: str, room_id: str,
                                    type: str) -> dict[str, Any] | None:
        """The content of a room's account data type, or None if never set."""
        return await self._store.get_account_data(user_id, room_id, type)

    async def check_invites_allowed(self, invitee: str) -> None:
        """Raise 403 M_INVITE_BLOCKED if the (local) user blocks invites (spec v1.18)."""
        if await self._store.blocks_invites(invitee):
            raise MatrixError(403, Codes.INVITE_BLOCKED, f"{invitee} does not accept invites")

    async def blocks_invites(self, user_id: str) -> bool:
        return await self._store.blocks_invites(user_id)

    async def get_ignored_users(self, user_id: str) -> frozenset[str]:
        """The users in the user's `m.ignored_user_list` (cached, invalidated on write)."""
        return await self._store.get_ignored_users(user_id)

    # GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags
    async def get_tags(self, user_id: str, room_id: str) -> dict[str, Any]:
        """tag -> tag content, for one room of the user."""
        return await self._store.get_tags_for_room(user_id, room_id)

    # -- writing --

    @staticmethod
    def check_client_may_set(type: str) -> None:
        """Refuse types the server manages, for writes through the account-data API.

        Raises:
            MatrixError: 405 M_BAD_JSON for `m.fully_read` and `m.push_rules` (spec).
        """
        if type in SERVER_MANAGED_TYPES:
            raise MatrixError(405, Codes.BAD_JSON, f"Cannot set {type} through this API.")

    # PUT /_matrix/client/v3/user/{userId}/account_data/{type}
    async def set_global_account_data(self, user_id: str, type: str,
                                      content: Mapping[str, Any]) -> int:
        """Store global account data; returns its stream position.

        Raises:
            MatrixError: 400 M_BAD_JSON when `m.ignored_user_list` has an `ignored_users`
                that is not an object, or for content nested too deep.
        """
        if type == IGNORED_USER_LIST and not isinstance(
                content.get("ignored_users", {}), dict):
            raise MatrixError(400, Codes.BAD_JSON, "ignored_users must be an object")
        check_content_depth(content)
        return self._notify(user_id, await self._store.set_account_data(
            user_id, GLOBAL, type, content))

    # PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
    async def set_room_account_data(self, user_id: str, room_id: str, type: str,
                                    content: Mapping[str, Any]) -> int:
        """Store room account data (also `m.fully_read`, for read markers); returns its
        stream position."""
        check_content_depth(content)
        return self._notify(user_id, await self._store.set_account_data(
            user_id, room_id, type, content))

    # PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
    async def add_tag(self, user_id: str, room_id: str, tag: str,
                      content: Mapping[str, Any]) -> int:
        """Add or replace a room tag; returns its stream position."""
        check_content_depth({"tags": {tag: content}})  # as /sync sends it, in m.tag
        return self._notify(user_id, await self._store.add_tag(user_id, room_id, tag, content))

    # DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
    async def remove_tag(self, user_id: str, room_id: str, tag: str) -> int:
        """Remove a room tag (nothing happens if it is not set); returns the stream
        position after the change."""
        stream_id = await self._store.remove_tag(user_id, room_id, tag)
        if stream_id is None:
            return self.get_current_key()
        return self._notify(user_id, stream_id)

    def _notify(self, user_id: str, stream_id: int) -> int:
        self._notifier.on_new_event("account_data", stream_id, users=[user_id])
        return stream_id
