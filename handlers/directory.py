"""Room aliases, canonical-alias checks and the published room directory (`/publicRooms`).

Aliases live on this server only (`#name:our.server`); remote aliases are not resolved yet
(no federation). Permission rules follow Synapse: creating an alias needs membership (or
server admin); deleting one needs to be its creator, a server admin, or a member whose
power level allows `m.room.canonical_alias`; publishing a room needs the same power.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from handlers.event_creation import EventSpec
from handlers.event_serialize import EventRedactions
from homeserver.errors import Codes, MatrixError
from homeserver.event_auth import get_user_power_level
from homeserver.events import Event
from homeserver.identifiers import RoomAlias, RoomID, is_valid_server_name

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: spec: an alias in `m.room.canonical_alias` that does not point to the room
BAD_ALIAS = "M_BAD_ALIAS"

CANONICAL_ALIAS = "m.room.canonical_alias"
#: join rules that make a published room show up in the directory (as Synapse)
_LISTED_JOIN_RULES = ("public", "knock", "knock_restricted")


def send_level(power_levels: Mapping[str, Any] | None, event_type: str,
               is_state: bool) -> int:
    """The power level needed to send `event_type` (spec: `m.room.power_levels`).

    With no power-levels event, `state_default` and `events_default` are both 0.
    """
    if power_levels is None:
        return 0
    events = power_levels.get("events")
    if isinstance(events, Mapping) and event_type in events:
        return _as_int(events[event_type], 0)
    if is_state:
        return _as_int(power_levels.get("state_default"), 50)
    return _as_int(power_levels.get("events_default"), 0)


def _as_int(value: Any, default: int) -> int:
    """Power levels may be numeric strings in rooms before v10."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default


@attrs.frozen(slots=True)
class PublicRoomsQuery:
    """A `/publicRooms` request, GET or POST."""

    limit: int | None = None
    since: str | None = None
    server: str | None = None
    search_term: str | None = None
    #: None: any room type; otherwise the types wanted (None in it: rooms without one)
    room_types: tuple[str | None, ...] | None = None
    include_all_networks: bool = False
    third_party_instance_id: str | None = None


@attrs.frozen(slots=True)
class _PublicRoom:
    room_id: str
    num_joined_members: int
    #: the chunk entry, absent fields left out
    entry: dict[str, Any]
    room_type: str | None
    #: lower-cased name, topic and canonical alias, for the search term
    haystack: tuple[str, ...]

    @property
    def key(self) -> tuple[int, str]:
        return (self.num_joined_members, self.room_id)


class DirectoryHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._server_name = hs.hostname
        stores = hs.get_datastores()
        self._rooms = stores.rooms
        self._events = stores.events
        self._state = stores.state
        self._members = stores.room_members
        self._auth = hs.get_auth_handler()
        self._creation = hs.get_event_creation_handler()
        self._visibility = hs.get_visibility_handler()
        self._redactions = EventRedactions(self._events)

    # -- aliases --

    # PUT /_matrix/client/v3/directory/room/{roomAlias}
    async def create_alias(self, user_id: str, alias: str, room_id: str) -> None:
        """Point a new local alias at a room.

        Raises:
            MatrixError: 400 M_INVALID_PARAM (bad or non-local alias, bad room ID),
                404 M_NOT_FOUND (unknown room), 403 M_FORBIDDEN (not in the room),
                409 M_UNKNOWN (alias taken; the spec's code).
        """
        parsed = RoomAlias.parse(alias)
        if parsed.domain != self._server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Room alias must be local")
        RoomID.parse(room_id)
        if await self._rooms.get_room(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room does not exist")
        if not await self._auth.is_server_admin(user_id) \
                and not await self._is_joined(user_id, room_id):
            raise MatrixError(403, Codes.FORBIDDEN,
                              "You must be in the room to create an alias for it")
        if not await self._rooms.create_alias(alias, room_id, user_id):
            raise MatrixError(409, Codes.UNKNOWN, f"Room alias {alias} already exists")

    # GET /_matrix/client/v3/directory/room/{roomAlias}
    async def resolve_alias(self, alias: str) -> dict[str, Any]:
        """`{room_id, servers}` for an alias; our own server comes first in `servers`.

        Raises:
            MatrixError: 400 M_INVALID_PARAM, 404 M_NOT_FOUND (unknown or remote alias).
        """
        parsed = RoomAlias.parse(alias)
        if parsed.domain != self._server_name:
            return await self._resolve_remote_alias(alias, parsed.domain)
        mapping = await self._rooms.get_alias(alias)
        if mapping is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {alias} not found")
        room_id = mapping[0]
        joined = await self._members.get_users_in_room(room_id)
        others = sorted({u.rsplit(":", 1)[-1] for u in joined} - {self._server_name})
        return {"room_id": room_id, "servers": [self._server_name, *others]}

    async def _resolve_remote_alias(self, alias: str, server: str) -> dict[str, Any]:
        """Ask the alias's server (federation `query/directory`)."""
        from federation.client import FederationRequestError

        try:
            answer = await self._hs.get_federation_client().get_json(
                server, "/_matrix/federation/v1/query/directory", {"room_alias": alias},
                timeout=15)
        except FederationRequestError as e:
            if e.code == 404:
                raise MatrixError(404, Codes.NOT_FOUND,
                                  f"Room alias {alias} not found") from None
            raise MatrixError(502, Codes.UNKNOWN, f"Could not ask {server} about {alias}") \
                from None
        room_id, servers = (answer.get("room_id"), answer.get("servers")) \
            if isinstance(answer, dict) else (None, None)
        if not isinstance(room_id, str) or not isinstance(servers, list) \
                or not all(isinstance(x, str) for x in servers):
            raise MatrixError(502, Codes.UNKNOWN, f"Bad directory answer from {server}")
        return {"room_id": room_id, "servers": servers}

    # DELETE /_matrix/client/v3/directory/room/{roomAlias}
    async def delete_alias(self, user_id: str, alias: str) -> None:
        """Remove an alias; also drop it from the room's `m.room.canonical_alias` when
        the user may send that (the spec recommends deleting the alias regardless).

        Raises:
            MatrixError: 400 M_INVALID_PARAM, 404 M_NOT_FOUND, 403 M_FORBIDDEN.
        """
        parsed = RoomAlias.parse(alias)
        mapping = await self._rooms.get_alias(alias) \
            if parsed.domain == self._server_name else None
        if mapping is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {alias} not found")
        room_id, creator = mapping
        if creator != user_id and not await self._can_edit_room_directory(user_id, room_id):
            raise MatrixError(403, Codes.FORBIDDEN,
                              "You don't have permission to delete the alias")
        if not await self._rooms.delete_alias(alias):
            raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {alias} not found")
        await self._remove_from_canonical_alias(user_id, room_id, alias)

    async def _remove_from_canonical_alias(self, user_id: str, room_id: str,
                                           alias: str) -> None:
        event = await self._current_state_event(room_id, CANONICAL_ALIAS)
        if event is None:
            return
        content = dict(event.content)
        changed = False
        if content.get("alias") == alias:
            del content["alias"]
            changed = True
        alt = content.get("alt_aliases")
        if isinstance(alt, list) and alias in alt:
            changed = True
            remaining = [a for a in alt if a != alias]
            if remaining:
                content["alt_aliases"] = remaining
            else:
                del content["alt_aliases"]
        if not changed:
            return
        try:
            await self._creation.send(EventSpec(room_id=room_id, type=CANONICAL_ALIAS,
                                                sender=user_id, content=content,
                                                state_key=""))
        except MatrixError as e:
            # Server admins and alias creators may lack the power: the alias is gone anyway.
            logger.info("Could not update %s in %s: %s", CANONICAL_ALIAS, room_id, e)

    # GET /_matrix/client/v3/rooms/{roomId}/aliases
    async def get_local_aliases(self, user_id: str, room_id: str) -> list[str]:
        """The local aliases of a room: for its joined members, anyone when the room is
        `world_readable` (spec), and server admins (as Synapse) — not for those who left.

        Raises:
            MatrixError: 400 M_INVALID_PARAM (bad room ID), 403 M_FORBIDDEN.
        """
        RoomID.parse(room_id)
        if not await self._visibility.is_joined_or_world_readable(user_id, room_id) \
                and not await self._auth.is_server_admin(user_id):
            raise MatrixError(403, Codes.FORBIDDEN, f"User {user_id} not in room {room_id}")
        return await self._rooms.get_aliases_for_room(room_id)

    async def check_canonical_alias(self, room_id: str, content: Mapping[str, Any]) -> None:
        """Check a new `m.room.canonical_alias` content before it is sent.

        Aliases already in the current event are not checked again (spec). New ones must
        be valid aliases; local ones must exist and point to this room.

        Raises:
            MatrixError: 400 M_INVALID_PARAM (bad syntax), 400 M_BAD_ALIAS (an alias that
                does not point to this room).
        """
        alias = content.get("alias")
        alt = content.get("alt_aliases", [])
        if alias is not None and not isinstance(alias, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "'alias' must be a string")
        if not isinstance(alt, list) or not all(isinstance(a, str) for a in alt):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "'alt_aliases' must be a list of strings")
        current = await self._current_state_event(room_id, CANONICAL_ALIAS)
        old_alias = current.content.get("alias") if current is not None else None
        old_alt = current.content.get("alt_aliases") if current is not None else None
        if not isinstance(old_alt, list):
            old_alt = []
        new = [a for a in alt if a not in old_alt]
        if alias and alias != old_alias:
            new.insert(0, alias)
        for candidate in new:
            if not RoomAlias.is_valid(candidate):
                raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid alias: {candidate!r}")
            if RoomAlias.parse(candidate).domain != self._server_name:
                continue  # remote aliases cannot be resolved without federation
            mapping = await self._rooms.get_alias(candidate)
            if mapping is None or mapping[0] != room_id:
                raise MatrixError(400, BAD_ALIAS,
                                  f"The alias '{candidate}' does not point to this room.")

    # -- the published room directory --

    # GET /_matrix/client/v3/directory/list/room/{roomId}
    async def get_room_visibility(self, room_id: str) -> str:
        room = await self._rooms.get_room(room_id)
        if room is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room not found")
        return "public" if room.is_public else "private"

    # PUT /_matrix/client/v3/directory/list/room/{roomId}
    async def set_room_visibility(self, user_id: str, room_id: str, visibility: str) -> None:
        """Publish or unpublish a room.

        Raises:
            MatrixError: 400 M_INVALID_PARAM, 404 M_NOT_FOUND, 403 M_FORBIDDEN.
        """
        if visibility not in ("public", "private"):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "visibility must be 'public' or 'private'")
        if await self._rooms.get_room(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room not found")
        if not await self._can_edit_room_directory(user_id, room_id):
            raise MatrixError(403, Codes.FORBIDDEN,
                              "You need the power to change the room's canonical alias"
                              " to edit its room list entry")
        await self._rooms.set_room_is_public(room_id, visibility == "public")

    # GET/POST /_matrix/client/v3/publicRooms
    async def get_public_rooms(self, query: PublicRoomsQuery) -> dict[str, Any]:
        """One page of the published rooms, largest first (then by room ID, descending,
        as Synapse), with opaque `next_batch`/`prev_batch` tokens.

        Raises:
            MatrixError: 400 M_INVALID_PARAM (bad server, token or network options),
                404 M_NOT_FOUND (another server's directory: not supported yet).
        """
        if query.server is not None and query.server != self._server_name:
            if not is_valid_server_name(query.server):
                raise MatrixError(400, Codes.INVALID_PARAM, "Invalid server name")
            return await self._remote_public_rooms(query)
        if query.include_all_networks and query.third_party_instance_id is not None:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "Can't use include_all_networks with an explicit network")
        bound = _decode_token(query.since) if query.since else None
        if query.third_party_instance_id is not None:
            # No application services bridge networks here: every network list is empty.
            return {"chunk": [], "total_room_count_estimate": 0}

        rooms = [r for r in await self._published_rooms() if _matches(r, query)]
        rooms.sort(key=lambda r: r.key, reverse=True)
        total = len(rooms)
        forwards = True
        if bound is not None:
            forwards, key = bound
            rooms = [r for r in rooms if (r.key < key if forwards else r.key > key)]
        limit = query.limit or None
        more = limit is not None and len(rooms) > limit
        if limit is not None:
            rooms = rooms[:limit] if forwards else rooms[-limit:]

        response: dict[str, Any] = {"chunk": [r.entry for r in rooms],
                                    "total_room_count_estimate": total}
        if rooms:
            first, last = rooms[0], rooms[-1]
            has_next = more if forwards else bound is not None
            has_prev = bound is not None if forwards else more
            if has_next:
                response["next_batch"] = _encode_token(True, last.key)
            if has_prev:
                response["prev_batch"] = _encode_token(False, first.key)
        return response

    async def _remote_public_rooms(self, query: PublicRoomsQuery) -> dict[str, Any]:
        """Another server's directory, through its federation `/publicRooms`."""
        from federation.client import FederationRequestError

        assert query.server is not None
        body: dict[str, Any] = {"include_all_networks": query.include_all_networks}
        if query.limit:
            body["limit"] = query.limit
        if query.since:
            body["since"] = query.since
        if query.search_term:
            body["filter"] = {"generic_search_term": query.search_term}
        if query.room_types is not None:
            body.setdefault("filter", {})["room_types"] = list(query.room_types)
        if query.third_party_instance_id is not None:
            body["third_party_instance_id"] = query.third_party_instance_id
        try:
            answer = await self._hs.get_federation_client().post_json(
                query.server, "/_matrix/federation/v1/publicRooms", body, timeout=20)
        except FederationRequestError as e:
            raise MatrixError(502, Codes.UNKNOWN,
                              f"Could not get the room directory of {query.server}") from e
        if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
            raise MatrixError(502, Codes.UNKNOWN, f"Bad room directory from {query.server}")
        return answer

    async def _published_rooms(self) -> list[_PublicRoom]:
        """Every published room that may be listed: joined members and a public, knock
        or world-readable room (as Synapse), with its entry built from current state."""
        out: list[_PublicRoom] = []
        for room_id in await self._rooms.get_public_room_ids():
            room = await self._public_room(room_id)
            if room is not None:
                out.append(room)
        return out

    async def _public_room(self, room_id: str) -> _PublicRoom | None:
        current = await self._state.get_current_state_ids(room_id)
        wanted = ("m.room.create", "m.room.name", "m.room.topic", CANONICAL_ALIAS,
                  "m.room.avatar", "m.room.join_rules", "m.room.history_visibility",
                  "m.room.guest_access")
        ids = {t: current[(t, "")] for t in wanted if (t, "") in current}
        events = await self._redactions.get_events(ids.values())
        content = {t: events[e].content for t, e in ids.items() if e in events}

        def field(event_type: str, key: str) -> Any:
            value = content.get(event_type, {}).get(key)
            return value if isinstance(value, str) else None

        joined = (await self._members.get_member_counts(room_id)).get("join", 0)
        join_rule = field("m.room.join_rules", "join_rule")
        world_readable = field("m.room.history_visibility",
                               "history_visibility") == "world_readable"
        if joined <= 0 or not (join_rule in _LISTED_JOIN_RULES or world_readable):
            return None
        name = field("m.room.name", "name")
        topic = _plain_topic(content.get("m.room.topic"))
        alias = field(CANONICAL_ALIAS, "alias")
        room_type = field("m.room.create", "type")
        entry: dict[str, Any] = {
            "room_id": room_id, "name": name, "topic": topic, "canonical_alias": alias,
            "num_joined_members": joined, "world_readable": world_readable,
            "guest_can_join": field("m.room.guest_access", "guest_access") == "can_join",
            "avatar_url": field("m.room.avatar", "url"), "join_rule": join_rule,
            "room_type": room_type,
        }
        return _PublicRoom(
            room_id=room_id, num_joined_members=joined,
            entry={k: v for k, v in entry.items() if v is not None}, room_type=room_type,
            haystack=tuple(s.casefold() for s in (name, topic, alias) if s))

    # -- permissions --

    async def _is_joined(self, user_id: str, room_id: str) -> bool:
        membership = await self._members.get_local_membership(user_id, room_id)
        return membership is not None and membership.membership == "join"

    async def _can_edit_room_directory(self, user_id: str, room_id: str) -> bool:
        """Server admins, and members with the power to send `m.room.canonical_alias`."""
        if await self._auth.is_server_admin(user_id):
            return True
        if not await self._is_joined(user_id, room_id):
            return False
        current = await self._state.get_current_state_ids(room_id)
        keys = [("m.room.create", ""), ("m.room.power_levels", "")]
        events = await self._events.get_events([current[k] for k in keys if k in current])
        auth_events = {e.state_pair(): e for e in events.values()}
        power = auth_events.get(("m.room.power_levels", ""))
        needed = send_level(power.content if power is not None else None, CANONICAL_ALIAS,
                            is_state=True)
        return get_user_power_level(user_id, auth_events) >= needed

    async def _current_state_event(self, room_id: str, event_type: str,
                                   state_key: str = "") -> Event | None:
        current = await self._state.get_current_state_ids(room_id)
        event_id = current.get((event_type, state_key))
        if event_id is None:
            return None
        # As clients see it: a redacted canonical alias is not rewritten back to life.
        return (await self._redactions.get_events([event_id])).get(event_id)


def _plain_topic(content: Mapping[str, Any] | None) -> str | None:
    """The plain-text topic: the `text/plain` body of `m.topic` if given, else `topic`."""
    if content is None:
        return None
    blocks = content.get("m.topic")
    if isinstance(blocks, Mapping):
        blocks = blocks.get("m.text")
    if isinstance(blocks, list):
        for block in blocks:
            if isinstance(block, Mapping) and block.get("mimetype", "text/plain") \
                    == "text/plain" and isinstance(block.get("body"), str):
                return str(block["body"])
    topic = content.get("topic")
    return topic if isinstance(topic, str) else None


def _matches(room: _PublicRoom, query: PublicRoomsQuery) -> bool:
    if query.search_term:
        term = query.search_term.casefold()
        if not any(term in s for s in room.haystack):
            return False
    return query.room_types is None or room.room_type in query.room_types


def _encode_token(forwards: bool, key: tuple[int, str]) -> str:
    raw = f"{'n' if forwards else 'p'}{key[0]}|{key[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_token(token: str) -> tuple[bool, tuple[int, str]]:
    """(forwards, (joined members, room ID)) from a `since` token."""
    bad = MatrixError(400, Codes.INVALID_PARAM, "Invalid 'since' token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError):
        raise bad from None
    direction, rest = raw[:1], raw[1:]
    count, sep, room_id = rest.partition("|")
    if direction not in ("n", "p") or not sep or not count.isdigit() or not room_id:
        raise bad
    return direction == "n", (int(count), room_id)

