"""In-memory index of the newest events of each room, kept by the events store.

It is updated while an event's stream position is still reserved (before the position
becomes visible to readers), so any token a reader holds is covered: "which rooms changed
since X" and "the newest events of this room after X" are answered without the database
whenever X is recent enough.
"""

from __future__ import annotations

from collections import deque

#: newest events remembered per room (a sync timeline asks for `limit + 1`)
EVENTS_PER_ROOM = 64
#: push actions of an event are remembered only up to this many recipients
MAX_ACTIONS_PER_EVENT = 2000

#: user -> (notify, highlight, thread_id) for the recipients of one event
PushCounts = dict[str, tuple[bool, bool, str]]


class RecentRoomEvents:
    def __init__(self, earliest: int, per_room: int = EVENTS_PER_ROOM) -> None:
        #: every event persisted after this position is known here
        self.earliest = earliest
        self._per_room = per_room
        self._last: dict[str, int] = {}
        self._events: dict[str, deque[tuple[str, int]]] = {}
        # room -> (position, the event's push actions or None if too many to keep)
        self._actions: dict[str, deque[tuple[int, PushCounts | None]]] = {}
        # room -> the position below which this room's events were dropped from the deque
        self._floor: dict[str, int] = {}

    def add(self, room_id: str, event_id: str, stream_ordering: int,
            push_actions: PushCounts | None = None) -> None:
        if stream_ordering > self._last.get(room_id, 0):
            self._last[room_id] = stream_ordering
        events = self._events.get(room_id)
        actions = self._actions.get(room_id)
        if events is None or actions is None:
            events = self._events[room_id] = deque()
            actions = self._actions[room_id] = deque()
        if len(events) >= self._per_room:
            self._floor[room_id] = events.popleft()[1]
            actions.popleft()
        events.append((event_id, stream_ordering))
        if push_actions is not None and len(push_actions) > MAX_ACTIONS_PER_EVENT:
            push_actions = None
        actions.append((stream_ordering, push_actions or {}) if push_actions is not None
                       else (stream_ordering, None))

    def push_counts_between(self, room_id: str, user_id: str, since: int, upto: int
                            ) -> dict[str, tuple[int, int]] | None:
        """thread -> (notifications, highlights) for the user from the events in
        (since, upto]; None when this index cannot tell."""
        floor = max(self._floor.get(room_id, 0), self.earliest)
        if since < floor:
            return None
        out: dict[str, tuple[int, int]] = {}
        for pos, actions in reversed(self._actions.get(room_id, ())):
            if pos <= since:
                break
            if pos > upto:
                continue
            if actions is None:
                return None
            action = actions.get(user_id)
            if action is not None:
                notify, highlight, thread = action
                n, h = out.get(thread, (0, 0))
                out[thread] = (n + int(notify), h + int(highlight))
        return out

    def last_position(self, room_id: str) -> int:
        """The position of the room's newest event, or `earliest` if none came since."""
        return self._last.get(room_id, self.earliest)

    def rooms_changed(self, room_ids: set[str] | list[str], since: int) -> set[str] | None:
        """The rooms with events after `since`; None when `since` predates this index."""
        if since < self.earliest:
            return None
        last = self._last
        return {r for r in room_ids if last.get(r, 0) > since}

    def events_between(self, room_id: str, since: int | None, upto: int, limit: int
                       ) -> list[tuple[str, int]] | None:
        """Up to `limit` (event_id, stream_ordering) in (since, upto], newest first, or None
        when the index may be missing some of them (then ask the database)."""
        floor = max(self._floor.get(room_id, 0), self.earliest)
        if since is None or since < floor:
            return None
        out: list[tuple[str, int]] = []
        for event_id, pos in reversed(self._events.get(room_id, ())):
            if pos <= since or len(out) >= limit:
                break
            if pos <= upto:
                out.append((event_id, pos))
        return out
