"""Space hierarchies: the rooms below a space, through its `m.space.child` state events.

Spec: client-server API "Spaces" (`GET /_matrix/client/v1/rooms/{roomId}/hierarchy`) and the
server-server `GET /_matrix/federation/v1/hierarchy/{roomId}`, and `/room_summary`. The
client walk asks the servers in a child's `via` about children we are not in (their answer
also summarises the grandchildren); the federation answer omits rooms we are not in.

Who may see a room (Synapse's rules): anyone, if its join rule is `public`, `knock` or
`knock_restricted` or its history is `world_readable`; a user joined to or invited to it; a
server with a joined member in it; for a `restricted` room, a user (server) joined to (with
a member in) one of the rooms its join rule allows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from federation.hierarchy_client import RemoteHierarchyClient, RemoteRoomSummary
from handlers.event_serialize import EventRedactions
from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.events import Event
    from homeserver.server import HomeServer

#: rooms per page (the default and the most a client may ask for), as Synapse
MAX_ROOMS_PER_PAGE = 50
#: how deep the client walk goes by default and at most
MAX_DEPTH = 10
#: longest `order` of an `m.space.child` that counts (spec: at most 50 characters)
MAX_ORDER_LEN = 50

_PEEKABLE_JOIN_RULES = ("public", "knock", "knock_restricted")
_RESTRICTED_JOIN_RULES = ("restricted", "knock_restricted")
_SUMMARY_STATE = ("m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias",
                  "m.room.avatar", "m.room.join_rules", "m.room.history_visibility",
                  "m.room.guest_access", "m.room.encryption")


@attrs.frozen(slots=True)
class _Room:
    """What the walk knows of one local room."""

    summary: dict[str, Any]
    children_state: list[dict[str, Any]]
    join_rule: str | None
    world_readable: bool
    allowed_room_ids: list[str]

    def entry(self) -> dict[str, Any]:
        return {**self.summary, "children_state": self.children_state}


@attrs.frozen(slots=True)
class _PageToken:
    """Where a paginated client walk stopped: the walk's parameters and how many rooms
    were already returned (the walk is re-run and that many skipped)."""

    room_id: str
    suggested_only: bool
    max_depth: int
    skip: int

    def encode(self) -> str:
        raw = json.dumps([self.room_id, self.suggested_only, self.max_depth, self.skip])
        return base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")

    @staticmethod
    def decode(token: str) -> _PageToken:
        bad = MatrixError(400, Codes.INVALID_PARAM, "Unknown pagination token")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            room_id, suggested_only, max_depth, skip = json.loads(raw)
        except (binascii.Error, ValueError, TypeError):
            raise bad from None
        if not (isinstance(room_id, str) and isinstance(suggested_only, bool)
                and isinstance(max_depth, int) and isinstance(skip, int) and skip >= 0):
            raise bad
        return _PageToken(room_id, suggested_only, max_depth, skip)


def _valid_order(content: Mapping[str, Any]) -> str | None:
    order = content.get("order")
    if isinstance(order, str) and len(order) <= MAX_ORDER_LEN \
            and all(0x20 <= ord(c) <= 0x7E for c in order):
        return order
    return None


def _child_sort_key(event: Event) -> tuple[int, str, int, str]:
    """Spec order of a space's children: by `order` (children without one last), then by
    the child event's `origin_server_ts`, then by room ID."""
    order = _valid_order(event.content)
    return (0 if order is not None else 1, order or "", event.origin_server_ts,
            event.state_key or "")


def _is_suggested(child: Mapping[str, Any]) -> bool:
    return child.get("content", {}).get("suggested") is True


class SpaceHierarchyHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._state = stores.state
        self._events = stores.events
        self._members = stores.room_members
        self._is_mine_id = hs.is_mine_id
        self._redactions = EventRedactions(self._events)
        self._remote = RemoteHierarchyClient(hs)

    # GET /_matrix/client/v1/rooms/{roomId}/hierarchy
    async def get_room_hierarchy(self, requester_id: str, room_id: str,
                                 suggested_only: bool = False, max_depth: int | None = None,
                                 limit: int | None = None, from_token: str | None = None
                                 ) -> dict[str, Any]:
        """One page of the space tree below `room_id`, depth first, each room once.

        Children the requester may not see, and rooms this server is not in, are left
        out (with their own children).

        Raises:
            MatrixError: 403 M_FORBIDDEN if the requester may not see the room (or it is
                unknown); 400 M_INVALID_PARAM for a bad `limit`, `max_depth` or `from`, or
                a `from` token of another walk (other room, `suggested_only` or
                `max_depth`).
        """
        if limit is not None and limit < 1:
            raise MatrixError(400, Codes.INVALID_PARAM, "limit must be greater than zero")
        if max_depth is not None and max_depth < 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "max_depth must not be negative")
        limit = min(limit or MAX_ROOMS_PER_PAGE, MAX_ROOMS_PER_PAGE)
        depth_cap = MAX_DEPTH if max_depth is None else min(max_depth, MAX_DEPTH)
        skip = 0
        if from_token is not None:
            token = _PageToken.decode(from_token)
            if (token.room_id, token.suggested_only, token.max_depth) != \
                    (room_id, suggested_only, depth_cap):
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  "suggested_only and max_depth cannot change on paginated"
                                  " requests")
            skip = token.skip

        root = await self._summarize(room_id, suggested_only)
        if root is None or not await self._user_may_see(requester_id, root, room_id):
            raise MatrixError(403, Codes.FORBIDDEN, "You are not allowed to view this room.")

        rooms: list[dict[str, Any]] = []
        seen = 0
        processed: set[str] = set()
        # Rooms we are not in: what their servers said (None: inaccessible or no answer),
        # and the `via` of the links to them.
        remote: dict[str, _Room | None] = {}
        vias: dict[str, list[str]] = {}
        stack: list[tuple[str, int]] = [(room_id, 0)]
        while stack and len(rooms) < limit:
            current_id, depth = stack.pop()
            if current_id in processed:
                continue
            processed.add(current_id)
            room = root if current_id == room_id else \
                await self._summarize(current_id, suggested_only)
            if room is None:
                room = await self._remote_room(current_id, vias.get(current_id, []),
                                               suggested_only, remote)
            if room is None or not await self._user_may_see(requester_id, room, current_id):
                continue
            if seen >= skip:
                rooms.append(room.entry())
            seen += 1
            for child in room.children_state:
                via = child["content"].get("via")
                if isinstance(via, list):
                    vias.setdefault(child["state_key"],
                                    [v for v in via if isinstance(v, str)])
            if depth < depth_cap:
                stack.extend((c["state_key"], depth + 1)
                             for c in reversed(room.children_state)
                             if c["state_key"] not in processed)
        body: dict[str, Any] = {"rooms": rooms}
        if any(r not in processed for r, _ in stack):
            body["next_batch"] = _PageToken(room_id, suggested_only, depth_cap,
                                            skip + len(rooms)).encode()
        return body

    # GET /_matrix/federation/v1/hierarchy/{roomId}
    async def get_federation_hierarchy(self, origin: str, room_id: str,
                                       suggested_only: bool = False) -> dict[str, Any]:
        """The room and its direct children for another server: children we are in and
        that `origin` may see in `children`, those it may not in `inaccessible_children`,
        those we are not in left out.

        Raises:
            MatrixError: 404 M_NOT_FOUND if we are not in the room or `origin` may not
                see it.
        """
        root = await self._summarize(room_id, suggested_only)
        if root is None or not await self._server_may_see(origin, root, room_id):
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        children: list[dict[str, Any]] = []
        inaccessible: list[str] = []
        for child in root.children_state:
            child_id = child["state_key"]
            room = await self._summarize(child_id, suggested_only)
            if room is None:
                continue
            if await self._server_may_see(origin, room, child_id):
                children.append(room.entry())
            else:
                inaccessible.append(child_id)
        return {"room": root.entry(), "children": children,
                "inaccessible_children": inaccessible}

    async def get_summary(self, user_id: str | None, room_id: str, via: Sequence[str]
                          ) -> dict[str, Any] | None:
        """The room's summary (no children) if `user_id` (None: unauthenticated) may see
        it: from our state, else from a server in `via`. None if unknown or hidden."""
        room = await self._summarize(room_id, False)
        if room is None:
            room = await self._remote_room(room_id, via, False, {})
        if room is None:
            return None
        if room.join_rule in _PEEKABLE_JOIN_RULES or room.world_readable:
            return dict(room.summary)
        if user_id is None:
            return None
        membership = await self._members.get_local_membership(user_id, room_id)
        if (membership is not None and membership.membership == "knock") \
                or await self._user_may_see(user_id, room, room_id):
            return dict(room.summary)
        return None

    async def _remote_room(self, room_id: str, via: Sequence[str], suggested_only: bool,
                           known: dict[str, _Room | None]) -> _Room | None:
        """A room we are not in, from the servers in `via` (or from `known`, filled with
        the children an earlier answer summarised)."""
        if room_id in known:
            return known[room_id]
        if not via:
            return None
        answer = await self._remote.fetch(room_id, via, suggested_only)
        if answer is None:
            known[room_id] = None
            return None
        for child in answer.valid_children():
            known.setdefault(child.room_id, _remote_to_room(child, suggested_only))
        for child_id in answer.inaccessible_children:
            known.setdefault(child_id, None)
        room = _remote_to_room(answer.room, suggested_only)
        known[room_id] = room
        return room

    # -- summaries --

    async def _summarize(self, room_id: str, suggested_only: bool) -> _Room | None:
        """The room's summary and `m.space.child` events, or None if we are not in it."""
        joined = await self._members.get_users_in_room(room_id)
        if not any(self._is_mine_id(u) for u in joined):
            return None
        current = await self._state.get_current_state_ids(room_id)
        wanted = {k: e for k, e in current.items()
                  if (k[0] in _SUMMARY_STATE and k[1] == "") or k[0] == "m.space.child"}
        events = await self._redactions.get_events(wanted.values())
        by_key = {k: events[e] for k, e in wanted.items() if e in events}

        def field(event_type: str, key: str) -> Any:
            event = by_key.get((event_type, ""))
            value = event.content.get(key) if event is not None else None
            return value if isinstance(value, str) else None

        join_rule = field("m.room.join_rules", "join_rule")
        world_readable = field("m.room.history_visibility",
                               "history_visibility") == "world_readable"
        allowed: list[str] = []
        rules = by_key.get(("m.room.join_rules", ""))
        if join_rule in _RESTRICTED_JOIN_RULES and rules is not None \
                and isinstance(rules.content.get("allow"), list):
            allowed = [a["room_id"] for a in rules.content["allow"]
                       if isinstance(a, Mapping) and a.get("type") == "m.room_membership"
                       and isinstance(a.get("room_id"), str)]
        topic_event = by_key.get(("m.room.topic", ""))
        room_version = await self._events.get_room_version(room_id)
        summary: dict[str, Any] = {
            "room_id": room_id, "num_joined_members": len(joined),
            "world_readable": world_readable,
            "guest_can_join": field("m.room.guest_access", "guest_access") == "can_join",
            "join_rule": join_rule, "name": field("m.room.name", "name"),
            "topic": _plain_topic(topic_event.content) if topic_event else None,
            "canonical_alias": field("m.room.canonical_alias", "alias"),
            "avatar_url": field("m.room.avatar", "url"),
            "room_type": field("m.room.create", "type"),
            "encryption": field("m.room.encryption", "algorithm"),
            "room_version": room_version.identifier if room_version else None,
            "allowed_room_ids": allowed or None,
        }
        children = sorted((e for k, e in by_key.items()
                           if k[0] == "m.space.child" and _has_via(e)), key=_child_sort_key)
        children_state = [{"type": e.type, "state_key": e.state_key, "content": e.content,
                           "sender": e.sender, "origin_server_ts": e.origin_server_ts}
                          for e in children]
        if suggested_only:
            children_state = [c for c in children_state if _is_suggested(c)]
        return _Room({k: v for k, v in summary.items() if v is not None}, children_state,
                     join_rule, world_readable, allowed)

    # -- who may see a room --

    async def _user_may_see(self, user_id: str, room: _Room, room_id: str) -> bool:
        if room.join_rule in _PEEKABLE_JOIN_RULES or room.world_readable:
            return True
        membership = await self._members.get_local_membership(user_id, room_id)
        if membership is not None and membership.membership in ("join", "invite"):
            return True
        for allowed_id in room.allowed_room_ids:
            allowed = await self._members.get_local_membership(user_id, allowed_id)
            if allowed is not None and allowed.membership == "join":
                return True
        return False

    async def _server_may_see(self, origin: str, room: _Room, room_id: str) -> bool:
        if room.join_rule in _PEEKABLE_JOIN_RULES or room.world_readable:
            return True
        if await self._server_in_room(origin, room_id):
            return True
        for allowed_id in room.allowed_room_ids:
            if await self._server_in_room(origin, allowed_id):
                return True
        return False

    async def _server_in_room(self, server_name: str, room_id: str) -> bool:
        suffix = ":" + server_name
        return any(u.endswith(suffix) for u in await self._members.get_users_in_room(room_id))


def _remote_to_room(remote: RemoteRoomSummary, suggested_only: bool) -> _Room:
    children = [c.model_dump() for c in remote.children_state
                if c.type == "m.space.child" and c.state_key.startswith("!")
                and isinstance(c.content.get("via"), list) and c.content["via"]]
    if suggested_only:
        children = [c for c in children if _is_suggested(c)]
    return _Room(remote.summary(), children, remote.join_rule, remote.world_readable,
                 list(remote.allowed_room_ids))


def _has_via(event: Event) -> bool:
    """A child link counts only with a non-empty `via` (an empty content removes it) and
    a room ID as state key."""
    via = event.content.get("via")
    return isinstance(via, list) and len(via) > 0 and (event.state_key or "").startswith("!")


def _plain_topic(content: Mapping[str, Any]) -> str | None:
    topic = content.get("topic")
    return topic if isinstance(topic, str) else None
