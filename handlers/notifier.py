"""Wakes long-polling `/sync` requests when something they may care about changes.

Every change to a syncable stream is announced with `on_new_event(stream, position,
users=..., rooms=...)`. A waiter names its user and its rooms and the notifier version it
computed its answer at; it wakes as soon as any of those was announced after that version,
or at its timeout. Comparing versions (instead of only waiting for the next call) closes
the race between computing an empty answer and starting to wait.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from homeserver.events import Event

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)


class Notifier:
    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._version = 0
        # key ("@user" or "!room") -> notifier version of its last announcement
        self._last_seen: dict[str, int] = {}
        # key -> the Deferreds of requests waiting on it
        self._waiters: dict[str, set[defer.Deferred[None]]] = {}
        #: stream name -> highest position announced (for metrics and tests)
        self.positions: dict[str, int] = {}

    def current_version(self) -> int:
        return self._version

    def on_new_event(self, stream: str, position: int, users: Iterable[str] = (),
                     rooms: Iterable[str] = ()) -> None:
        """Announce that `stream` reached `position` with changes for these users/rooms."""
        self._version += 1
        self.positions[stream] = max(position, self.positions.get(stream, 0))
        woken: list[defer.Deferred[None]] = []
        for key in (*users, *rooms):
            self._last_seen[key] = self._version
            waiters = self._waiters.pop(key, None)
            if waiters:
                woken.extend(waiters)
        if woken:
            # Wake on the next reactor turn: every other listener of this change (caches
            # the waiters will read) runs first, and the writer's call stack stays short.
            self._clock.call_later(0, _fire, woken)

    def on_room_event(self, event: Event, stream_ordering: int) -> None:
        """A room event was persisted: wake the room, and a membership's target user."""
        users = (event.state_key,) if event.type == "m.room.member" and event.state_key else ()
        self.on_new_event("room", stream_ordering, users=users, rooms=(event.room_id,))

    async def wait_for_events(self, user_id: str, room_ids: Collection[str],
                              since_version: int, timeout_ms: int) -> bool:
        """Wait until the user or one of the rooms is announced after `since_version`.

        Returns True when woken by an announcement, False on timeout.
        """
        keys = (user_id, *room_ids)
        if any(self._last_seen.get(k, 0) > since_version for k in keys):
            return True
        if timeout_ms <= 0:
            return False
        d: defer.Deferred[None] = defer.Deferred()
        for key in keys:
            self._waiters.setdefault(key, set()).add(d)
        timed_out = False

        def on_timeout() -> None:
            nonlocal timed_out
            timed_out = True
            if not d.called:
                d.callback(None)

        call: Any = self._clock.call_later(timeout_ms / 1000, on_timeout)
        try:
            await d
        finally:
            if call.active():
                call.cancel()
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(d)
                    if not waiters:
                        del self._waiters[key]
        return not timed_out

    def waiting_count(self) -> int:
        """How many distinct requests are waiting (for metrics and tests)."""
        seen: set[int] = set()
        for waiters in self._waiters.values():
            seen.update(id(d) for d in waiters)
        return len(seen)

    def debug_state(self) -> dict[str, Any]:
        return {"version": self._version, "positions": dict(self.positions)}


def _fire(deferreds: list[defer.Deferred[None]]) -> None:
    for d in deferreds:
        if not d.called:
            d.callback(None)
