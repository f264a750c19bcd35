"""Answers to other servers' questions about our users' devices and end-to-end keys:
`GET /user/devices/{userId}`, `POST /user/keys/query`, `POST /user/keys/claim`.

Every answer covers our own users only: other servers' users in a question are left out
(as Synapse). A device without keys is listed by `/user/devices` but left out of key
queries (no use to an encrypting client, as Synapse).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from handlers.device_lists import CROSS_SIGNING_DEVICE
from handlers.e2e_keys import device_keys_json
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
        self._e2e = stores.e2e_keys
        self._keys = hs.get_e2e_keys_handler()
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
        # The position of the last m.device_list_update sent (cross-signing changes go
        # as m.signing_key_update): the prev_id of the next one.
        stream_id = await self._device_lists.get_last_position_for_user(
            user_id, exclude_device=CROSS_SIGNING_DEVICE)
        signatures = await self._e2e.get_signatures_for_users([user_id])
        devices = []
        for device in (await self._e2e.get_devices_with_keys([user_id]))[user_id]:
            entry: dict[str, Any] = {"device_id": device.device_id}
            if device.display_name is not None:
                entry["device_display_name"] = device.display_name
            if device.keys is not None:
                entry["keys"] = device_keys_json(device, signatures)
            devices.append(entry)
        answer: dict[str, Any] = {"user_id": user_id, "stream_id": stream_id,
                                  "devices": devices}
        keys = await self._keys.query_local_keys({user_id: []}, None)
        if user_id in keys.master_keys:
            answer["master_key"] = keys.master_keys[user_id]
        if user_id in keys.self_signing_keys:
            answer["self_signing_key"] = keys.self_signing_keys[user_id]
        return answer

    # POST /_matrix/federation/v1/user/keys/query
    async def query_keys(self, device_keys: Mapping[str, list[str]]) -> dict[str, Any]:
        """Device keys, master and self-signing keys of the queried local users."""
        result = await self._keys.query_local_keys(
            {u: d for u, d in device_keys.items() if self._is_mine_id(u)}, None)
        return {"device_keys": result.device_keys, "master_keys": result.master_keys,
                "self_signing_keys": result.self_signing_keys}

    # POST /_matrix/federation/v1/user/keys/claim
    async def claim_keys(self, one_time_keys: Mapping[str, Mapping[str, str]]
                         ) -> dict[str, Any]:
        """One key per queried device of a local user: a one-time key, else its fallback
        key."""
        return {"one_time_keys": await self._keys.claim_local_keys(
            {u: d for u, d in one_time_keys.items() if self._is_mine_id(u)})}
