"""Remote media for local clients: fetched from the origin server over federation
(`/_matrix/federation/v1/media/download`, falling back to the legacy
`/_matrix/media/v3/download?allow_remote=false`), then cached (`remote_media_cache` and
the storage backend). Concurrent requests for one item share one fetch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from handlers.media.storage import MediaStorage
from homeserver.errors import Codes, MatrixError, NotFoundError

if TYPE_CHECKING:
    from handlers.media.repository import MediaFile
    from homeserver.server import HomeServer
    from storage.stores.media import RemoteMedia

logger = logging.getLogger(__name__)


class RemoteMediaFetcher:
    def __init__(self, hs: HomeServer) -> None:
        config = hs.get_config()
        self._clock = hs.get_clock()
        self._store = hs.get_datastores().media
        self._storage: MediaStorage = hs.get_media_storage()
        self._federation = hs.get_federation_client()
        self._max_size = config.max_upload_size
        self._authenticated_media = config.media.enable_authenticated_media
        self._in_flight: dict[tuple[str, str], Any] = {}

    async def get_cached(self, origin: str, media_id: str) -> RemoteMedia | None:
        """The cache row of a remote item, if we hold it."""
        return await self._store.get_remote_media(origin, media_id)

    async def get_remote_media(self, origin: str, media_id: str, *, authenticated: bool,
                               timeout_ms: int) -> MediaFile:
        """The remote item, from the cache or fetched now.

        Raises:
            MatrixError: 404 M_NOT_FOUND, 502 when the origin fails, 504 on its timeout,
                413 M_TOO_LARGE past `max_upload_size`.
        """
        from handlers.media.repository import MediaFile

        cached = await self._store.get_remote_media(origin, media_id)
        if cached is None:
            if self._authenticated_media and not authenticated:
                # As Synapse: the deprecated endpoints serve only what is cached already.
                raise NotFoundError("Unknown media")
            cached = await self._fetch(origin, media_id, timeout_ms)
        if cached.quarantined_by is not None:
            raise NotFoundError("Unknown media")
        if self._authenticated_media and not authenticated and cached.authenticated:
            raise NotFoundError("Unknown media")
        path = await self._storage.fetch(cached.sha256)
        if path is None:
            raise NotFoundError("Unknown media")
        await self._store.touch_remote_media(origin, media_id, self._clock.time_msec())
        return MediaFile(server_name=origin, media_id=media_id, media_type=cached.media_type,
                         media_length=cached.media_length, upload_name=cached.upload_name,
                         sha256=cached.sha256, path=path)

    async def _fetch(self, origin: str, media_id: str, timeout_ms: int) -> RemoteMedia:
        raise MatrixError(502, Codes.UNKNOWN, "Fetching remote media is not available yet")
