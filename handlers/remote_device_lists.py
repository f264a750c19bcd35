"""The cache of remote users' device lists: kept current from `m.device_list_update` EDUs,
resynced through `GET /_matrix/federation/v1/user/devices/{userId}` when an EDU's
`prev_id` shows a gap (or when we have nothing cached yet).

Only users sharing a room with a local user are cached (the caller checks); the
device-list handler's prune drops users who stopped sharing one.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import TYPE_CHECKING, Annotated, Any

import pydantic

from storage.stores.e2e_keys import DeviceKeysRow, RemoteDeviceList

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

RESYNC_TIMEOUT_S = 10.0

_Id = Annotated[str, pydantic.Field(min_length=1, max_length=255)]


class _FedModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True, extra="allow", frozen=True)


class DeviceListUpdate(_FedModel):
    """The `m.device_list_update` EDU's content."""

    user_id: _Id
    device_id: _Id
    stream_id: int = pydantic.Field(ge=0)
    prev_id: list[int] = pydantic.Field(default_factory=list, max_length=100)
    device_display_name: str | None = pydantic.Field(default=None, max_length=1000)
    deleted: bool = False
    keys: dict[str, Any] | None = None


class SigningKeyUpdate(_FedModel):
    """The `m.signing_key_update` EDU's content."""

    user_id: _Id
    master_key: dict[str, Any] | None = None
    self_signing_key: dict[str, Any] | None = None


class _RemoteDevice(_FedModel):
    device_id: _Id
    keys: dict[str, Any] | None = None
    device_display_name: str | None = pydantic.Field(default=None, max_length=1000)


class UserDevicesAnswer(_FedModel):
    """The answer of `GET /user/devices/{userId}`."""

    user_id: _Id
    stream_id: int = pydantic.Field(ge=0)
    devices: list[_RemoteDevice] = pydantic.Field(max_length=10_000)
    master_key: dict[str, Any] | None = None
    self_signing_key: dict[str, Any] | None = None


class RemoteDeviceListUpdater:
    def __init__(self, hs: HomeServer) -> None:
        self._store = hs.get_datastores().e2e_keys
        # Fetched on first use: the federation client is built after the handlers.
        self._get_federation_client = hs.get_federation_client

    async def on_device_list_update(self, origin: str, edu: DeviceListUpdate) -> None:
        """Apply the EDU to the cache when it follows what we have, else resync."""
        cached = await self._store.get_remote_device_list(edu.user_id)
        if cached is not None and edu.stream_id <= cached.stream_id:
            return  # already seen (a resync covered it)
        follows = cached is not None and bool(edu.prev_id) \
            and all(p <= cached.stream_id for p in edu.prev_id)
        if follows:
            await self._store.update_remote_device(
                edu.user_id, edu.stream_id, edu.device_id, edu.device_display_name,
                edu.keys if _keys_belong(edu.keys, edu.user_id, edu.device_id) else None,
                edu.deleted)
            return
        await self.resync(origin, edu.user_id)

    async def resync(self, origin: str, user_id: str) -> RemoteDeviceList | None:
        """Fetch and cache the user's whole device list; None if the server failed."""
        path = "/_matrix/federation/v1/user/devices/" + urllib.parse.quote(user_id, safe="")
        try:
            raw = await self._get_federation_client().get_json(
                origin, path, timeout=RESYNC_TIMEOUT_S)
            answer = UserDevicesAnswer.model_validate(raw)
        except Exception as e:  # noqa: BLE001 - unreachable or malformed: keep the old cache
            logger.info("Device list resync of %s from %s failed: %s", user_id, origin, e)
            return None
        if answer.user_id != user_id:
            return None
        device_list = RemoteDeviceList(
            user_id, answer.stream_id,
            _own_key(answer.master_key, user_id), _own_key(answer.self_signing_key, user_id),
            [DeviceKeysRow(user_id, d.device_id, d.device_display_name,
                           d.keys if _keys_belong(d.keys, user_id, d.device_id) else None)
             for d in answer.devices])
        await self._store.replace_remote_device_list(device_list)
        return device_list


def _keys_belong(keys: dict[str, Any] | None, user_id: str, device_id: str) -> bool:
    return keys is not None and keys.get("user_id") == user_id \
        and keys.get("device_id") == device_id


def _own_key(key: dict[str, Any] | None, user_id: str) -> dict[str, Any] | None:
    return key if key is not None and key.get("user_id") == user_id else None
