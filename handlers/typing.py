"""Typing notifications, held in memory.

The typing stream position starts at the boot time in milliseconds and never falls
behind the wall clock, so positions keep growing across restarts: a sync token from
before a restart never hides typing that started after it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Protocol

from homeserver.errors import Codes, MatrixError
from homeserver.events import Event
from homeserver.identifiers import UserID

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: longest typing timeout a client may ask for, in milliseconds
MAX_TYPING_TIMEOUT_MS = 120_000


class _Timer(Protocol):
    """What we use of a Twisted `IDelayedCall`."""

    def active(self) -> bool: ...

    def cancel(self) -> None: ...


#: remote servers send no timeout; a typing EDU holds this long unless renewed (Synapse)
REMOTE_TYPING_TIMEOUT_MS = 60_000


class TypingHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._members = hs.get_datastores().room_members
        self._notifier = hs.get_notifier()
        self._is_mine_id = hs.is_mine_id
        # The federation sender is fetched on first use (see `_federate`).
        self._get_federation_sender = hs.get_federation_sender
        # A member leaving (or being kicked/banned) stops their typing.
        hs.get_event_creation_handler().add_persist_listener(self._on_room_event)
        hs.add_shutdown_hook(self.stop)
        self._position = self._clock.time_msec()
        #: room -> users typing in it
        self._typing: dict[str, set[str]] = {}
        #: room -> stream position of its last typing change
        self._room_positions: dict[str, int] = {}
        #: (room, user) -> the timer that ends their typing
        self._timers: dict[tuple[str, str], _Timer] = {}

    def get_current_key(self) -> int:
        """The typing stream position a sync token may point at."""
        return self._position

    def get_typing_for_sync(self, room_ids: Collection[str], from_key: int | None,
                            to_key: int) -> dict[str, dict[str, Any]]:
        """One `m.typing` ephemeral event per room whose typing set changed after
        `from_key` (stopping included, then with no users); when from_key is None, per
        room where someone is typing. The event shows the current set (as Synapse, a
        change after `to_key` is sent early rather than late)."""
        if from_key is None:
            wanted = [r for r in room_ids if self._typing.get(r)]
        else:
            # Walk the smaller side: the rooms asked about or the rooms that ever changed.
            if len(room_ids) <= len(self._room_positions):
                wanted = [r for r in room_ids
                          if self._room_positions.get(r, 0) > from_key]
            else:
                asked = room_ids if isinstance(room_ids, set | frozenset) else set(room_ids)
                wanted = [r for r, pos in self._room_positions.items()
                          if pos > from_key and r in asked]
        return {room_id: {"type": "m.typing",
                          "content": {"user_ids": sorted(self._typing.get(room_id, ()))}}
                for room_id in wanted}

    def get_typing_users(self, room_id: str) -> list[str]:
        """Who is typing in the room now (tests, admin)."""
        return sorted(self._typing.get(room_id, ()))

    # PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}
    async def set_typing(self, requester_id: str, target_id: str, room_id: str,
                         typing: bool, timeout_ms: int | None) -> None:
        """Start (for `timeout_ms`, capped at two minutes) or stop the user's typing.

        Raises:
            MatrixError: 403 M_FORBIDDEN for another user's typing or a room the user is
                not joined to; 400 M_MISSING_PARAM / M_INVALID_PARAM for a missing or
                negative timeout while typing.
        """
        if requester_id != target_id:
            raise MatrixError(403, Codes.FORBIDDEN, "Cannot set another user's typing state")
        membership = await self._members.get_local_membership(requester_id, room_id)
        if membership is None or membership.membership != "join":
            raise MatrixError(403, Codes.FORBIDDEN,
                              f"User {requester_id} not in room {room_id}")
        if not typing:
            self._stop(room_id, requester_id)
            return
        if timeout_ms is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing parameter: timeout")
        if timeout_ms < 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "timeout must not be negative")
        self._start(room_id, requester_id, min(timeout_ms, MAX_TYPING_TIMEOUT_MS))

    async def on_remote_typing(self, origin: str, content: Any) -> None:
        """An `m.typing` EDU: a remote user of `origin` who is joined to the room."""
        if not isinstance(content, dict):
            return
        room_id, user_id, typing = (content.get("room_id"), content.get("user_id"),
                                    content.get("typing"))
        if not (isinstance(room_id, str) and isinstance(user_id, str)
                and isinstance(typing, bool)):
            return
        try:
            if UserID.parse(user_id).domain != origin:
                return
        except MatrixError:
            return
        if user_id not in await self._members.get_users_in_room(room_id):
            return
        if typing:
            self._start(room_id, user_id, REMOTE_TYPING_TIMEOUT_MS)
        else:
            self._stop(room_id, user_id)

    def stop(self) -> None:
        """Cancel every expiry timer (server shutdown)."""
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()

    # -- internals --

    def _start(self, room_id: str, user_id: str, timeout_ms: int) -> None:
        key = (room_id, user_id)
        old = self._timers.pop(key, None)
        if old is not None and old.active():
            old.cancel()
        self._timers[key] = self._clock.call_later(
            timeout_ms / 1000, self._expire, room_id, user_id)
        users = self._typing.setdefault(room_id, set())
        if user_id not in users:
            users.add(user_id)
            self._changed(room_id)
        # Every PUT goes out: other servers time typing out on their own.
        self._federate(room_id, user_id, True)

    def _stop(self, room_id: str, user_id: str) -> None:
        timer = self._timers.pop((room_id, user_id), None)
        if timer is not None and timer.active():
            timer.cancel()
        users = self._typing.get(room_id)
        if users is None or user_id not in users:
            return
        users.discard(user_id)
        if not users:
            del self._typing[room_id]
        self._changed(room_id)
        self._federate(room_id, user_id, False)

    def _federate(self, room_id: str, user_id: str, typing: bool) -> None:
        """Tell the room's other servers (an `m.typing` EDU; a newer one replaces it)."""
        if self._is_mine_id(user_id):
            self._get_federation_sender().send_edu_to_room(
                room_id, "m.typing", {"room_id": room_id, "user_id": user_id,
                                      "typing": typing}, key=(room_id, user_id))

    def _expire(self, room_id: str, user_id: str) -> None:
        self._timers.pop((room_id, user_id), None)
        self._stop(room_id, user_id)

    def _changed(self, room_id: str) -> None:
        self._position = max(self._position + 1, self._clock.time_msec())
        self._room_positions[room_id] = self._position
        self._notifier.on_new_event("typing", self._position, rooms=[room_id])

    def _on_room_event(self, event: Event, stream_ordering: int) -> None:
        if event.type == "m.room.member" and event.state_key is not None \
                and event.membership != "join":
            self._stop(event.room_id, event.state_key)
