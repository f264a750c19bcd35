"""Room writes: createRoom, send, state, redact, report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.room import CreateRoomRequest
from homeserver.errors import Codes, MatrixError
from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_body,
    parse_json_object,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

ROOM = "(?P<room_id>[^/]*)"


class CreateRoomBody(RequestBody):
    preset: str | None = None
    visibility: str = "private"
    room_version: str | None = None
    name: str | None = None
    topic: str | None = None
    room_alias_name: str | None = None
    invite: list[str] = []
    invite_3pid: list[dict[str, Any]] = []
    is_direct: bool = False
    initial_state: list[dict[str, Any]] = []
    creation_content: dict[str, Any] = {}
    power_level_content_override: dict[str, Any] | None = None


class CreateRoomServlet(RestServlet):
    PATTERNS = client_patterns("/createRoom")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._rooms = hs.get_room_creation_handler()

    # POST /_matrix/client/v3/createRoom
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, CreateRoomBody, allow_empty_body=True)
        if body.visibility not in ("public", "private"):
            raise MatrixError(400, Codes.INVALID_PARAM, "visibility must be public or private")
        if body.invite_3pid:
            raise MatrixError(400, Codes.UNRECOGNIZED, "Third-party invites are not supported")
        room_id = await self._rooms.create_room(requester.user_id, CreateRoomRequest(
            preset=body.preset, visibility=body.visibility, room_version=body.room_version,
            name=body.name, topic=body.topic, room_alias_name=body.room_alias_name,
            invite=tuple(body.invite), is_direct=body.is_direct,
            initial_state=tuple(body.initial_state), creation_content=body.creation_content,
            power_level_content_override=body.power_level_content_override,
        ))
        return 200, {"room_id": room_id}


class SendEventServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/send/(?P<event_type>[^/]*)/(?P<txn_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._messages = hs.get_message_handler()

    # PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}
    async def on_PUT(self, request: HttpRequest, room_id: str, event_type: str,
                     txn_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        content = parse_json_object(request)
        event_id = await self._messages.send_message(requester, room_id, event_type, content,
                                                     txn_id)
        return 200, {"event_id": event_id}


class StateEventServlet(RestServlet):
    PATTERNS = client_patterns(
        f"/rooms/{ROOM}/state/(?P<event_type>[^/]*)(?:/(?P<state_key>[^/]*))?")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._messages = hs.get_message_handler()

    # PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
    async def on_PUT(self, request: HttpRequest, room_id: str, event_type: str,
                     state_key: str = "") -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        content = parse_json_object(request)
        event_id = await self._messages.send_state(requester, room_id, event_type, state_key,
                                                   content)
        return 200, {"event_id": event_id}


class RedactServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/redact/(?P<event_id>[^/]*)/(?P<txn_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._messages = hs.get_message_handler()

    # PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}
    async def on_PUT(self, request: HttpRequest, room_id: str, event_id: str,
                     txn_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        content = parse_json_object(request, allow_empty_body=True)
        if "reason" in content and not isinstance(content["reason"], str):
            raise MatrixError(400, Codes.BAD_JSON, "'reason' must be a string")
        redaction_id = await self._messages.redact(requester, room_id, event_id, content,
                                                   txn_id)
        return 200, {"event_id": redaction_id}


class ReportBody(RequestBody):
    reason: str | None = None
    score: int | None = None


class ReportEventServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/report/(?P<event_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._messages = hs.get_message_handler()

    # POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}
    async def on_POST(self, request: HttpRequest, room_id: str,
                      event_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, ReportBody, allow_empty_body=True)
        await self._messages.report_event(requester, room_id, event_id, body.reason,
                                          body.model_dump(exclude_none=True))
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    CreateRoomServlet(hs).register(router)
    SendEventServlet(hs).register(router)
    StateEventServlet(hs).register(router)
    RedactServlet(hs).register(router)
    ReportEventServlet(hs).register(router)
