"""Account data (global and per room) and room tags: /user/{userId}/account_data/...,
/user/{userId}/rooms/{roomId}/account_data/... and /user/{userId}/rooms/{roomId}/tags."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import RoomID, is_valid_event_type
from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_json_object,
    validate_model,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

USER = "(?P<user_id>[^/]*)"
ROOM = "(?P<room_id>[^/]*)"
TYPE = "(?P<data_type>[^/]*)"

#: the spec: "The name of a tag MUST NOT exceed 255 bytes."
MAX_TAG_BYTES = 255


class TagBody(RequestBody):
    """PUT .../tags/{tag}: any object; `order`, when present, is a number."""

    order: float | None = None


def _check_own(requester_id: str, user_id: str, verb: str) -> None:
    if requester_id != user_id:
        raise MatrixError(403, Codes.FORBIDDEN, f"Cannot {verb} account data for other users.")


def _check_type(data_type: str) -> None:
    if not is_valid_event_type(data_type):
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid account data type")


class _Base(RestServlet):
    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_account_data_handler()


class GlobalAccountDataServlet(_Base):
    PATTERNS = client_patterns(f"/user/{USER}/account_data/{TYPE}")

    # PUT /_matrix/client/v3/user/{userId}/account_data/{type}
    async def on_PUT(self, request: HttpRequest, user_id: str,
                     data_type: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        _check_own(requester.user_id, user_id, "add")
        _check_type(data_type)
        self._handler.check_client_may_set(data_type)
        content = parse_json_object(request)
        await self._handler.set_global_account_data(user_id, data_type, content)
        return 200, {}

    # GET /_matrix/client/v3/user/{userId}/account_data/{type}
    async def on_GET(self, request: HttpRequest, user_id: str,
                     data_type: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        _check_own(requester.user_id, user_id, "get")
        content = await self._handler.get_global_account_data(user_id, data_type)
        if content is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Account data not found")
        return 200, content


class RoomAccountDataServlet(_Base):
    PATTERNS = client_patterns(f"/user/{USER}/rooms/{ROOM}/account_data/{TYPE}")

    # PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
    async def on_PUT(self, request: HttpRequest, user_id: str, room_id: str,
                     data_type: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        _check_own(requester.user_id, user_id, "add")
        RoomID.parse(room_id)
        _check_type(data_type)
        self._handler.check_client_may_set(data_type)
        content = parse_json_object(request)
        await self._handler.set_room_account_data(user_id, room_id, data_type, content)
        return 200, {}

    # GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
    async def on_GET(self, request: HttpRequest, user_id: str, room_id: str,
                     data_type: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        _check_own(requester.user_id, user_id, "get")
        RoomID.parse(room_id)
        content = await self._handler.get_room_account_data(user_id, room_id, data_type)
        if content is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room account data not found")
        return 200, content


class TagListServlet(_Base):
    PATTERNS = client_patterns(f"/user/{USER}/rooms/{ROOM}/tags")

    # GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags
    async def on_GET(self, request: HttpRequest, user_id: str,
                     room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        _check_own(requester.user_id, user_id, "get")
        RoomID.parse(room_id)
        return 200, {"tags": await self._handler.get_tags(user_id, room_id)}


class TagServlet(_Base):
    PATTERNS = client_patterns(f"/user/{USER}/rooms/{ROOM}/tags/(?P<tag>[^/]*)")

    def _check(self, requester_id: str, user_id: str, room_id: str, tag: str) -> None:
        _check_own(requester_id, user_id, "modify")
        RoomID.parse(room_id)
        if not tag or len(tag.encode("utf-8", "surrogatepass")) > MAX_TAG_BYTES:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"A tag must be 1 to {MAX_TAG_BYTES} bytes long")

    # PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
    async def on_PUT(self, request: HttpRequest, user_id: str, room_id: str,
                     tag: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        self._check(requester.user_id, user_id, room_id, tag)
        content = parse_json_object(request)
        validate_model(TagBody, content)
        await self._handler.add_tag(user_id, room_id, tag, content)
        return 200, {}

    # DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
    async def on_DELETE(self, request: HttpRequest, user_id: str, room_id: str,
                        tag: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        self._check(requester.user_id, user_id, room_id, tag)
        await self._handler.remove_tag(user_id, room_id, tag)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    GlobalAccountDataServlet(hs).register(router)
    RoomAccountDataServlet(hs).register(router)
    TagListServlet(hs).register(router)
    TagServlet(hs).register(router)
