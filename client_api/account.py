"""Account endpoints: whoami."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import HttpRequest, RestServlet, Router, client_patterns

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class WhoamiServlet(RestServlet):
    PATTERNS = client_patterns("/account/whoami")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()

    # GET /_matrix/client/v3/account/whoami
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True)
        body: dict[str, Any] = {"user_id": requester.user_id, "is_guest": requester.is_guest}
        if requester.device_id is not None:
            body["device_id"] = requester.device_id
        return 200, body


def register_servlets(hs: HomeServer, router: Router) -> None:
    WhoamiServlet(hs).register(router)
