"""`POST /_matrix/client/v3/user/{userId}/openid/request_token`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import HttpRequest, RestServlet, Router, client_patterns, parse_json_object

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class OpenIdRequestTokenServlet(RestServlet):
    PATTERNS = client_patterns("/user/(?P<user_id>[^/]*)/openid/request_token")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._handler = hs.get_openid_handler()

    # POST /_matrix/client/v3/user/{userId}/openid/request_token
    async def on_POST(self, request: HttpRequest, user_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        parse_json_object(request, allow_empty_body=True)  # `{}`; any other JSON → 400
        return 200, await self._handler.request_token(requester.user_id, user_id)


def register_servlets(hs: HomeServer, router: Router) -> None:
    OpenIdRequestTokenServlet(hs).register(router)
