"""Registration: `/register` (with user-interactive auth), username availability and
registration-token validity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_json_object,
    parse_string,
    validate_model,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class RegisterBody(RequestBody):
    auth: dict[str, Any] | None = None
    username: str | None = None
    password: str | None = None
    device_id: str | None = None
    initial_device_display_name: str | None = None
    inhibit_login: bool = False
    refresh_token: bool = False


class RegisterServlet(RestServlet):
    PATTERNS = client_patterns("/register")

    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._registration = hs.get_registration_handler()

    # POST /_matrix/client/v3/register
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        kind = parse_string(request, "kind", default="user", allowed_values=("user", "guest"))
        assert kind is not None
        raw = parse_json_object(request)
        validate_model(RegisterBody, raw)
        # The raw body goes on: UIA keeps it (minus the password) in the session.
        registered = await self._registration.register_with_uia(request, raw, kind,
                                                                request.client_ip)
        if registered.session is None:
            return 200, {"user_id": registered.user_id, "home_server": self._hs.hostname}
        return 200, registered.session.to_json(self._hs.hostname)


class UsernameAvailabilityServlet(RestServlet):
    PATTERNS = client_patterns("/register/available")

    def __init__(self, hs: HomeServer) -> None:
        self._registration = hs.get_registration_handler()

    # GET /_matrix/client/v3/register/available
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        username = parse_string(request, "username", required=True)
        assert username is not None
        await self._registration.check_username_for_client(username, request.client_ip)
        return 200, {"available": True}


class RegistrationTokenValidityServlet(RestServlet):
    PATTERNS = client_patterns(r"/register/m\.login\.registration_token/validity",
                               releases=(), v1=True)

    def __init__(self, hs: HomeServer) -> None:
        self._tokens = hs.get_registration_handler().tokens

    # GET /_matrix/client/v1/register/m.login.registration_token/validity
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        token = parse_string(request, "token", required=True)
        assert token is not None
        return 200, {"valid": await self._tokens.check_validity(token, request.client_ip)}


def register_servlets(hs: HomeServer, router: Router) -> None:
    RegisterServlet(hs).register(router)
    UsernameAvailabilityServlet(hs).register(router)
    RegistrationTokenValidityServlet(hs).register(router)
