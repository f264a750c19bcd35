"""GET/PUT /presence/{userId}/status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.presence import PRESENCE_STATES
from homeserver.errors import Codes, MatrixError
from rest.http import HttpRequest, RequestBody, RestServlet, Router, client_patterns, parse_body

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class PresenceBody(RequestBody):
    presence: str
    status_msg: str | None = None


class PresenceStatusServlet(RestServlet):
    PATTERNS = client_patterns("/presence/(?P<user_id>[^/]*)/status")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._presence = hs.get_presence_handler()

    # GET /_matrix/client/v3/presence/{userId}/status
    async def on_GET(self, request: HttpRequest, user_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        return 200, await self._presence.get_state_for_requester(requester.user_id, user_id)

    # PUT /_matrix/client/v3/presence/{userId}/status
    async def on_PUT(self, request: HttpRequest, user_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        if requester.user_id != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Can only set your own presence state")
        body = parse_body(request, PresenceBody)
        if body.presence not in PRESENCE_STATES:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              f"presence must be one of {', '.join(PRESENCE_STATES)}")
        await self._presence.set_state(user_id, body.presence, body.status_msg)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    PresenceStatusServlet(hs).register(router)
