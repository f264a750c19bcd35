"""Room upgrades (`POST /rooms/{roomId}/upgrade`), in the spec's order: check the right to
send `m.room.tombstone`, create the replacement room with `predecessor` and the copied state,
carry bans over, tombstone the old room, move local aliases and the directory entry, then
restrict the old room and restore the copied power levels in the new one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from handlers.directory import send_level
from handlers.event_creation import EventSpec
from handlers.event_serialize import EventRedactions
from handlers.room import CreateRoomRequest
from homeserver.async_utils import Linearizer
from homeserver.errors import Codes, MatrixError
from homeserver.event_auth import get_user_power_level
from homeserver.events import Event
from homeserver.identifiers import RoomAlias, UserID
from homeserver.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

CREATE = ("m.room.create", "")
POWER_LEVELS = ("m.room.power_levels", "")
CANONICAL_ALIAS = ("m.room.canonical_alias", "")
#: the state Synapse carries over (the spec's recommended list)
COPIED_STATE = ("m.room.join_rules", "m.room.name", "m.room.topic",
                "m.room.history_visibility", "m.room.guest_access", "m.room.avatar",
                "m.room.encryption", "m.room.server_acl", "m.room.power_levels")
#: integer-valued fields of `m.room.power_levels`
_PL_INTS = ("ban", "kick", "redact", "invite", "events_default", "state_default",
            "users_default")
_PL_MAPS = ("events", "users", "notifications")
#: what a creator of a v12+ room gets when the room is upgraded to a version without
#: privileged creators (their power was unlimited; 100 is the conventional top)
FORMER_CREATOR_LEVEL = 100


def fixup_power_levels(content: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of power-levels content with numeric strings turned into integers and
    unusable values dropped, so that it is valid in any room version (v10+ is strict)."""
    out: dict[str, Any] = {k: v for k, v in content.items()
                           if k not in _PL_INTS and k not in _PL_MAPS}
    for key in _PL_INTS:
        if key in content and (value := _int_or_none(content[key])) is not None:
            out[key] = value
    for key in _PL_MAPS:
        value = content.get(key)
        if isinstance(value, Mapping):
            out[key] = {k: v for k, raw in value.items()
                        if (v := _int_or_none(raw)) is not None}
    return out


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


class RoomUpgradeHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        stores = hs.get_datastores()
        self._rooms = stores.rooms
        self._events = stores.events
        self._state = stores.state
        self._redactions = EventRedactions(self._events)
        self._members = stores.room_members
        self._creation = hs.get_event_creation_handler()
        self._room_creation = hs.get_room_creation_handler()
        self._linearizer = Linearizer()

    # POST /_matrix/client/v3/rooms/{roomId}/upgrade
    async def upgrade_room(self, user_id: str, room_id: str, new_version: str,
                           additional_creators: Sequence[str] | None = None) -> str:
        """Replace a room with a new one of `new_version`; returns the new room's ID.

        `additional_creators` only applies when the new version has privileged
        creators; the old room's additional creators are not carried over (spec).

        Raises:
            MatrixError: 400 M_UNSUPPORTED_ROOM_VERSION, 400 M_INVALID_PARAM (bad
                additional creator), 404 M_NOT_FOUND (unknown room), 403 M_FORBIDDEN
                (not joined, or not allowed to send `m.room.tombstone`).
        """
        version = KNOWN_ROOM_VERSIONS.get(new_version)
        if version is None:
            raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION,
                              f"Room version {new_version!r} is not supported")
        creators: list[str] = []
        if version.privileged_creators:
            for creator in additional_creators or ():
                UserID.parse(creator)  # 400 M_INVALID_PARAM
                if creator != user_id and creator not in creators:
                    creators.append(creator)
        room = await self._rooms.get_room(room_id)
        if room is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Unknown room {room_id}")
        # One upgrade of a room at a time: a second one waits and upgrades the result.
        async with self._linearizer.queue(room_id):
            old_state = await self._current_state(room_id)
            await self._check_can_tombstone(user_id, room_id, old_state)
            new_room_id = await self._create_replacement(user_id, room_id, version,
                                                         creators, old_state)
            await self._copy_bans(user_id, room_id, new_room_id)
            await self._creation.send(EventSpec(
                room_id=room_id, type="m.room.tombstone", sender=user_id, state_key="",
                content={"body": "This room has been replaced",
                         "replacement_room": new_room_id}))
            await self._move_aliases(user_id, room_id, new_room_id,
                                     old_state.get(CANONICAL_ALIAS))
            if room.is_public:
                await self._rooms.set_room_is_public(room_id, False)
                await self._rooms.set_room_is_public(new_room_id, True)
            power = old_state.get(POWER_LEVELS)
            if power is not None:
                await self._restrict_old_room(user_id, room_id, power.content)
                await self._restore_power_levels(user_id, new_room_id, version, creators,
                                                 old_state, power.content)
        return new_room_id

    async def _current_state(self, room_id: str) -> dict[tuple[str, str], Event]:
        """The current non-member state of a room, as events."""
        ids = await self._state.get_current_state_ids(room_id)
        # Copied as clients may see it: a redacted name or topic stays redacted.
        events = await self._redactions.get_events(
            [e for k, e in ids.items() if k[0] != "m.room.member"])
        return {k: events[e] for k, e in ids.items() if e in events}

    async def _check_can_tombstone(self, user_id: str, room_id: str,
                                   state: Mapping[tuple[str, str], Event]) -> None:
        """The spec's step 1, checked up front so that nothing is created in vain."""
        membership = await self._members.get_local_membership(user_id, room_id)
        if membership is None or membership.membership != "join":
            raise MatrixError(403, Codes.FORBIDDEN, f"User {user_id} not in room {room_id}")
        auth_events = {k: state[k] for k in (CREATE, POWER_LEVELS) if k in state}
        power = state.get(POWER_LEVELS)
        needed = send_level(power.content if power is not None else None,
                            "m.room.tombstone", is_state=True)
        if get_user_power_level(user_id, auth_events) < needed:
            raise MatrixError(403, Codes.FORBIDDEN, "You cannot upgrade this room")

    async def _create_replacement(self, user_id: str, old_room_id: str,
                                  version: RoomVersion, creators: list[str],
                                  old_state: Mapping[tuple[str, str], Event]) -> str:
        old_create = old_state[CREATE].content
        predecessor: dict[str, Any] = {"room_id": old_room_id}
        if not version.room_id_from_create_event:
            # Before v12 `predecessor.event_id` is required: the latest event so far
            # (the tombstone cannot exist yet, it names the new room).
            extremities = await self._events.get_forward_extremities(old_room_id)
            predecessor["event_id"] = max(extremities, key=lambda e: e[1])[0]
        creation: dict[str, Any] = {"predecessor": predecessor}
        if creators:
            creation["additional_creators"] = creators
        if old_create.get("m.federate") is False:
            creation["m.federate"] = False
        room_type = old_create.get("type")
        copied = list(COPIED_STATE)
        if isinstance(room_type, str):
            creation["type"] = room_type
            if room_type == "m.space":
                copied.append("m.space.child")
        initial: dict[tuple[str, str], dict[str, Any]] = {
            k: dict(e.content) for k, e in old_state.items()
            if k[0] in copied and (k[0] != "m.space.child" or e.content)}
        if POWER_LEVELS in initial:
            initial[POWER_LEVELS] = self._power_levels_for_cloning(
                user_id, initial[POWER_LEVELS], version, creators, old_state)
        return await self._room_creation.create_room(user_id, CreateRoomRequest(
            preset="private_chat", room_version=version.identifier,
            creation_content=creation,
            initial_state=tuple({"type": k[0], "state_key": k[1], "content": c}
                                for k, c in initial.items()),
        ))

    def _power_levels_for_cloning(self, user_id: str, content: Mapping[str, Any],
                                  version: RoomVersion, creators: list[str],
                                  old_state: Mapping[tuple[str, str], Event]
                                  ) -> dict[str, Any]:
        """The old power levels with the upgrading user raised (if needed) to the highest
        level any copied state or ban needs, as Synapse; lowered again afterwards."""
        power = self._carried_power_levels(content, version, creators, user_id, old_state)
        if version.privileged_creators:
            return power  # the upgrading user is a creator: unlimited power
        events = power.get("events", {})
        needed = max(power.get("state_default", 50), power.get("ban", 50),
                     max(events.values(), default=0))
        users = power.setdefault("users", {})
        if users.get(user_id, power.get("users_default", 0)) < needed:
            users[user_id] = needed
        return power

    def _carried_power_levels(self, content: Mapping[str, Any], version: RoomVersion,
                              creators: list[str], user_id: str,
                              old_state: Mapping[tuple[str, str], Event]
                              ) -> dict[str, Any]:
        """The old room's power levels as the new room keeps them: creators of a v12+
        new room are left out of `users` (the auth rules refuse them there); creators
        of a v12+ old room get FORMER_CREATOR_LEVEL in an older-version new room."""
        power = fixup_power_levels(content)
        users: dict[str, int] = dict(power.get("users", {}))
        if version.privileged_creators:
            for creator in (user_id, *creators):
                users.pop(creator, None)
        elif old_state[CREATE].room_version.privileged_creators:
            old_create = old_state[CREATE]
            extra = old_create.content.get("additional_creators")
            old_creators = [old_create.sender, *(extra if isinstance(extra, list) else [])]
            for creator in old_creators:
                if isinstance(creator, str) and users.get(creator, 0) < FORMER_CREATOR_LEVEL:
                    users[creator] = FORMER_CREATOR_LEVEL
        power["users"] = users
        return power

    async def _copy_bans(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        current = await self._state.get_current_state_ids(old_room_id)
        banned = await self._members.get_users_in_room(old_room_id, "ban")
        bans = await self._events.get_events(
            [current[("m.room.member", u)] for u in banned if ("m.room.member", u) in current])
        for ban in bans.values():
            try:
                await self._creation.send(EventSpec(
                    room_id=new_room_id, type="m.room.member", sender=user_id,
                    state_key=ban.state_key, content=dict(ban.content)))
            except MatrixError as e:
                # e.g. a banned user whose power level is above the upgrading user's
                logger.warning("Could not copy the ban of %s to %s: %s", ban.state_key,
                               new_room_id, e)

    async def _move_aliases(self, user_id: str, old_room_id: str, new_room_id: str,
                            canonical: Event | None) -> None:
        """Point local aliases at the new room and split `m.room.canonical_alias`: local
        aliases move to the new room, remote ones stay (as Synapse)."""
        for alias in await self._rooms.get_aliases_for_room(old_room_id):
            mapping = await self._rooms.get_alias(alias)
            if mapping is None or not await self._rooms.delete_alias(alias):
                continue
            await self._rooms.create_alias(alias, new_room_id, mapping[1])
        if canonical is None:
            return
        old_content = dict(canonical.content)
        new_content: dict[str, Any] = {}
        main = old_content.get("alias")
        if isinstance(main, str) and self._is_local_alias(main):
            new_content["alias"] = old_content.pop("alias")
        alt = old_content.get("alt_aliases")
        if isinstance(alt, list):
            moved = [a for a in alt if isinstance(a, str) and self._is_local_alias(a)]
            kept = [a for a in alt if a not in moved]
            if moved:
                new_content["alt_aliases"] = moved
            if kept:
                old_content["alt_aliases"] = kept
            else:
                old_content.pop("alt_aliases")
        for room, content in ((old_room_id, old_content), (new_room_id, new_content)):
            try:
                await self._creation.send(EventSpec(
                    room_id=room, type=CANONICAL_ALIAS[0], sender=user_id, state_key="",
                    content=content))
            except MatrixError as e:
                logger.warning("Could not update the canonical alias in %s: %s", room, e)

    def _is_local_alias(self, alias: str) -> bool:
        return RoomAlias.is_valid(alias) and RoomAlias.parse(alias).domain == self._server_name

    async def _restrict_old_room(self, user_id: str, room_id: str,
                                 content: Mapping[str, Any]) -> None:
        """Spec step 6: `events_default` and `invite` to max(50, users_default + 1)."""
        power = fixup_power_levels(content)
        restricted = max(power.get("users_default", 0) + 1, 50)
        if all(power.get(k, 0) >= restricted for k in ("events_default", "invite")):
            return
        for key in ("events_default", "invite"):
            power[key] = max(power.get(key, 0), restricted)
        try:
            await self._creation.send(EventSpec(room_id=room_id, type=POWER_LEVELS[0],
                                                sender=user_id, state_key="",
                                                content=power))
        except MatrixError as e:
            logger.warning("Could not restrict the power levels in %s: %s", room_id, e)

    async def _restore_power_levels(self, user_id: str, new_room_id: str,
                                    version: RoomVersion, creators: list[str],
                                    old_state: Mapping[tuple[str, str], Event],
                                    content: Mapping[str, Any]) -> None:
        """Put the new room's power levels back to the old room's (undoing the raise)."""
        power = self._carried_power_levels(content, version, creators, user_id, old_state)
        try:
            await self._creation.send(EventSpec(room_id=new_room_id, type=POWER_LEVELS[0],
                                                sender=user_id, state_key="", content=power))
        except MatrixError as e:
            # Only if createRoom's defaults added levels above the user's raised one.
            logger.warning("Could not restore the power levels in %s: %s", new_room_id, e)
