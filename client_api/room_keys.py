"""Server-side key backup: `/room_keys/version[/{version}]` and
`/room_keys/keys[/{roomId}[/{sessionId}]]`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

from handlers.e2e_room_keys import BackupInfo, BackupUpdate, RoomKey
from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_body,
    parse_string,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

MAX_SESSIONS_PER_UPLOAD = 10_000


class VersionBody(RequestBody):
    algorithm: str = pydantic.Field(min_length=1, max_length=255)
    auth_data: dict[str, Any]


class UpdateVersionBody(VersionBody):
    version: str | None = None


def _version_json(info: BackupInfo) -> dict[str, Any]:
    v = info.version
    return {"algorithm": v.algorithm, "auth_data": v.auth_data, "count": info.count,
            "etag": str(v.etag), "version": str(v.version)}


def _update_json(update: BackupUpdate) -> dict[str, Any]:
    return {"etag": str(update.etag), "count": update.count}


class RoomKeysVersionServlet(RestServlet):
    PATTERNS = client_patterns("/room_keys/version", unstable=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._backup = hs.get_e2e_room_keys_handler()

    # POST /_matrix/client/v3/room_keys/version
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, VersionBody)
        version = await self._backup.create_version(requester.user_id, body.algorithm,
                                                    body.auth_data)
        return 200, {"version": str(version)}

    # GET /_matrix/client/v3/room_keys/version
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, _version_json(await self._backup.get_version(requester.user_id, None))


class RoomKeysVersionByIdServlet(RestServlet):
    PATTERNS = client_patterns("/room_keys/version/(?P<version>[^/]*)", unstable=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._backup = hs.get_e2e_room_keys_handler()

    # GET /_matrix/client/v3/room_keys/version/{version}
    async def on_GET(self, request: HttpRequest, version: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, _version_json(await self._backup.get_version(requester.user_id,
                                                                 version))

    # PUT /_matrix/client/v3/room_keys/version/{version}
    async def on_PUT(self, request: HttpRequest, version: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, UpdateVersionBody)
        await self._backup.update_version(requester.user_id, version, body.algorithm,
                                          body.auth_data, body.version)
        return 200, {}

    # DELETE /_matrix/client/v3/room_keys/version/{version}
    async def on_DELETE(self, request: HttpRequest, version: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        await self._backup.delete_version(requester.user_id, version)
        return 200, {}


class KeyBackupDataBody(RequestBody):
    first_message_index: int = pydantic.Field(ge=0)
    forwarded_count: int = pydantic.Field(ge=0)
    is_verified: bool
    session_data: dict[str, Any]


class RoomSessionsBody(RequestBody):
    sessions: dict[str, KeyBackupDataBody] = pydantic.Field(
        max_length=MAX_SESSIONS_PER_UPLOAD)


class AllRoomsBody(RequestBody):
    rooms: dict[str, RoomSessionsBody]


def _room_key(room_id: str, session_id: str, data: KeyBackupDataBody) -> RoomKey:
    return RoomKey(room_id, session_id, data.first_message_index, data.forwarded_count,
                   data.is_verified, data.session_data)


def _key_json(key: RoomKey) -> dict[str, Any]:
    return {"first_message_index": key.first_message_index,
            "forwarded_count": key.forwarded_count, "is_verified": key.is_verified,
            "session_data": key.session_data}


class RoomKeysServlet(RestServlet):
    PATTERNS = (*client_patterns("/room_keys/keys", unstable=True),
                *client_patterns("/room_keys/keys/(?P<room_id>[^/]+)", unstable=True),
                *client_patterns("/room_keys/keys/(?P<room_id>[^/]+)/(?P<session_id>[^/]+)",
                                 unstable=True))

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._backup = hs.get_e2e_room_keys_handler()

    # PUT /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]?version=
    async def on_PUT(self, request: HttpRequest, room_id: str | None = None,
                     session_id: str | None = None) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        version = parse_string(request, "version", required=True)
        assert version is not None
        if room_id is None:
            rooms = parse_body(request, AllRoomsBody).rooms
            keys = [_room_key(r, s, d) for r, body in rooms.items()
                    for s, d in body.sessions.items()]
        elif session_id is None:
            keys = [_room_key(room_id, s, d)
                    for s, d in parse_body(request, RoomSessionsBody).sessions.items()]
        else:
            keys = [_room_key(room_id, session_id, parse_body(request, KeyBackupDataBody))]
        update = await self._backup.upload_keys(requester.user_id, version, keys)
        return 200, _update_json(update)

    # GET /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]?version=
    async def on_GET(self, request: HttpRequest, room_id: str | None = None,
                     session_id: str | None = None) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        version = parse_string(request, "version", required=True)
        assert version is not None
        keys = await self._backup.get_keys(requester.user_id, version, room_id, session_id)
        if session_id is not None:
            return 200, _key_json(keys[0])
        rooms: dict[str, dict[str, Any]] = {}
        for key in keys:
            rooms.setdefault(key.room_id, {"sessions": {}})["sessions"][key.session_id] = \
                _key_json(key)
        if room_id is not None:
            return 200, rooms.get(room_id, {"sessions": {}})
        return 200, {"rooms": rooms}

    # DELETE /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]?version=
    async def on_DELETE(self, request: HttpRequest, room_id: str | None = None,
                        session_id: str | None = None) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        version = parse_string(request, "version", required=True)
        assert version is not None
        update = await self._backup.delete_keys(requester.user_id, version, room_id,
                                                session_id)
        return 200, _update_json(update)


def register_servlets(hs: HomeServer, router: Router) -> None:
    RoomKeysVersionServlet(hs).register(router)
    RoomKeysVersionByIdServlet(hs).register(router)
    RoomKeysServlet(hs).register(router)
