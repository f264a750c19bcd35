"""Server-side key backup (`/room_keys/...`): versions, and the encrypted megolm sessions
stored in them. The server never decrypts `session_data`.

Keys are written only to the current (newest non-deleted) version; a write to another
gets 403 `M_WRONG_ROOM_KEYS_VERSION` with `current_version`. A stored session is replaced
only by a better one (spec, "Server-side key backups"): verified beats unverified, then
the lower `first_message_index`, then the lower `forwarded_count`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from homeserver.errors import BadRequestError, Codes, MatrixError, NotFoundError
from storage.stores.e2e_room_keys import BackupVersion, RoomKey

if TYPE_CHECKING:
    from homeserver.server import HomeServer


@attrs.frozen(slots=True)
class BackupInfo:
    version: BackupVersion
    count: int


@attrs.frozen(slots=True)
class BackupUpdate:
    etag: int
    count: int


def is_better(new: RoomKey, old: RoomKey) -> bool:
    """Whether `new` should replace `old` (the spec's order; a tie keeps `old`)."""
    if new.is_verified != old.is_verified:
        return new.is_verified
    if new.first_message_index != old.first_message_index:
        return new.first_message_index < old.first_message_index
    return new.forwarded_count < old.forwarded_count


def parse_version(version: str) -> int | None:
    """A version string as stored (a positive integer), or None for anything else."""
    if not version.isdigit() or len(version) > 18:
        return None
    return int(version)


class E2eRoomKeysHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._store = hs.get_datastores().e2e_room_keys

    # POST /_matrix/client/v3/room_keys/version
    async def create_version(self, user_id: str, algorithm: str,
                             auth_data: Mapping[str, Any]) -> int:
        return await self._store.create_version(user_id, algorithm, auth_data)

    # GET /_matrix/client/v3/room_keys/version[/{version}]
    async def get_version(self, user_id: str, version: str | None) -> BackupInfo:
        """Raises NotFoundError: no such (or no current) version."""
        number = None if version is None else parse_version(version)
        if version is not None and number is None:
            raise NotFoundError("Unknown backup version")
        found = await self._store.get_version(user_id, number)
        if found is None:
            raise NotFoundError("Unknown backup version" if version else
                                "No current backup version")
        return BackupInfo(found, await self._store.count_keys(user_id, found.version))

    # PUT /_matrix/client/v3/room_keys/version/{version}
    async def update_version(self, user_id: str, version: str, algorithm: str,
                             auth_data: Mapping[str, Any], body_version: str | None) -> None:
        """Raises BadRequestError (the body's version or algorithm differs) or
        NotFoundError."""
        if body_version is not None and body_version != version:
            raise BadRequestError("The version in the body does not match the path")
        info = await self.get_version(user_id, version)
        if info.version.algorithm != algorithm:
            raise BadRequestError("The algorithm does not match the backup's")
        if not await self._store.update_version(user_id, info.version.version, auth_data):
            raise NotFoundError("Unknown backup version")

    # DELETE /_matrix/client/v3/room_keys/version/{version}
    async def delete_version(self, user_id: str, version: str) -> None:
        number = parse_version(version)
        if number is None or not await self._store.delete_version(user_id, number):
            raise NotFoundError("Unknown backup version")

    # PUT /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]
    async def upload_keys(self, user_id: str, version: str, keys: list[RoomKey]
                          ) -> BackupUpdate:
        """Raises NotFoundError (no such version) or 403 M_WRONG_ROOM_KEYS_VERSION (not
        the current one)."""
        number = await self._current_or_raise(user_id, version)
        etag = await self._store.upsert_keys(user_id, number, keys, is_better)
        if etag is None:
            # Deleted meanwhile, or another became current.
            await self._current_or_raise(user_id, version)
            raise NotFoundError("Unknown backup version")
        return BackupUpdate(etag, await self._store.count_keys(user_id, number))

    async def _current_or_raise(self, user_id: str, version: str) -> int:
        current = await self._store.get_version(user_id, None)
        number = parse_version(version)
        if current is None:
            raise NotFoundError("Unknown backup version")
        if number != current.version:
            if number is None or await self._store.get_version(user_id, number) is None:
                raise NotFoundError("Unknown backup version")
            raise MatrixError(403, Codes.WRONG_ROOM_KEYS_VERSION, "Wrong backup version.",
                              current_version=str(current.version))
        return number

    # GET /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]
    async def get_keys(self, user_id: str, version: str, room_id: str | None,
                       session_id: str | None) -> list[RoomKey]:
        """Raises NotFoundError: no such version (or no such session, when one is
        named)."""
        number = parse_version(version)
        if number is None or await self._store.get_version(user_id, number) is None:
            raise NotFoundError("Unknown backup version")
        keys = await self._store.get_keys(user_id, number, room_id, session_id)
        if session_id is not None and not keys:
            raise NotFoundError("No room key found")
        return keys

    # DELETE /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]
    async def delete_keys(self, user_id: str, version: str, room_id: str | None,
                          session_id: str | None) -> BackupUpdate:
        number = parse_version(version)
        etag = None if number is None else await self._store.delete_keys(
            user_id, number, room_id, session_id)
        if number is None or etag is None:
            raise NotFoundError("Unknown backup version")
        return BackupUpdate(etag, await self._store.count_keys(user_id, number))
