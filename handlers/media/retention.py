"""The media clean-up job: every hour, drop async-upload IDs that never got content and,
if `media_retention` is set, media not accessed for longer than its lifetime. A file is
deleted from the stores once no local or remote row refers to its hash any more."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from twisted.internet import defer, task

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

INTERVAL_S = 3600.0


class MediaRetention:
    def __init__(self, hs: HomeServer) -> None:
        config = hs.get_config().media
        self._clock = hs.get_clock()
        self._store = hs.get_datastores().media
        self._storage = hs.get_media_storage()
        self._local_lifetime = config.local_media_lifetime_ms
        self._remote_lifetime = config.remote_media_lifetime_ms
        self._loop: task.LoopingCall | None = None
        self._running: defer.Deferred[None] | None = None
        hs.add_shutdown_hook(self.stop)

    def start(self) -> None:
        """Run `run_once` every hour (the first run an hour from now)."""
        if self._loop is None:
            self._loop = self._clock.looping_call(INTERVAL_S, self._tick)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _tick(self) -> None:
        if self._running is None:  # a slow run is not overlapped by the next
            self._running = defer.ensureDeferred(self.run_once())
            self._running.addBoth(lambda _: setattr(self, "_running", None))

    async def run_once(self) -> None:
        """One clean-up pass; errors are logged and retried at the next interval."""
        now = self._clock.time_msec()
        try:
            await self._store.delete_expired_pending(now)
            if self._local_lifetime is not None:
                while hashes := await self._store.delete_local_media_before(
                        now - self._local_lifetime):
                    await self._delete_files(hashes)
            if self._remote_lifetime is not None:
                while hashes := await self._store.delete_remote_media_before(
                        now - self._remote_lifetime):
                    await self._delete_files(hashes)
        except Exception:  # noqa: BLE001 - retried at the next interval
            logger.exception("Media retention run failed")

    async def _delete_files(self, hashes: list[str]) -> None:
        # Checked again right before deleting: an upload of the same content may have
        # been recorded since the rows went (it reuses the stored file).
        for sha in await self._store.get_unreferenced(hashes):
            await self._storage.delete(sha)
