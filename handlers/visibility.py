"""History visibility: which events and which room state a local user may see.

The rules are the client-server API's "Room History Visibility" module, applied to the
room state *at* each event (the state after it, as stored in `event_to_state_groups`),
with Synapse's reading of rule 3: `shared` history is open to current members only, so a
user who is not joined now (a peeker, or someone who left) does not see it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from homeserver.errors import Codes, MatrixError
from homeserver.events import Event
from homeserver.redaction import prune_event

if TYPE_CHECKING:
    from homeserver.server import HomeServer

StateKey = tuple[str, str]

WORLD_READABLE = "world_readable"
SHARED = "shared"
INVITED = "invited"
JOINED = "joined"
#: most permissive first
VISIBILITY_ORDER = (WORLD_READABLE, SHARED, INVITED, JOINED)

HISTORY_VISIBILITY_KEY: StateKey = ("m.room.history_visibility", "")
#: events servers send to heal forks; never shown to clients (as Synapse)
DUMMY_EVENT_TYPE = "org.matrix.dummy_event"


def visibility_from_content(content: Mapping[str, Any] | None) -> str:
    """The `history_visibility` value, `shared` when missing or not understood (spec)."""
    value = content.get("history_visibility") if content is not None else None
    return value if isinstance(value, str) and value in VISIBILITY_ORDER else SHARED


def most_permissive(visibilities: Iterable[str]) -> str:
    return min(visibilities, key=VISIBILITY_ORDER.index, default=SHARED)


def is_event_visible(user_id: str, event: Event, visibility: str, membership: str | None,
                     is_peeking: bool) -> bool:
    """Decide one event for one user, per the spec's server-behaviour rules.

    Args:
        visibility: the effective history visibility at the event (for an
            `m.room.history_visibility` event: the more permissive of before and after).
        membership: the user's membership in the state at the event, if any.
        is_peeking: the user is not joined to the room now.
    """
    # A user always sees their own membership events (invites, kicks, bans, leaves).
    if event.type == "m.room.member" and event.state_key == user_id:
        return True
    # 1. world_readable: anyone.
    if visibility == WORLD_READABLE:
        return True
    # 2. joined at the event.
    if membership == "join":
        return True
    # 3. shared: members who joined later — taken as "joined now" (not peeking).
    if visibility == SHARED:
        return not is_peeking
    # 4. invited at the event, and visibility is `invited`.
    return visibility == INVITED and membership == "invite"


#: why a user may read a room's state (`RoomStateAccess.reason`)
JOINED_NOW = "joined"
DEPARTED = "departed"


@attrs.frozen(slots=True)
class RoomStateAccess:
    """The room state a user may read, and why."""

    state: Mapping[StateKey, str]
    #: JOINED_NOW (current state), DEPARTED (state as of leaving) or WORLD_READABLE
    reason: str
    #: for DEPARTED: the stream position of the event that ended their membership
    departed_at: int | None = None


def _end_of_last_join(history: Iterable[tuple[str, str, int]]) -> tuple[str, int] | None:
    """(event ID, stream ordering) of the membership event that ended the user's last
    run of `join` memberships, from their history oldest first; None if never joined."""
    end: tuple[str, int] | None = None
    joined = False
    for event_id, membership, ordering in history:
        if membership == "join":
            joined, end = True, None
        elif joined:
            joined, end = False, (event_id, ordering)
    return end


@attrs.frozen(slots=True)
class _GroupFacts:
    """What one state snapshot says about one user."""

    visibility: str
    membership: str | None


class VisibilityHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._state = stores.state
        self._events = stores.events
        self._members = stores.room_members
        self._moderation = stores.moderation

    async def filter_events_for_client(self, user_id: str, events: Iterable[Event],
                                       always_include_ids: Collection[str] = ()
                                       ) -> list[Event]:
        """The events (in their given order) that `user_id` may see.

        Rejected events and dummy events are never shown; events without stored state
        (outliers) only when they are the user's own membership events. The state lookups
        are batched: one query for the state groups of events not cached, and one for the
        snapshots and state events not cached.
        """
        candidates = [e for e in events
                      if e.rejected_reason is None and e.type != DUMMY_EVENT_TYPE]
        if not candidates:
            return []
        # The state before an m.room.history_visibility event is the state after its
        # prev events: the spec lets the user see it if either side allows.
        prevs_of = {e.event_id: e.prev_event_ids for e in candidates
                    if e.type == HISTORY_VISIBILITY_KEY[0] and e.state_key == ""}
        wanted = [e.event_id for e in candidates]
        wanted.extend(p for prevs in prevs_of.values() for p in prevs)
        group_of = await self._state.get_state_groups_for_events(dict.fromkeys(wanted))
        facts = await self._facts_for_groups(user_id, set(group_of.values()))
        joined_now = await self._rooms_joined_now(user_id, {e.room_id for e in candidates})

        visible: list[Event] = []
        #: visible events the user did not see live (not joined when they were sent)
        not_joined_at: set[str] = set()
        for event in candidates:
            if event.event_id in always_include_ids:
                visible.append(event)
                continue
            group = group_of.get(event.event_id)
            if group is None:
                # No state at this event (an outlier): only one's own membership.
                if event.type == "m.room.member" and event.state_key == user_id:
                    visible.append(event)
                continue
            fact = facts[group]
            visibility = fact.visibility
            if event.event_id in prevs_of:
                before = [facts[group_of[p]].visibility for p in prevs_of[event.event_id]
                          if p in group_of]
                visibility = most_permissive([visibility, *before])
            if is_event_visible(user_id, event, visibility, fact.membership,
                                is_peeking=event.room_id not in joined_now):
                visible.append(event)
                if fact.membership != "join":
                    not_joined_at.add(event.event_id)
        return await self._erase(user_id, visible, not_joined_at)

    async def _erase(self, user_id: str, visible: list[Event], not_joined_at: set[str]
                     ) -> list[Event]:
        """Events of erased users (deactivated with `erase`), pruned for users who were
        not in the room when they were sent (Synapse's rule)."""
        senders = {e.sender for e in visible if e.event_id in not_joined_at
                   and e.sender != user_id}
        if not senders:
            return visible
        erased = await self._moderation.get_erased_users(senders)
        if not erased:
            return visible
        return [prune_event(e) if e.sender in erased and e.event_id in not_joined_at
                else e for e in visible]

    async def is_event_visible_to(self, user_id: str, event: Event) -> bool:
        return bool(await self.filter_events_for_client(user_id, [event]))

    async def room_state_access(self, user_id: str, room_id: str) -> RoomStateAccess | None:
        """The one rule for reading a room's state (/state, /members, /messages, the
        sync leave section): the current state for members; for a user who left or was
        banned (and has not forgotten the room), the state as it was when their last
        membership of `join` ended — nothing if they were never joined (a rejected
        invite, a withdrawn knock, a ban before joining); the current state in a
        `world_readable` room. None: the user may not read the room's state (also for
        unknown rooms)."""
        if await self._events.get_room_version(room_id) is None:
            return None
        current = await self._state.get_current_state_ids(room_id)
        keys = [("m.room.member", user_id), HISTORY_VISIBILITY_KEY]
        events = await self._events.get_events([current[k] for k in keys if k in current])
        member_id = current.get(keys[0])
        member = events.get(member_id) if member_id is not None else None
        membership = member.membership if member is not None else None
        if membership == "join":
            return RoomStateAccess(current, JOINED_NOW)
        if membership in ("leave", "ban") and await self._has_not_forgotten(user_id, room_id):
            departure = _end_of_last_join(
                await self._members.get_membership_history(user_id, room_id))
            if departure is not None:
                at_departure = await self._state.get_state_after_event(departure[0])
                if at_departure is not None:
                    return RoomStateAccess(at_departure, DEPARTED, departure[1])
        hv_id = current.get(HISTORY_VISIBILITY_KEY)
        hv = events.get(hv_id) if hv_id is not None else None
        if hv is not None and visibility_from_content(hv.content) == WORLD_READABLE:
            return RoomStateAccess(current, WORLD_READABLE)
        return None

    async def check_can_see_room_state(self, user_id: str,
                                       room_id: str) -> Mapping[StateKey, str]:
        """The room state `user_id` may read (`room_state_access`).

        Raises:
            MatrixError: 403 M_FORBIDDEN otherwise — also for unknown rooms, so that a
                room's existence does not leak (the spec lists only 403 here; as Synapse).
        """
        access = await self.room_state_access(user_id, room_id)
        if access is None:
            raise MatrixError(403, Codes.FORBIDDEN,
                              f"User {user_id} not in room {room_id}, and room previews"
                              " are disabled")
        return access.state

    async def is_joined_or_world_readable(self, user_id: str, room_id: str) -> bool:
        """Joined now, or the room is `world_readable` (GET /rooms/{roomId}/aliases)."""
        access = await self.room_state_access(user_id, room_id)
        if access is None:
            return False
        if access.reason != DEPARTED:
            return True
        return await self._is_world_readable_now(room_id)

    # -- internals --

    async def _facts_for_groups(self, user_id: str,
                                groups: Collection[int]) -> dict[int, _GroupFacts]:
        states = await self._state.get_state_for_groups(groups)
        member_key = ("m.room.member", user_id)
        needed = {state[k] for state in states.values()
                  for k in (HISTORY_VISIBILITY_KEY, member_key) if k in state}
        events = await self._events.get_events(needed)
        facts: dict[int, _GroupFacts] = {}
        for group, state in states.items():
            hv = events.get(state.get(HISTORY_VISIBILITY_KEY, ""))
            member = events.get(state.get(member_key, ""))
            facts[group] = _GroupFacts(
                visibility=visibility_from_content(hv.content if hv is not None else None),
                membership=member.membership if member is not None else None)
        return facts

    async def _rooms_joined_now(self, user_id: str, room_ids: Collection[str]) -> set[str]:
        """Which of these rooms the user is joined to now (from the cached current state)."""
        member_key = ("m.room.member", user_id)
        member_ids: dict[str, str] = {}
        for room_id in room_ids:
            current = await self._state.get_current_state_ids(room_id)
            if member_key in current:
                member_ids[room_id] = current[member_key]
        events = await self._events.get_events(member_ids.values())
        return {room_id for room_id, event_id in member_ids.items()
                if (ev := events.get(event_id)) is not None and ev.membership == "join"}

    async def _is_world_readable_now(self, room_id: str) -> bool:
        current = await self._state.get_current_state_ids(room_id)
        hv_id = current.get(HISTORY_VISIBILITY_KEY)
        hv = await self._events.get_event(hv_id) if hv_id is not None else None
        return hv is not None and visibility_from_content(hv.content) == WORLD_READABLE

    async def _has_not_forgotten(self, user_id: str, room_id: str) -> bool:
        departed = await self._members.get_rooms_for_local_user(
            user_id, ("leave", "ban"), include_forgotten=False)
        return any(r.room_id == room_id for r in departed)
