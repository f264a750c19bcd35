"""The media repository: uploads (plain and async), downloads of local and remote media,
quotas and quarantine. No HTTP here: servlets hand in a readable file object and get back
a `MediaFile` (a local path plus metadata) to stream.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import string
from collections.abc import Awaitable, Callable
from typing import IO, TYPE_CHECKING

import attrs

from handlers.media.storage import MediaStorage
from homeserver.errors import (
    Codes,
    ForbiddenError,
    LimitExceededError,
    MatrixError,
    NotFoundError,
)
from homeserver.identifiers import is_valid_server_name

if TYPE_CHECKING:
    from handlers.media.remote import RemoteMediaFetcher
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: media IDs are opaque, but only these characters are safe in URLs and file names
MEDIA_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
_ID_ALPHABET = string.ascii_letters
_CHUNK = 64 * 1024


@attrs.frozen(slots=True)
class StoredContent:
    """A file written to the store: its hash (the storage key) and length."""

    sha256: str
    length: int


@attrs.frozen(slots=True)
class CreatedMedia:
    """An async-upload reservation (`POST /_matrix/media/v1/create`)."""

    content_uri: str
    unused_expires_at: int


@attrs.frozen(slots=True)
class MediaFile:
    """A media item ready to serve: metadata plus the local path of its content."""

    server_name: str
    media_id: str
    media_type: str
    media_length: int
    upload_name: str | None
    sha256: str
    path: str


def check_media_address(server_name: str, media_id: str) -> None:
    """404 M_NOT_FOUND for a server name or media ID that cannot exist (`../`, NUL, `/`…)."""
    if not is_valid_server_name(server_name) or not MEDIA_ID_RE.fullmatch(media_id):
        raise NotFoundError("Unknown media")


def copy_and_hash(src: IO[bytes], dest: str, max_size: int) -> StoredContent | None:
    """Copy `src` to the file `dest` while hashing; None once it passes `max_size`."""
    digest = hashlib.sha256()
    length = 0
    with open(dest, "wb") as out:
        while chunk := src.read(_CHUNK):
            length += len(chunk)
            if length > max_size:
                return None
            digest.update(chunk)
            out.write(chunk)
    return StoredContent(digest.hexdigest(), length)


class MediaRepository:
    """Public methods are the media API other parts build on (thumbnails, previews, tus):
    their signatures are kept stable."""

    def __init__(self, hs: HomeServer) -> None:
        config = hs.get_config()
        self._clock = hs.get_clock()
        self._store = hs.get_datastores().media
        self._run_in_thread = hs.run_in_thread
        self._server_name = hs.hostname
        self._max_upload_size = config.max_upload_size
        self._media = config.media
        self.storage: MediaStorage = hs.get_media_storage()
        self._remote: RemoteMediaFetcher = hs.get_remote_media_fetcher()
        #: called with each new local upload (thumbnails); failures are logged
        self._upload_listeners: list[Callable[[MediaFile], Awaitable[None]]] = []

    def add_upload_listener(self, listener: Callable[[MediaFile], Awaitable[None]]) -> None:
        self._upload_listeners.append(listener)

    async def _notify_upload(self, media_id: str, media_type: str, upload_name: str | None,
                             stored: StoredContent) -> None:
        media = MediaFile(self._server_name, media_id, media_type, stored.length,
                          upload_name, stored.sha256, self.storage.local_path(stored.sha256))
        for listener in self._upload_listeners:
            try:
                await listener(media)
            except Exception:  # noqa: BLE001 - an upload stands even if a listener fails
                logger.exception("Upload listener failed for %s", media_id)

    @property
    def max_upload_size(self) -> int:
        """The largest upload accepted, in bytes (`m.upload.size` of `/media/config`)."""
        return self._max_upload_size

    # -- uploads --

    async def store_content(self, content: IO[bytes], remote: bool = False,
                            max_size: int | None = None) -> StoredContent:
        """Stream a file into the store (hashing while copying, on a worker thread).

        Raises:
            MatrixError: 413 M_TOO_LARGE past `max_size` (default `max_upload_size`); the
                partial copy is removed.
        """
        limit = self._max_upload_size if max_size is None else max_size
        with self.storage.temp_path() as tmp:
            stored = await self._run_in_thread(copy_and_hash, content, tmp, limit)
            if stored is None:
                raise MatrixError(413, Codes.TOO_LARGE, "Upload request body is too large")
            await self.storage.store(stored.sha256, tmp, remote=remote)
        return stored

    async def check_upload_allowed(self, user_id: str, length: int | None) -> None:
        """Apply `max_upload_size` and the per-user `media_upload_limits` to an upload of
        `length` bytes (None: unknown yet, only the quotas already used are checked).

        Raises:
            MatrixError: 413 M_TOO_LARGE.
        """
        if length is not None and length > self._max_upload_size:
            raise MatrixError(413, Codes.TOO_LARGE, "Upload request body is too large")
        now = self._clock.time_msec()
        for limit in self._media.media_upload_limits:
            used = await self._store.get_uploaded_bytes(user_id, now - limit.time_period_ms)
            if used + (length or 0) > limit.max_size or (length is None
                                                          and used >= limit.max_size):
                raise MatrixError(413, Codes.TOO_LARGE,
                                  "Upload would exceed your media upload quota")

    # POST /_matrix/media/v3/upload
    async def upload(self, user_id: str, media_type: str, upload_name: str | None,
                     content: IO[bytes], length: int | None = None) -> str:
        """Store an upload under a new media ID and return its `mxc://` URI.

        Raises:
            MatrixError: 413 M_TOO_LARGE (size or quota).
        """
        await self.check_upload_allowed(user_id, length)
        stored = await self.store_content(content)
        await self.check_upload_allowed(user_id, stored.length)
        media_id = self._new_media_id()
        await self._store.store_local_media(
            media_id, user_id, media_type, upload_name, stored.length, stored.sha256,
            self._clock.time_msec(), self._media.enable_authenticated_media)
        await self._notify_upload(media_id, media_type, upload_name, stored)
        return f"mxc://{self._server_name}/{media_id}"

    # POST /_matrix/media/v1/create
    async def create_media_id(self, user_id: str) -> CreatedMedia:
        """Reserve a media ID for an upload to come.

        Raises:
            LimitExceededError: the user already holds `max_pending_media_uploads`.
        """
        now = self._clock.time_msec()
        count, first_expiry = await self._store.count_pending_media(user_id, now)
        if count >= self._media.max_pending_media_uploads:
            raise LimitExceededError(max(0, (first_expiry or now) - now))
        media_id = self._new_media_id()
        expires = now + self._media.unused_expiration_time_ms
        await self._store.create_pending_media(media_id, user_id, now, expires,
                                               self._media.enable_authenticated_media)
        return CreatedMedia(f"mxc://{self._server_name}/{media_id}", expires)

    # PUT /_matrix/media/v3/upload/{serverName}/{mediaId}
    async def upload_pending(self, user_id: str, server_name: str, media_id: str,
                             media_type: str, upload_name: str | None, content: IO[bytes],
                             length: int | None = None) -> None:
        """Fill a media ID reserved with `create_media_id`.

        Raises:
            MatrixError: 404 M_NOT_FOUND (unknown or expired), 403 M_FORBIDDEN (someone
                else's), 409 M_CANNOT_OVERWRITE_MEDIA (already uploaded), 413 M_TOO_LARGE.
        """
        if server_name != self._server_name:
            raise NotFoundError("Unknown media")
        check_media_address(server_name, media_id)
        media = await self._store.get_local_media(media_id)
        now = self._clock.time_msec()
        if media is None or (media.pending and (media.unused_expires_at or 0) <= now):
            raise NotFoundError("Unknown media")
        if media.user_id != user_id:
            raise ForbiddenError("You may not upload to this media ID")
        if not media.pending:
            raise MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content")
        await self.check_upload_allowed(user_id, length)
        stored = await self.store_content(content)
        await self.check_upload_allowed(user_id, stored.length)
        if not await self._store.complete_pending_media(
                media_id, user_id, media_type, upload_name, stored.length, stored.sha256,
                self._clock.time_msec()):
            # A concurrent upload won (the unique key decides, not the read above).
            raise MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content")
        await self._notify_upload(media_id, media_type, upload_name, stored)

    def _new_media_id(self) -> str:
        return "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))

    # -- downloads --

    # GET /_matrix/client/v1/media/download/{serverName}/{mediaId}
    async def get_media(self, server_name: str, media_id: str, *, authenticated: bool,
                        allow_remote: bool = True, timeout_ms: int | None = None
                        ) -> MediaFile:
        """The media item at `mxc://server_name/media_id`, fetched over federation and
        cached if it is remote.

        Args:
            authenticated: the request came through an authenticated endpoint; if not
                (deprecated `/_matrix/media/v3/`), media marked authenticated is refused
                and no new remote media is fetched while `enable_authenticated_media` is on.
            allow_remote: False: do not ask the origin server (`allow_remote=false`).
            timeout_ms: how long to wait for a pending async upload (or a remote fetch).

        Raises:
            MatrixError: 404 M_NOT_FOUND (unknown, quarantined, refused), 504
                M_NOT_YET_UPLOADED, 502 when the origin server fails, 413 M_TOO_LARGE.
        """
        check_media_address(server_name, media_id)
        if timeout_ms is None:
            timeout_ms = self._media.max_download_wait_ms
        timeout_ms = min(timeout_ms, 120_000)
        if server_name == self._server_name:
            return await self._get_local_media(media_id, authenticated, timeout_ms)
        if not allow_remote:
            cached = await self._remote.get_cached(server_name, media_id)
            if cached is None:
                raise NotFoundError("Unknown media")
        return await self._remote.get_remote_media(
            server_name, media_id, authenticated=authenticated, timeout_ms=timeout_ms)

    async def _get_local_media(self, media_id: str, authenticated: bool,
                               timeout_ms: int) -> MediaFile:
        deadline = self._clock.time_msec() + timeout_ms
        while True:
            media = await self._store.get_local_media(media_id)
            if media is None or media.quarantined_by is not None:
                raise NotFoundError("Unknown media")
            if (self._media.enable_authenticated_media and not authenticated
                    and media.authenticated):
                raise NotFoundError("Unknown media")
            if not media.pending:
                break
            now = self._clock.time_msec()
            if (media.unused_expires_at or 0) <= now:
                raise NotFoundError("Unknown media")
            if now >= deadline:
                raise MatrixError(504, "M_NOT_YET_UPLOADED",
                                  "Media has not been uploaded yet")
            # Another process may complete the upload: truth is in the database.
            await self._clock.sleep(min(0.5, (deadline - now) / 1000))
        assert media.sha256 is not None
        path = await self.storage.fetch(media.sha256)
        if path is None:
            logger.warning("Media %s: content %s missing from every store", media_id,
                           media.sha256)
            raise NotFoundError("Unknown media")
        await self._store.touch_local_media(media_id, self._clock.time_msec())
        return MediaFile(
            server_name=self._server_name, media_id=media_id,
            media_type=media.media_type or "application/octet-stream",
            media_length=media.media_length or 0, upload_name=media.upload_name,
            sha256=media.sha256, path=path)

    # GET /_matrix/federation/v1/media/download/{mediaId}
    async def get_local_media_for_federation(self, media_id: str) -> MediaFile:
        """A local item for another server (which applies its own authentication rules).

        Raises:
            MatrixError: 404 M_NOT_FOUND, 504 M_NOT_YET_UPLOADED.
        """
        check_media_address(self._server_name, media_id)
        return await self._get_local_media(media_id, True, self._media.max_download_wait_ms)

    async def quarantine(self, server_name: str, media_id: str, by: str | None) -> None:
        """Set (`by` = the admin's user ID) or lift (`by=None`) the quarantine flag;
        quarantined media is never served."""
        await self._store.set_quarantined(server_name, media_id,
                                          server_name == self._server_name, by)
