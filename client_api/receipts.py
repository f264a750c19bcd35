"""Receipts, read markers and typing notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

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
#: receipt types accepted by `/receipt` (m.fully_read moves the read marker instead)
RECEIPT_PATH_TYPES = ("m.read", "m.read.private", "m.fully_read")


def _check_ids(room_id: str, *event_ids: str) -> None:
    if not room_id.startswith("!"):
        raise MatrixError(400, Codes.INVALID_PARAM, "A valid room ID must be specified")
    for event_id in event_ids:
        if not event_id.startswith("$"):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"{event_id!r} is not a valid event ID")


class ReceiptServlet(RestServlet):
    PATTERNS = client_patterns(
        f"/rooms/{ROOM}/receipt/(?P<receipt_type>[^/]*)/(?P<event_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._receipts = hs.get_receipts_handler()

    # POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}
    async def on_POST(self, request: HttpRequest, room_id: str, receipt_type: str,
                      event_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        if receipt_type not in RECEIPT_PATH_TYPES:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"Receipt type must be one of {', '.join(RECEIPT_PATH_TYPES)}")
        _check_ids(room_id, event_id)
        body = parse_json_object(request, allow_empty_body=True)
        thread_id = body.get("thread_id")
        if "thread_id" in body:
            # The spec gives M_INVALID_PARAM here (not M_BAD_JSON) for any bad thread_id.
            if not isinstance(thread_id, str) or not thread_id:
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  "thread_id field must be a non-empty string")
            if receipt_type == "m.fully_read":
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  "thread_id is not compatible with m.fully_read")
        if receipt_type == "m.fully_read":
            await self._receipts.set_fully_read_marker(requester.user_id, room_id, event_id)
        else:
            await self._receipts.received_receipt(
                requester.user_id, room_id, receipt_type, event_id, thread_id)
        return 200, {}


class ReadMarkersBody(RequestBody):
    fully_read: str | None = pydantic.Field(default=None, alias="m.fully_read")
    read: str | None = pydantic.Field(default=None, alias="m.read")
    read_private: str | None = pydantic.Field(default=None, alias="m.read.private")


class ReadMarkersServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/read_markers")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._receipts = hs.get_receipts_handler()

    # POST /_matrix/client/v3/rooms/{roomId}/read_markers
    async def on_POST(self, request: HttpRequest, room_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, ReadMarkersBody)
        _check_ids(room_id, *(e for e in (body.fully_read, body.read, body.read_private)
                              if e is not None))
        await self._receipts.set_read_markers(
            requester.user_id, room_id, body.fully_read, body.read, body.read_private)
        return 200, {}


class TypingBody(RequestBody):
    typing: bool
    timeout: int | None = None


class TypingServlet(RestServlet):
    PATTERNS = client_patterns(f"/rooms/{ROOM}/typing/(?P<user_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._typing = hs.get_typing_handler()

    # PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}
    async def on_PUT(self, request: HttpRequest, room_id: str,
                     user_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, TypingBody)
        await self._typing.set_typing(requester.user_id, user_id, room_id, body.typing,
                                      body.timeout)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    ReceiptServlet(hs).register(router)
    ReadMarkersServlet(hs).register(router)
    TypingServlet(hs).register(router)
