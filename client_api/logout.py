"""Logging out: this session, or every session of the user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import HttpRequest, RestServlet, Router, client_patterns

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class LogoutServlet(RestServlet):
    PATTERNS = client_patterns("/logout", v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._account = hs.get_account_handler()

    # POST /_matrix/client/v3/logout
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        # No body to read: clients send none, `{}` or anything else.
        requester = await self._auth.get_user_by_req(request, allow_guest=True,
                                                     allow_locked=True, allow_expired=True)
        await self._account.logout(requester)
        return 200, {}


class LogoutAllServlet(RestServlet):
    PATTERNS = client_patterns("/logout/all", v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._account = hs.get_account_handler()

    # POST /_matrix/client/v3/logout/all
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True,
                                                     allow_locked=True, allow_expired=True)
        await self._account.logout_all(requester.user_id)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    LogoutServlet(hs).register(router)
    LogoutAllServlet(hs).register(router)
