"""Resumable uploads (tus 1.0 core plus creation, expiration and termination).

An upload is created with its total length; its bytes are appended at the offset the
server reports, into a temporary file under `<media_store_path>/resumable/`. Once the
last byte is in, the file goes through the media repository like any upload (dedup,
quotas, thumbnails) through a `CompletedUploadSink`, and the content URI is kept on the
row until it expires so that a client which lost the final answer can ask again with
HEAD. Incomplete uploads expire `resumable_upload_lifetime` after their last PATCH.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from email.utils import formatdate
from http import HTTPStatus
from typing import IO, TYPE_CHECKING, Protocol

import attrs
from twisted.internet import defer, task

from homeserver.async_utils import Linearizer
from homeserver.errors import BadRequestError, Codes, MatrixError, NotFoundError
from storage.stores.resumable_uploads import ResumableUploadRow

if TYPE_CHECKING:
    from handlers.media.repository import MediaRepository
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = ("creation", "expiration", "termination")
EXPIRY_INTERVAL_S = 600
_CHUNK = 256 * 1024
#: what `secrets.token_urlsafe` issues; anything else is unknown (and never a file name)
_UPLOAD_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class CompletedUploadSink(Protocol):
    """Where a finished upload goes: the media repository's store for a local file."""

    async def store_completed_upload(self, user_id: str, path: str, length: int,
                                     filename: str | None, content_type: str | None) -> str:
        """Store the file at `path` (which the sink may move or delete) as `user_id`'s
        upload; returns its `mxc://` URI."""
        ...

    async def check_upload_allowed(self, user_id: str, length: int) -> None:
        """Raise the error the store would give an upload of `length` bytes (size,
        quotas), so that a doomed upload is refused before its bytes are sent."""
        ...


class MediaRepositorySink:
    """A finished file goes through the media repository's ordinary upload (size,
    quotas, dedup)."""

    def __init__(self, repository: MediaRepository) -> None:
        self._repository = repository

    async def store_completed_upload(self, user_id: str, path: str, length: int,
                                     filename: str | None, content_type: str | None) -> str:
        with open(path, "rb") as f:
            return await self._repository.upload(
                user_id, content_type or "application/octet-stream", filename, f, length)

    async def check_upload_allowed(self, user_id: str, length: int) -> None:
        await self._repository.check_upload_allowed(user_id, length)


@attrs.frozen(slots=True)
class ResumableUploadState:
    upload_id: str
    length: int
    offset: int
    expires_ms: int
    #: set once the upload is complete
    content_uri: str | None
    filename: str | None = None
    content_type: str | None = None


def _state(row: ResumableUploadRow) -> ResumableUploadState:
    return ResumableUploadState(row.upload_id, row.upload_length, row.upload_offset,
                                row.expires_ms, row.content_uri, row.filename,
                                row.content_type)


def parse_upload_metadata(header: str) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs (the value optional).

    Raises:
        BadRequestError: a malformed pair or a value that is not base64 of UTF-8 text.
    """
    metadata: dict[str, str] = {}
    for pair in header.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        if not key or " " in value.strip() or key in metadata:
            raise BadRequestError("Malformed Upload-Metadata")
        try:
            metadata[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequestError(f"Upload-Metadata {key!r} is not base64 of UTF-8") from None
    return metadata


class ResumableUploadHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._store = hs.get_datastores().resumable_uploads
        self._clock = hs.get_clock()
        self._run_in_thread = hs.run_in_thread
        self._sink = hs.get_completed_upload_sink()
        self.max_size = hs.config.max_upload_size
        self._lifetime_ms = hs.config.media_extras.resumable_upload_lifetime
        self._dir = os.path.join(hs.config.media_store_path, "resumable")
        self._linearizer = Linearizer()
        self._loop: task.LoopingCall | None = self._clock.looping_call(
            EXPIRY_INTERVAL_S, lambda: defer.ensureDeferred(self.expire_uploads()))
        hs.add_shutdown_hook(self._stop)

    def _stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _path(self, upload_id: str) -> str:
        return os.path.join(self._dir, upload_id)

    # POST /_matrix/client/unstable/io.axon/upload/resumable
    async def create(self, user_id: str, length: int, metadata: dict[str, str]
                     ) -> ResumableUploadState:
        """Start an upload of `length` bytes (413 above `max_upload_size`)."""
        if length > self.max_size:
            raise MatrixError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, Codes.TOO_LARGE,
                              f"Upload-Length exceeds the maximum of {self.max_size} bytes")
        await self._sink.check_upload_allowed(user_id, length)
        now = self._clock.time_msec()
        row = ResumableUploadRow(
            upload_id=secrets.token_urlsafe(24), user_id=user_id, upload_length=length,
            upload_offset=0, filename=metadata.get("filename") or None,
            content_type=metadata.get("filetype") or metadata.get("content_type") or None,
            created_ms=now, expires_ms=now + self._lifetime_ms, content_uri=None)
        await self._run_in_thread(self._create_file, row.upload_id)
        await self._store.create_upload(row)
        if length == 0:
            return await self._complete(row)
        return _state(row)

    def _create_file(self, upload_id: str) -> None:
        os.makedirs(self._dir, exist_ok=True)
        with open(self._path(upload_id), "xb"):
            pass

    async def _get_own(self, user_id: str, upload_id: str) -> ResumableUploadRow:
        if not _UPLOAD_ID_RE.fullmatch(upload_id):
            raise NotFoundError("Unknown upload")
        row = await self._store.get_upload(upload_id)
        # Another user's upload is as unknown as a missing one.
        if row is None or row.user_id != user_id or row.expires_ms <= self._clock.time_msec():
            raise NotFoundError("Unknown upload")
        return row

    # HEAD /_matrix/client/unstable/io.axon/upload/resumable/{uploadId}
    async def status(self, user_id: str, upload_id: str) -> ResumableUploadState:
        return _state(await self._get_own(user_id, upload_id))

    # PATCH /_matrix/client/unstable/io.axon/upload/resumable/{uploadId}
    async def append(self, user_id: str, upload_id: str, offset: int, content: IO[bytes]
                     ) -> ResumableUploadState:
        """Write the body at `offset`, which must be where the upload stands (409 if not);
        the last byte completes the upload. The body is copied in chunks, never held
        whole in memory."""
        async with self._linearizer.queue(upload_id):
            row = await self._get_own(user_id, upload_id)
            if offset != row.upload_offset:
                raise MatrixError(HTTPStatus.CONFLICT, Codes.INVALID_PARAM,
                                  f"Upload-Offset is {row.upload_offset}, not {offset}")
            written = await self._run_in_thread(self._write, upload_id, offset, content,
                                                row.upload_length - offset)
            if written is None:
                await self._run_in_thread(self._truncate, upload_id, offset)
                raise MatrixError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, Codes.TOO_LARGE,
                                  "The data goes past Upload-Length")
            if written:
                expires = self._clock.time_msec() + self._lifetime_ms
                new_offset = offset + written
                if not await self._store.advance_offset(upload_id, offset, new_offset,
                                                        expires):
                    raise MatrixError(HTTPStatus.CONFLICT, Codes.INVALID_PARAM,
                                      "The upload moved on meanwhile")
                row = attrs.evolve(row, upload_offset=new_offset, expires_ms=expires)
            if row.upload_offset == row.upload_length and row.content_uri is None:
                return await self._complete(row)
            return _state(row)

    def _write(self, upload_id: str, offset: int, content: IO[bytes], room: int
               ) -> int | None:
        """Copy `content` to the file at `offset`; None if it holds more than `room`."""
        written = 0
        with open(self._path(upload_id), "r+b") as f:
            # Bytes past the offset are from an interrupted request the row never counted.
            f.truncate(offset)
            f.seek(offset)
            while chunk := content.read(_CHUNK):
                written += len(chunk)
                if written > room:
                    return None
                f.write(chunk)
        return written

    def _truncate(self, upload_id: str, offset: int) -> None:
        with open(self._path(upload_id), "r+b") as f:
            f.truncate(offset)

    async def _complete(self, row: ResumableUploadRow) -> ResumableUploadState:
        uri = await self._sink.store_completed_upload(
            row.user_id, self._path(row.upload_id), row.upload_length, row.filename,
            row.content_type)
        await self._store.set_content_uri(row.upload_id, uri)
        await self._run_in_thread(self._remove_file, row.upload_id)
        return _state(attrs.evolve(row, content_uri=uri))

    def _remove_file(self, upload_id: str) -> None:
        try:
            os.unlink(self._path(upload_id))
        except FileNotFoundError:
            pass

    # DELETE /_matrix/client/unstable/io.axon/upload/resumable/{uploadId}
    async def terminate(self, user_id: str, upload_id: str) -> None:
        async with self._linearizer.queue(upload_id):
            await self._get_own(user_id, upload_id)
            await self._store.delete_upload(upload_id)
            await self._run_in_thread(self._remove_file, upload_id)

    async def expire_uploads(self) -> int:
        """Drop expired uploads and their files; returns how many."""
        try:
            expired = await self._store.delete_expired(self._clock.time_msec())
            for upload_id in expired:
                await self._run_in_thread(self._remove_file, upload_id)
        except Exception:  # noqa: BLE001 - retried at the next interval
            logger.exception("Expiring resumable uploads failed")
            return 0
        return len(expired)


def expiry_header(expires_ms: int) -> str:
    """`Upload-Expires` in RFC 7231 date format."""
    return formatdate(expires_ms / 1000, usegmt=True)

