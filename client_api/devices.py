"""Device management: list, read, rename and delete the user's devices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_body,
    parse_json_object,
    validate_model,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

PASSWORD_FLOWS = [["m.login.password"]]


class DevicesServlet(RestServlet):
    PATTERNS = client_patterns("/devices")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._devices = hs.get_device_handler()

    # GET /_matrix/client/v3/devices
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True)
        return 200, {"devices": await self._devices.get_devices(requester.user_id)}


class UpdateDeviceBody(RequestBody):
    display_name: str | None = None


class DeleteDeviceBody(RequestBody):
    auth: dict[str, Any] | None = None


class DeviceServlet(RestServlet):
    PATTERNS = client_patterns("/devices/(?P<device_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._ui_auth = hs.get_ui_auth_handler()
        self._devices = hs.get_device_handler()

    # GET /_matrix/client/v3/devices/{deviceId}
    async def on_GET(self, request: HttpRequest, device_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True)
        return 200, await self._devices.get_device(requester.user_id, device_id)

    # PUT /_matrix/client/v3/devices/{deviceId}
    async def on_PUT(self, request: HttpRequest, device_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True)
        body = parse_body(request, UpdateDeviceBody)
        await self._devices.update_device(requester.user_id, device_id, body.display_name)
        return 200, {}

    # DELETE /_matrix/client/v3/devices/{deviceId}
    async def on_DELETE(self, request: HttpRequest, device_id: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        # Older clients send no body on the first request; treat that as `{}`.
        raw = parse_json_object(request, allow_empty_body=True)
        validate_model(DeleteDeviceBody, raw)
        await self._ui_auth.check_ui_auth(request, raw, PASSWORD_FLOWS,
                                          "remove a device from your account",
                                          for_user_id=requester.user_id)
        await self._devices.delete_devices(requester.user_id, [device_id])
        return 200, {}


class DeleteDevicesBody(RequestBody):
    devices: list[str]
    auth: dict[str, Any] | None = None


class DeleteDevicesServlet(RestServlet):
    PATTERNS = client_patterns("/delete_devices")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._ui_auth = hs.get_ui_auth_handler()
        self._devices = hs.get_device_handler()

    # POST /_matrix/client/v3/delete_devices
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        raw = parse_json_object(request)
        body = validate_model(DeleteDevicesBody, raw)
        await self._ui_auth.check_ui_auth(request, raw, PASSWORD_FLOWS,
                                          "remove devices from your account",
                                          for_user_id=requester.user_id)
        await self._devices.delete_devices(requester.user_id, body.devices)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    DevicesServlet(hs).register(router)
    DeviceServlet(hs).register(router)
    DeleteDevicesServlet(hs).register(router)
