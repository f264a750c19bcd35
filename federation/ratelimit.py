"""Per-origin limits on inbound federation requests: Synapse's `rc_federation` semantics.

For each origin server, requests seen in the last `window_size` ms are counted. Beyond
`sleep_limit` of them, a request first waits `sleep_delay` ms. At most `concurrent`
requests are processed at once; the others queue in arrival order. When more than
`reject_limit` requests are already sleeping or queued, a new one is refused with
429 M_LIMIT_EXCEEDED and `retry_after_ms` (`window_size / sleep_limit`, as Synapse says).

State is in memory and per process, as in Synapse: with several federation workers each
applies the limits to the requests it serves.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import attrs
from twisted.internet import defer

from homeserver.errors import LimitExceededError

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: origins tracked before idle ones are dropped
_PRUNE_ABOVE = 10_000


@attrs.define
class _Origin:
    """The requests of one origin server."""

    #: arrival times (ms) within the window, oldest first
    arrivals: collections.deque[int] = attrs.Factory(collections.deque)
    sleeping: int = 0
    #: requests waiting for a processing slot, first come first served
    queue: collections.deque[defer.Deferred[None]] = attrs.Factory(collections.deque)
    processing: int = 0

    def idle(self) -> bool:
        return not (self.arrivals or self.sleeping or self.queue or self.processing)


class FederationRateLimiter:
    """`async with limiter.ratelimit(origin):` around the processing of one request."""

    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        config = hs.config.rc_federation
        self._window_ms = config.window_size
        self._sleep_limit = config.sleep_limit
        self._sleep_s = config.sleep_delay / 1000.0
        self._reject_limit = config.reject_limit
        self._concurrent = config.concurrent
        self._origins: dict[str, _Origin] = {}

    @contextlib.asynccontextmanager
    async def ratelimit(self, origin: str) -> AsyncIterator[None]:
        """Wait for this origin's turn, then run the body.

        Raises:
            LimitExceededError: too many of the origin's requests are waiting already.
        """
        state = self._origins.get(origin)
        if state is None:
            if len(self._origins) > _PRUNE_ABOVE:
                self._prune()
            state = self._origins[origin] = _Origin()
        now = self._clock.time_msec()
        self._expire(state, now)
        if state.sleeping + len(state.queue) > self._reject_limit:
            logger.info("Federation rate limit: refusing a request from %s", origin)
            raise LimitExceededError(
                retry_after_ms=self._window_ms // max(self._sleep_limit, 1))
        state.arrivals.append(now)
        if len(state.arrivals) > self._sleep_limit:
            state.sleeping += 1
            try:
                await self._clock.sleep(self._sleep_s)
            finally:
                state.sleeping -= 1
        if state.processing >= self._concurrent:
            turn: defer.Deferred[None] = defer.Deferred()
            state.queue.append(turn)
            try:
                await turn
            except BaseException:
                if turn in state.queue:
                    state.queue.remove(turn)
                raise
        state.processing += 1
        try:
            yield
        finally:
            # The slot is freed on the next tick: a request that completes at once would
            # otherwise start the next one inside its own stack, and so on down the queue.
            self._clock.call_later(0, self._release, origin, state)

    def _release(self, origin: str, state: _Origin) -> None:
        state.processing -= 1
        if state.queue:
            state.queue.popleft().callback(None)  # it takes the slot as it resumes
        elif state.idle() and self._origins.get(origin) is state:
            del self._origins[origin]

    def _expire(self, state: _Origin, now: int) -> None:
        while state.arrivals and now - state.arrivals[0] >= self._window_ms:
            state.arrivals.popleft()

    def _prune(self) -> None:
        now = self._clock.time_msec()
        for origin, state in list(self._origins.items()):
            self._expire(state, now)
            if state.idle():
                del self._origins[origin]
