"""`POST /_matrix/client/v3/users/{userId}/report`: report a user to the server admins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

from rest.http import HttpRequest, RequestBody, RestServlet, Router, client_patterns, parse_body

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class ReportUserBody(RequestBody):
    reason: str = pydantic.Field(max_length=1000)


class ReportUserServlet(RestServlet):
    PATTERNS = client_patterns("/users/(?P<user_id>[^/]*)/report")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_reporting_handler()

    # POST /_matrix/client/v3/users/{userId}/report
    async def on_POST(self, request: HttpRequest, user_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, ReportUserBody)
        await self._handler.report_user(requester, user_id, body.reason)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    ReportUserServlet(hs).register(router)
