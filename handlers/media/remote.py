"""Remote media for local clients: fetched from the origin server over federation
(`/_matrix/federation/v1/media/download`, falling back to the legacy
`/_matrix/media/v3/download?allow_remote=false`), then cached (`remote_media_cache` and
the storage backend). Concurrent requests for one item share one fetch."""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from typing import IO, TYPE_CHECKING, cast

import attrs

from federation.client import FederationRequestError
from handlers.media.repository import MediaFile, StoredContent, copy_and_hash
from handlers.media.storage import MediaStorage
from homeserver.async_utils import Linearizer
from homeserver.errors import Codes, MatrixError, NotFoundError

if TYPE_CHECKING:
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
        self._run_in_thread = hs.run_in_thread
        self._authenticated_media = config.media.enable_authenticated_media
        self._linearizer = Linearizer()

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
        # One fetch per item: later requests find it cached when the first is done.
        async with self._linearizer.queue((origin, media_id)):
            cached = await self._store.get_remote_media(origin, media_id)
            if cached is not None:
                return cached
            with self._storage.temp_path() as raw_path:
                part = await self._download(origin, media_id, raw_path, timeout_ms)
                with open(raw_path, "rb") as raw:
                    raw.seek(part.offset)
                    stored = await self._store_content(
                        cast(IO[bytes], _Slice(raw, part.length)))
            now = self._clock.time_msec()
            await self._store.store_remote_media(
                origin, media_id, part.media_type, part.upload_name, stored.length,
                stored.sha256, now, self._authenticated_media)
            cached = await self._store.get_remote_media(origin, media_id)
            assert cached is not None
            return cached

    async def _store_content(self, content: IO[bytes]) -> StoredContent:
        with self._storage.temp_path() as tmp:
            stored = await self._run_in_thread(copy_and_hash, content, tmp, self._max_size)
            if stored is None:
                raise MatrixError(413, Codes.TOO_LARGE, "Remote media is too large")
            await self._storage.store(stored.sha256, tmp, remote=True)
        return stored

    async def _download(self, origin: str, media_id: str, path: str,
                        timeout_ms: int) -> _FilePart:
        """Fetch the item into `path`; returns where its content lies in that file."""
        timeout = max(timeout_ms / 1000, 5.0) + 10.0
        try:
            with open(path, "wb") as sink:
                answer = await self._federation.get_file(
                    origin, f"/_matrix/federation/v1/media/download/{media_id}", sink,
                    self._max_size + 65536, query={"timeout_ms": str(timeout_ms)},
                    timeout=timeout)
            return await self._multipart_part(path, answer.headers, answer.length, timeout)
        except FederationRequestError as e:
            if not _endpoint_unknown(e):
                raise _client_error(e) from None
        # An older server: the legacy endpoint, whose body is the file itself.
        try:
            with open(path, "wb") as sink:
                answer = await self._federation.get_file(
                    origin, f"/_matrix/media/v3/download/{origin}/{media_id}", sink,
                    self._max_size, timeout=timeout,
                    query={"allow_remote": "false", "timeout_ms": str(timeout_ms)})
        except FederationRequestError as e:
            raise _client_error(e) from None
        return _FilePart(0, answer.length, _media_type(answer.headers),
                         disposition_file_name(answer.headers.get("content-disposition")))

    async def _multipart_part(self, path: str, headers: dict[str, str], length: int,
                              timeout: float) -> _FilePart:
        boundary = _boundary(headers.get("content-type", ""))
        with open(path, "rb") as f:
            head = f.read(65536)
            f.seek(max(0, length - 1024))
            tail = f.read()
        delimiter = b"--" + boundary
        first = head.find(delimiter)
        second = head.find(b"\r\n" + delimiter, first + len(delimiter)) if first >= 0 else -1
        if second < 0:
            raise MatrixError(502, Codes.UNKNOWN, "Remote server sent a bad multipart body")
        header_start = second + 2 + len(delimiter) + 2
        header_end = head.find(b"\r\n\r\n", header_start)
        if header_end < 0:
            raise MatrixError(502, Codes.UNKNOWN, "Remote server sent a bad multipart body")
        part_headers = _parse_headers(head[header_start:header_end])
        location = part_headers.get("location")
        if location is not None:
            if not location.startswith(("https://", "http://")):
                raise MatrixError(502, Codes.UNKNOWN, "Remote server sent a bad redirect")
            try:
                with open(path, "wb") as sink:
                    answer = await self._federation.get_url_file(
                        location, sink, self._max_size, timeout=timeout)
            except FederationRequestError as e:
                raise _client_error(e) from None
            return _FilePart(0, answer.length, _media_type(answer.headers),
                             disposition_file_name(answer.headers.get("content-disposition")))
        start = header_end + 4
        end_in_tail = tail.rfind(b"\r\n" + delimiter + b"--")
        if end_in_tail < 0:
            raise MatrixError(502, Codes.UNKNOWN, "Remote server sent a bad multipart body")
        end = max(0, length - len(tail)) + end_in_tail
        if end < start:
            raise MatrixError(502, Codes.UNKNOWN, "Remote server sent a bad multipart body")
        return _FilePart(start, end - start, _media_type(part_headers),
                         disposition_file_name(part_headers.get("content-disposition")))


@attrs.frozen(slots=True)
class _FilePart:
    offset: int
    length: int
    media_type: str
    upload_name: str | None


class _Slice:
    def __init__(self, f: IO[bytes], length: int) -> None:
        self._f = f
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._f.read(size)
        self._left -= len(data)
        return data


def _endpoint_unknown(e: FederationRequestError) -> bool:
    """The server does not know the federation media endpoint (older than Matrix 1.11)."""
    return (e.code in (404, 405, 400) and e.errcode in ("M_UNRECOGNIZED", None)) or \
        e.code == 501


def _client_error(e: FederationRequestError) -> MatrixError:
    if e.code == 404:
        return NotFoundError("Unknown media")
    if e.code == 413:
        return MatrixError(413, Codes.TOO_LARGE, "Remote media is too large")
    if e.code == 504 or e.errcode == "M_NOT_YET_UPLOADED":
        return MatrixError(504, "M_NOT_YET_UPLOADED", "Remote media has not been uploaded yet")
    logger.info("Fetching remote media failed: %s", e)
    return MatrixError(502, Codes.UNKNOWN, "Failed to fetch remote media")


_BOUNDARY_RE = re.compile(r'boundary="?([A-Za-z0-9\'()+_,\-./:=? ]{1,70})"?')


def _boundary(content_type: str) -> bytes:
    if not content_type.lower().startswith("multipart/mixed"):
        raise MatrixError(502, Codes.UNKNOWN, "Remote server did not answer multipart/mixed")
    m = _BOUNDARY_RE.search(content_type)
    if m is None:
        raise MatrixError(502, Codes.UNKNOWN, "Remote server sent no multipart boundary")
    return m.group(1).rstrip().encode("ascii")


def _parse_headers(raw: bytes) -> dict[str, str]:
    headers = {}
    for line in raw.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _media_type(headers: dict[str, str]) -> str:
    value = headers.get("content-type", "").strip()
    if not value or re.search(r"[\x00-\x1f\x7f]", value):
        return "application/octet-stream"
    return value


def disposition_file_name(header: str | None) -> str | None:
    """The file name of a Content-Disposition header (`filename*=` preferred, RFC 6266)."""
    if not header:
        return None
    m = re.search(r"filename\*\s*=\s*(?:utf-8|UTF-8)''([^;]+)", header)
    if m:
        name = urllib.parse.unquote(m.group(1).strip(), errors="replace")
    else:
        m = re.search(r'filename\s*=\s*("(?:[^"\\]|\\.)*"|[^;]+)', header)
        if not m:
            return None
        name = m.group(1).strip()
        if name.startswith('"'):
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
    if re.search(r"[\x00-\x1f\x7f]", name):
        return None
    return os.path.basename(name) or None
