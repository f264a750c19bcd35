"""What another server may read of a room: server ACLs, residency, history visibility.

A server may read a room only if the room's `m.room.server_acl` lets it in and one of its
users is joined now (Synapse's "host in room"; 403 M_FORBIDDEN otherwise, the spec's code
for both). Event by event, history visibility is applied to the server as a whole, with
the room state at the event: `world_readable` and `shared` history is open to a resident
server; `invited` and `joined` history only if one of its users was joined (or, for
`invited`, invited) at the event. Events a server may not see are sent redacted, as
Synapse does, so that the DAG it receives stays connected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from handlers.visibility import (
    HISTORY_VISIBILITY_KEY,
    INVITED,
    SHARED,
    WORLD_READABLE,
    most_permissive,
    visibility_from_content,
)
from homeserver.errors import Codes, MatrixError
from homeserver.events import Event
from homeserver.redaction import prune_event
from homeserver.room_versions import RoomVersion
from homeserver.server_acl import ACL_EVENT_TYPE, is_server_allowed

if TYPE_CHECKING:
    from homeserver.server import HomeServer

StateKey = tuple[str, str]


def server_of(user_id: str) -> str:
    """The server name of a user ID (`@a:b.org:8448` → `b.org:8448`)."""
    return user_id.split(":", 1)[1] if ":" in user_id else ""


def is_visible_to_server(visibility: str, memberships: Iterable[str]) -> bool:
    """One event for one server: `memberships` are those of the server's users in the
    state at the event; the server is known to be resident in the room now."""
    if visibility in (WORLD_READABLE, SHARED):
        return True
    found = set(memberships)
    return "join" in found or (visibility == INVITED and "invite" in found)


class ServerVisibility:
    """Built once by the container (`hs.get_server_visibility()`)."""

    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._events = stores.events
        self._state = stores.state
        self._members = stores.room_members

    async def check_server_acl(self, origin: str, room_id: str) -> None:
        """Raise 403 M_FORBIDDEN if the room's current server ACL denies `origin`."""
        current = await self._state.get_current_state_ids(room_id)
        acl_id = current.get((ACL_EVENT_TYPE, ""))
        acl = await self._events.get_event(acl_id) if acl_id is not None else None
        if acl is not None and not is_server_allowed(origin, acl.content):
            raise MatrixError(403, Codes.FORBIDDEN, f"Server {origin} is banned from the room"
                                                    " by its server ACL")

    async def check_room_access(self, origin: str, room_id: str) -> RoomVersion:
        """The room's version, if `origin` may read the room at all.

        Raises:
            MatrixError: 404 M_NOT_FOUND for a room we do not know; 403 M_FORBIDDEN when
                the server ACL denies `origin` or none of its users is joined.
        """
        version = await self._events.get_room_version(room_id)
        if version is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Unknown room {room_id}")
        await self.check_server_acl(origin, room_id)
        joined = await self._members.get_users_in_room(room_id)
        if not any(server_of(u) == origin for u in joined):
            raise MatrixError(403, Codes.FORBIDDEN, f"Server {origin} is not in room {room_id}")
        return version

    async def visible_event_ids(self, origin: str, events: Sequence[Event]) -> set[str]:
        """The IDs of the events whose history visibility lets `origin` see them in full.

        Events without stored state (outliers) count as `shared` with no members, as in
        Synapse. State lookups are batched: one for the groups, one for the snapshots.
        """
        prevs_of = {e.event_id: e.prev_event_ids for e in events
                    if (e.type, e.state_key) == HISTORY_VISIBILITY_KEY}
        wanted = [e.event_id for e in events]
        wanted.extend(p for prevs in prevs_of.values() for p in prevs)
        group_of = await self._state.get_state_groups_for_events(dict.fromkeys(wanted))
        states = await self._state.get_state_for_groups(set(group_of.values()))
        facts = await self._facts(origin, states)
        visible: set[str] = set()
        for event in events:
            group = group_of.get(event.event_id)
            visibility, memberships = facts.get(group, (SHARED, ())) if group is not None \
                else (SHARED, ())
            if event.event_id in prevs_of:
                # The spec lets the more permissive of before and after apply.
                before = [facts[group_of[p]][0] for p in prevs_of[event.event_id]
                          if p in group_of]
                visibility = most_permissive([visibility, *before])
            if is_visible_to_server(visibility, memberships):
                visible.add(event.event_id)
        return visible

    async def filter_events_for_server(self, origin: str,
                                       events: Sequence[Event]) -> list[Event]:
        """The events in order, those `origin` may not see redacted."""
        visible = await self.visible_event_ids(origin, events)
        return [e if e.event_id in visible else prune_event(e) for e in events]

    async def _facts(self, origin: str, states: Mapping[int, Mapping[StateKey, str]]
                     ) -> dict[int, tuple[str, tuple[str, ...]]]:
        """Per state group: the history visibility and the memberships of `origin`'s users."""
        keys_of: dict[int, list[str]] = {}
        needed: set[str] = set()
        for group, state in states.items():
            ids = [event_id for (typ, key), event_id in state.items()
                   if typ == "m.room.member" and server_of(key) == origin]
            if HISTORY_VISIBILITY_KEY in state:
                ids.append(state[HISTORY_VISIBILITY_KEY])
            keys_of[group] = ids
            needed.update(ids)
        loaded = await self._events.get_events(needed)
        facts: dict[int, tuple[str, tuple[str, ...]]] = {}
        for group, ids in keys_of.items():
            hv = None
            memberships: list[str] = []
            for event_id in ids:
                ev = loaded.get(event_id)
                if ev is None:
                    continue
                if (ev.type, ev.state_key) == HISTORY_VISIBILITY_KEY:
                    hv = ev
                elif ev.membership is not None:
                    memberships.append(ev.membership)
            facts[group] = (visibility_from_content(hv.content if hv else None),
                            tuple(memberships))
        return facts
