"""A user's devices: listing, renaming and deleting them (with their tokens, inboxes and
end-to-end keys: a deleted device's one-time and fallback keys go with it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer
    from storage.stores.devices import DeviceRow

# Synapse's limit on a device display name (400 M_TOO_LARGE above it).
MAX_DEVICE_DISPLAY_NAME_LEN = 100


def device_to_json(device: DeviceRow) -> dict[str, Any]:
    """The client-server `Device` object; unknown fields are left out, as the spec says."""
    body: dict[str, Any] = {"device_id": device.device_id}
    if device.display_name is not None:
        body["display_name"] = device.display_name
    if device.last_seen_ip is not None:
        body["last_seen_ip"] = device.last_seen_ip
    if device.last_seen_ts is not None:
        body["last_seen_ts"] = device.last_seen_ts
    return body


class DeviceHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._devices = stores.devices
        self._tokens = stores.tokens
        self._to_device = stores.to_device
        self._e2e = stores.e2e_keys
        self._device_lists = hs.get_device_list_handler()

    # GET /_matrix/client/v3/devices
    async def get_devices(self, user_id: str) -> list[dict[str, Any]]:
        return [device_to_json(d) for d in await self._devices.get_devices(user_id)]

    # GET /_matrix/client/v3/devices/{deviceId}
    async def get_device(self, user_id: str, device_id: str) -> dict[str, Any]:
        """Raises 404 M_NOT_FOUND unless the user has this device."""
        device = await self._devices.get_device(user_id, device_id)
        if device is None:
            raise MatrixError(404, Codes.NOT_FOUND, "No device found")
        return device_to_json(device)

    # PUT /_matrix/client/v3/devices/{deviceId}
    async def update_device(self, user_id: str, device_id: str,
                            display_name: str | None) -> None:
        """Rename a device (None leaves the name unchanged).

        Raises:
            MatrixError: 400 M_TOO_LARGE for a name over 100 characters, 404 M_NOT_FOUND
                for a device the user does not have (only appservices may create devices).
        """
        if display_name is not None and len(display_name) > MAX_DEVICE_DISPLAY_NAME_LEN:
            raise MatrixError(
                400, Codes.TOO_LARGE,
                f"Device display name is too long (max {MAX_DEVICE_DISPLAY_NAME_LEN})",
            )
        if display_name is None:
            found = await self._devices.get_device(user_id, device_id) is not None
        else:
            found = await self._devices.update_device_display_name(user_id, device_id,
                                                                  display_name)
        if not found:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown device")
        if display_name is not None:
            # The display name is part of the device keys other users see.
            await self._device_lists.notify_device_change(user_id, [device_id])

    # DELETE /_matrix/client/v3/devices/{deviceId}, POST /_matrix/client/v3/delete_devices
    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        """Delete the user's devices and their tokens; unknown IDs are ignored (the spec's
        "or had been removed previously")."""
        deleted = await self._devices.delete_devices(user_id, sorted(set(device_ids)))
        await self._to_device.delete_device_inboxes(user_id, sorted(set(device_ids)))
        await self._e2e.delete_device_keys(user_id, deleted)
        await self._device_lists.notify_device_change(user_id, deleted)

    async def delete_all_devices(self, user_id: str, except_device_id: str | None = None,
                                 except_token_id: int | None = None) -> None:
        """Delete every device of the user but one, then every token but one.

        The second step also removes tokens without a device, and those of a device created
        while the first step ran.
        """
        devices = await self._devices.get_devices(user_id)
        doomed = [d.device_id for d in devices if d.device_id != except_device_id]
        deleted = await self._devices.delete_devices(user_id, doomed)
        await self._to_device.delete_device_inboxes(user_id, doomed)
        await self._e2e.delete_device_keys(user_id, deleted)
        await self._device_lists.notify_device_change(user_id, deleted)
        await self._tokens.delete_tokens_for_user(user_id, except_token_id=except_token_id)
