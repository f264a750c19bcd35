"""Small async helpers on Twisted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Hashable

from twisted.internet import defer


class Linearizer:
    """Runs the blocks queued under one key one at a time, in arrival order."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[defer.DeferredLock, int]] = {}

    @contextlib.asynccontextmanager
    async def queue(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (defer.DeferredLock(), 0))
        self._locks[key] = (lock, users + 1)
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
