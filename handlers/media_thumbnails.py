"""Thumbnails of media: generated when an image is uploaded (and, for remote media or
older uploads, on the first request), stored in the media storage, and picked for a
request's width/height/method as Synapse does (`handlers/thumbnailer.py`)."""

from __future__ import annotations

import hashlib
import logging
import os
from typing import TYPE_CHECKING

import attrs

from handlers.thumbnailer import (
    ThumbnailError,
    ThumbnailInfo,
    can_thumbnail,
    generate_thumbnails,
    select_thumbnail,
)
from homeserver.async_utils import Linearizer
from homeserver.errors import BadRequestError, Codes, NotFoundError
from storage.stores.media_thumbnails import ThumbnailRow

if TYPE_CHECKING:
    from handlers.media.repository import MediaFile
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)


@attrs.frozen(slots=True)
class ThumbnailFile:
    """A thumbnail ready to stream."""

    content_type: str
    length: int
    path: str


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


class ThumbnailHandler:
    def __init__(self, hs: HomeServer) -> None:
        config = hs.get_config().media_extras
        self._sizes = config.thumbnail_sizes
        self._max_pixels = config.max_image_pixels
        self._store = hs.get_datastores().media_thumbnails
        self._repo = hs.get_media_repository()
        self._storage = hs.get_media_storage()
        self._run_in_thread = hs.run_in_thread
        self._server_name = hs.hostname
        self._linearizer = Linearizer()
        self._repo.add_upload_listener(self.on_local_upload)

    async def generate(self, media: MediaFile, remote: bool = False) -> list[ThumbnailRow]:
        """Make and store every configured thumbnail of an image (none for other types).

        Raises:
            ThumbnailError: an image type that does not decode (truncated, bomb).
        """
        if not can_thumbnail(media.media_type):
            return []
        thumbs = await self._run_in_thread(generate_thumbnails, media.path, media.media_type,
                                           self._sizes, self._max_pixels)
        rows = []
        for thumb in thumbs:
            sha256 = hashlib.sha256(thumb.data).hexdigest()
            with self._storage.temp_path() as tmp:
                await self._run_in_thread(_write, tmp, thumb.data)
                await self._storage.store(sha256, tmp, remote=remote)
            rows.append(ThumbnailRow(thumb.width, thumb.height, thumb.method,
                                     thumb.content_type, thumb.animated, len(thumb.data),
                                     sha256))
        await self._store.store_thumbnails(media.server_name, media.media_id, rows)
        return rows

    async def on_local_upload(self, media: MediaFile) -> None:
        """The upload hook: thumbnails now, so the first request is fast. A broken image
        is still a valid upload; its thumbnail requests get 400."""
        try:
            await self.generate(media)
        except ThumbnailError as e:
            logger.info("No thumbnails for %s: %s", media.media_id, e)

    # GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}
    async def get_thumbnail(self, server_name: str, media_id: str, width: int, height: int,
                            method: str, animated: bool, *, authenticated: bool,
                            allow_remote: bool = True, timeout_ms: int | None = None
                            ) -> ThumbnailFile:
        """The stored thumbnail that best fits the request, generated if there is none.

        Raises:
            MatrixError: the media's errors (404, 502, 504…); 400 M_UNKNOWN when the media
                cannot be thumbnailed (not an image, truncated, too many pixels).
        """
        media = await self._repo.get_media(server_name, media_id, authenticated=authenticated,
                                           allow_remote=allow_remote, timeout_ms=timeout_ms)
        if not can_thumbnail(media.media_type):
            raise BadRequestError(f"Cannot generate thumbnails of {media.media_type}",
                                  Codes.UNKNOWN)
        async with self._linearizer.queue((server_name, media_id)):
            rows = await self._store.get_thumbnails(server_name, media_id)
            if not rows:
                try:
                    rows = await self.generate(media, remote=server_name != self._server_name)
                except ThumbnailError as e:
                    raise BadRequestError(f"Cannot generate a thumbnail: {e}",
                                          Codes.UNKNOWN) from None
        infos = {ThumbnailInfo(r.width, r.height, r.method, r.content_type, r.length,
                               r.animated): r for r in rows}
        best = select_thumbnail(list(infos), width, height, method, animated)
        if best is None:
            raise BadRequestError("Cannot generate a thumbnail", Codes.UNKNOWN)
        row = infos[best]
        path = await self._storage.fetch(row.sha256)
        if path is None or not os.path.exists(path):
            raise NotFoundError("Thumbnail content is missing")
        return ThumbnailFile(row.content_type, row.length, path)

