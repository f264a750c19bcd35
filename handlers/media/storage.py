"""Where media files live.

Files are named by the SHA-256 of their content (`sha256/ab/cd/<hash>`), so identical
uploads share one copy. `media_store_path` on local disk always holds a copy (the primary
store for a single server, the cache in front of object storage otherwise); each
`media_storage_providers` entry is a `MediaStorageBackend` that also gets a copy and is
asked for files missing locally — which is how several processes or machines share media.
"""

from __future__ import annotations

import abc
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from homeserver.media_config import S3BackendConfig, StorageProviderConfig

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

T = TypeVar("T")


def content_key(sha256: str) -> str:
    """The backend key of a file: `sha256/ab/cd/abcd…` (hex digest)."""
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class MediaStorageBackend(abc.ABC):
    """A place that keeps media files by key. Implementations may block: every method is
    called on a worker thread, never on the reactor."""

    @abc.abstractmethod
    def store_file(self, key: str, path: str) -> None:
        """Copy the local file `path` to `key` (overwriting is harmless: same content)."""

    @abc.abstractmethod
    def fetch_file(self, key: str, path: str) -> bool:
        """Write the file at `key` to the local `path`; False if the backend has no such
        file (and `path` is then left untouched)."""

    @abc.abstractmethod
    def delete_file(self, key: str) -> None:
        """Remove `key`; no error if it is absent."""


class FileBackend(MediaStorageBackend):
    """A directory on disk (`media_store_path`, or a `file_system` provider)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path_of(self, key: str) -> str:
        return os.path.join(self.directory, *key.split("/"))

    def store_file(self, key: str, path: str) -> None:
        dest = self.path_of(key)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = f"{dest}.{os.getpid()}.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)

    def fetch_file(self, key: str, path: str) -> bool:
        src = self.path_of(key)
        if not os.path.exists(src):
            return False
        shutil.copyfile(src, path)
        return True

    def delete_file(self, key: str) -> None:
        try:
            os.unlink(self.path_of(key))
        except FileNotFoundError:
            pass


class S3Backend(MediaStorageBackend):
    """An S3-compatible bucket through boto3 (AWS, MinIO, Ceph, Garage…)."""

    def __init__(self, config: S3BackendConfig) -> None:
        import boto3

        self._bucket = config.bucket
        self._prefix = config.prefix
        self._extra: dict[str, Any] = (
            {"StorageClass": config.storage_class} if config.storage_class else {})
        self._client = boto3.session.Session().client(
            "s3", endpoint_url=config.endpoint_url, region_name=config.region_name,
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            aws_session_token=config.session_token)

    def store_file(self, key: str, path: str) -> None:
        self._client.upload_file(path, self._bucket, self._prefix + key,
                                 ExtraArgs=self._extra or None)

    def fetch_file(self, key: str, path: str) -> bool:
        from botocore.exceptions import ClientError

        tmp = f"{path}.s3part"
        try:
            self._client.download_file(self._bucket, self._prefix + key, tmp)
        except ClientError as e:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return False
            raise
        os.replace(tmp, path)
        return True

    def delete_file(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=self._prefix + key)


def build_backend(config: StorageProviderConfig) -> MediaStorageBackend:
    if config.kind == "s3":
        assert config.s3 is not None
        return S3Backend(config.s3)
    assert config.directory is not None
    return FileBackend(config.directory)


class MediaStorage:
    """The local store plus the configured providers.

    Args:
        hs: the container (config, thread runner, background-task tracking).
        providers: override the configured providers (tests).
    """

    def __init__(self, hs: HomeServer,
                 providers: list[tuple[StorageProviderConfig, MediaStorageBackend]] | None
                 = None) -> None:
        config = hs.get_config()
        self._run_in_thread = hs.run_in_thread
        self.local = FileBackend(config.media_store_path)
        self._tmp_dir = os.path.join(config.media_store_path, "tmp")
        os.makedirs(self._tmp_dir, exist_ok=True)
        if providers is None:
            providers = [(p, build_backend(p)) for p in config.media.storage_providers]
        self._providers = providers
        self._background: set[Any] = set()

    @contextmanager
    def temp_path(self) -> Iterator[str]:
        """A fresh file name on the store's file system (so a move into place is atomic);
        removed on exit if still there, so an aborted upload leaves nothing behind."""
        fd, path = tempfile.mkstemp(dir=self._tmp_dir, prefix="upload-")
        os.close(fd)
        try:
            yield path
        finally:
            if os.path.exists(path):
                os.unlink(path)

    def local_path(self, sha256: str) -> str:
        return self.local.path_of(content_key(sha256))

    async def store(self, sha256: str, path: str, remote: bool) -> None:
        """Move the finished file `path` into the store under its hash, then copy it to the
        providers that want it (`store_local` / `store_remote`)."""
        key = content_key(sha256)
        dest = self.local.path_of(key)

        def _move() -> None:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if os.path.exists(dest):
                os.unlink(path)  # deduplicated: the same content is already stored
            else:
                os.replace(path, dest)

        await self._run_in_thread(_move)
        for config, backend in self._providers:
            if not (config.store_remote if remote else config.store_local):
                continue
            if config.store_synchronous:
                await self._run_in_thread(backend.store_file, key, dest)
            else:
                self._in_background(backend.store_file, key, dest)

    async def fetch(self, sha256: str) -> str | None:
        """The local path of the file, fetched from a provider into the local cache if it
        is not on disk; None if no store has it."""
        key = content_key(sha256)
        dest = self.local.path_of(key)
        if os.path.exists(dest):
            return dest
        for _config, backend in self._providers:
            with self.temp_path() as tmp:
                if await self._run_in_thread(backend.fetch_file, key, tmp):
                    def _move(tmp: str = tmp) -> None:
                        os.makedirs(os.path.dirname(dest), exist_ok=True)
                        os.replace(tmp, dest)

                    await self._run_in_thread(_move)
                    return dest
        return None

    async def delete(self, sha256: str) -> None:
        """Remove the file from the local store and every provider."""
        key = content_key(sha256)
        await self._run_in_thread(self.local.delete_file, key)
        for _config, backend in self._providers:
            await self._run_in_thread(backend.delete_file, key)

    def _in_background(self, func: Callable[..., Any], *args: Any) -> None:
        from twisted.internet import defer

        d = defer.ensureDeferred(self._run_in_thread(func, *args))
        self._background.add(d)

        def _done(result: Any) -> Any:
            self._background.discard(d)
            if hasattr(result, "getErrorMessage"):
                logger.warning("Copying media to a storage provider failed: %s",
                               result.getErrorMessage())
            return None

        d.addBoth(_done)
