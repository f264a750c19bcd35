"""Answers to other servers' questions about our users' devices and end-to-end keys:
`GET /user/devices/{userId}`, `POST /user/keys/query`, `POST /user/keys/claim`.

End-to-end encryption keys do not exist in Axon yet (no `/keys/upload`): device lists are
real, but every device is answered without keys, key queries list our users with no
devices (a device without keys is no use to an encrypting client, as Synapse leaves such
devices out) and claims return no one-time keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import UserID

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class FederationDeviceQueryHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._users = stores.users
        self._devices = stores.devices
        self._device_lists = stores.device_lists
        self._is_mine_id = hs.is_mine_id

    # GET /_matrix/federation/v1/user/devices/{userId}
    async def get_user_devices(self, user_id: str) -> dict[str, Any]:
        """A local user's devices and the device-list position they are current at.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a malformed user ID or a user of another
                server; 404 M_NOT_FOUND for an unknown local user.
        """
        try:
            UserID.parse(user_id)
        except MatrixError:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid user ID") from None
        if not self._is_mine_id(user_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "User is not hosted on this server")
        if await self._users.get_user(user_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown user")
        stream_id = await self._device_lists.get_last_position_for_user(user_id)
        devices = []
        for device in await self._devices.get_devices(user_id):
            entry: dict[str, Any] = {"device_id": device.device_id}
            if device.display_name is not None:
                entry["device_display_name"] = device.display_name
            devices.append(entry)
        return {"user_id": user_id, "stream_id": stream_id, "devices": devices}

    # POST /_matrix/federation/v1/user/keys/query
    async def query_keys(self, device_keys: Mapping[str, list[str]]) -> dict[str, Any]:
        """Every queried local user maps to their devices that have keys: none yet.
        Users of other servers are left out (as Synapse)."""
        return {"device_keys": {user_id: {} for user_id in device_keys
                                if self._is_mine_id(user_id)}}

    # POST /_matrix/federation/v1/user/keys/claim
    async def claim_keys(self, one_time_keys: Mapping[str, Mapping[str, str]]
                         ) -> dict[str, Any]:
        """No one-time keys exist yet."""
        return {"one_time_keys": {}}
