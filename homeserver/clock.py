"""The one source of time: a `Clock` over the reactor, so tests control time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall


class Clock:
    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def time(self) -> float:
        """Seconds since the epoch."""
        return float(self._reactor.seconds())

    def time_msec(self) -> int:
        """Milliseconds since the epoch."""
        return int(self._reactor.seconds() * 1000)

    async def sleep(self, seconds: float) -> None:
        d: defer.Deferred[None] = defer.Deferred()
        self._reactor.callLater(seconds, d.callback, None)
        await d

    def call_later(self, seconds: float, callback: Callable[..., Any], *args: Any) -> IDelayedCall:
        return self._reactor.callLater(seconds, callback, *args)  # type: ignore[no-any-return]

    def looping_call(self, seconds: float, callback: Callable[[], Any]) -> task.LoopingCall:
        call = task.LoopingCall(callback)
        call.clock = self._reactor
        call.start(seconds, now=False)
        return call
