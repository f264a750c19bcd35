"""Shared-secret registration (`register_new_matrix_user`), as in Synapse's admin API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.admin import admin_patterns
from rest.http import HttpRequest, RequestBody, RestServlet, Router, parse_body

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class SharedSecretRegisterBody(RequestBody):
    nonce: str
    username: str
    password: str
    mac: str
    admin: bool = False
    displayname: str | None = None
    user_type: str | None = None
    refresh_token: bool = False


class SharedSecretRegisterServlet(RestServlet):
    PATTERNS = admin_patterns("/register")

    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._handler = hs.get_shared_secret_registration_handler()

    # GET /_synapse/admin/v1/register
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        return 200, {"nonce": self._handler.new_nonce()}

    # POST /_synapse/admin/v1/register
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        body = parse_body(request, SharedSecretRegisterBody)
        session = await self._handler.register(
            body.nonce, body.username, body.password, body.admin, body.mac,
            displayname=body.displayname, user_type=body.user_type,
            refresh_token=body.refresh_token,
        )
        return 200, session.to_json(self._hs.hostname)


def register_servlets(hs: HomeServer, router: Router) -> None:
    SharedSecretRegisterServlet(hs).register(router)
