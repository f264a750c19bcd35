"""Login, refresh and the login flows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_body,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class LoginBody(RequestBody):
    type: str
    identifier: dict[str, Any] | None = None
    user: str | None = None  # deprecated: a bare user name
    password: str | None = None
    device_id: str | None = None
    initial_device_display_name: str | None = None
    refresh_token: bool = False


class LoginServlet(RestServlet):
    PATTERNS = client_patterns("/login", v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._login = hs.get_login_handler()

    # GET /_matrix/client/v3/login
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        return 200, {"flows": self._login.login_flows()}

    # POST /_matrix/client/v3/login
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        body = parse_body(request, LoginBody)
        if body.type != "m.login.password":
            raise MatrixError(400, Codes.UNKNOWN, f"Unknown login type {body.type}")
        identifier = body.identifier
        if identifier is None:
            if body.user is None:
                raise MatrixError(400, Codes.MISSING_PARAM, "Missing 'identifier'")
            identifier = {"type": "m.id.user", "user": body.user}
        if body.password is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing 'password'")
        session = await self._login.login_with_password(
            identifier, body.password, request.client_ip, body.device_id,
            body.initial_device_display_name, body.refresh_token,
        )
        return 200, session.to_json(self._hs.hostname)


class RefreshBody(RequestBody):
    refresh_token: str


class RefreshServlet(RestServlet):
    PATTERNS = client_patterns("/refresh", releases=("v3",), v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._tokens = hs.get_token_handler()

    # POST /_matrix/client/v3/refresh
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        body = parse_body(request, RefreshBody)
        tokens = await self._tokens.refresh(body.refresh_token)
        return 200, {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_in_ms": tokens.expires_in_ms,
        }


def register_servlets(hs: HomeServer, router: Router) -> None:
    LoginServlet(hs).register(router)
    RefreshServlet(hs).register(router)
