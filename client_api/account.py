"""Account endpoints: whoami, password change and deactivation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_json_object,
    validate_model,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

PASSWORD_FLOWS = [["m.login.password"]]


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


class PasswordBody(RequestBody):
    new_password: str
    logout_devices: bool = True
    auth: dict[str, Any] | None = None


class PasswordServlet(RestServlet):
    PATTERNS = client_patterns("/account/password")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._ui_auth = hs.get_ui_auth_handler()
        self._account = hs.get_account_handler()

    # POST /_matrix/client/v3/account/password
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        # Only the authenticated flow: there is no e-mail reset without a session yet.
        requester = await self._auth.get_user_by_req(request)
        raw = parse_json_object(request)
        body = validate_model(PasswordBody, raw)
        self._account.check_new_password(body.new_password)
        # The UIA session stores the body it is given: keep the new password out of it.
        # The spec makes `new_password` required, so every request of the flow repeats it.
        await self._ui_auth.check_ui_auth(
            request, {k: v for k, v in raw.items() if k != "new_password"}, PASSWORD_FLOWS,
            "change your password", for_user_id=requester.user_id,
        )
        await self._account.change_password(requester, body.new_password,
                                            body.logout_devices)
        return 200, {}


class DeactivateBody(RequestBody):
    auth: dict[str, Any] | None = None
    id_server: str | None = None
    erase: bool = False


class DeactivateServlet(RestServlet):
    PATTERNS = client_patterns("/account/deactivate")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._ui_auth = hs.get_ui_auth_handler()
        self._account = hs.get_account_handler()

    # POST /_matrix/client/v3/account/deactivate
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        raw = parse_json_object(request)
        body = validate_model(DeactivateBody, raw)
        await self._ui_auth.check_ui_auth(request, raw, PASSWORD_FLOWS,
                                          "deactivate your account",
                                          for_user_id=requester.user_id)
        result = await self._account.deactivate(requester.user_id, erase=body.erase)
        return 200, {"id_server_unbind_result": result}


def register_servlets(hs: HomeServer, router: Router) -> None:
    WhoamiServlet(hs).register(router)
    PasswordServlet(hs).register(router)
    DeactivateServlet(hs).register(router)
