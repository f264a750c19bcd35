"""Creating rooms (`createRoom`): the create event, the creator's join, power levels,
preset state, initial state, name/topic, alias and invites, in the spec's order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from handlers.event_creation import EventSpec
from handlers.ratelimit import check_all
from homeserver.errors import BadRequestError, Codes, MatrixError
from homeserver.identifiers import RoomAlias, UserID
from homeserver.json_decode import check_content_depth
from homeserver.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS

if TYPE_CHECKING:
    from homeserver.server import HomeServer

PRESETS: dict[str, dict[str, str]] = {
    "private_chat": {"join_rule": "invite", "history_visibility": "shared",
                     "guest_access": "can_join"},
    "trusted_private_chat": {"join_rule": "invite", "history_visibility": "shared",
                             "guest_access": "can_join"},
    "public_chat": {"join_rule": "public", "history_visibility": "shared",
                    "guest_access": "forbidden"},
}

DEFAULT_EVENT_LEVELS = {
    "m.room.name": 50,
    "m.room.power_levels": 100,
    "m.room.history_visibility": 100,
    "m.room.canonical_alias": 50,
    "m.room.avatar": 50,
    "m.room.tombstone": 100,
    "m.room.server_acl": 100,
    "m.room.encryption": 100,
}


@attrs.frozen(slots=True)
class CreateRoomRequest:
    """The parsed `POST /createRoom` body."""

    preset: str | None = None
    visibility: str = "private"
    room_version: str | None = None
    name: str | None = None
    topic: str | None = None
    room_alias_name: str | None = None
    invite: tuple[str, ...] = ()
    is_direct: bool = False
    initial_state: tuple[Mapping[str, Any], ...] = ()
    creation_content: Mapping[str, Any] = attrs.Factory(dict)
    power_level_content_override: Mapping[str, Any] | None = None


class RoomCreationHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._server_name = hs.hostname
        stores = hs.get_datastores()
        self._profiles = stores.profiles
        self._rooms = stores.rooms
        self._creation = hs.get_event_creation_handler()
        self._limits = hs.get_ratelimiters()

    # POST /_matrix/client/v3/createRoom
    async def create_room(self, user_id: str, req: CreateRoomRequest) -> str:
        """Create a room; returns its ID.

        Raises:
            MatrixError: 400 M_UNSUPPORTED_ROOM_VERSION, M_ROOM_IN_USE (alias taken),
                M_INVALID_PARAM (bad preset, alias, invitee or initial state), M_UNKNOWN
                (more invitees than `rc_invites.per_room` allows at once); 429 over
                `rc_message` or `rc_room_creation`.
        """
        # As in Synapse: the request limiter and the room-creation limiter both count.
        check_all((self._limits.message, user_id), (self._limits.room_creation, user_id))
        per_room = self._limits.invites_per_room
        if per_room.burst > 0 and len(req.invite) > per_room.burst:
            raise BadRequestError("Cannot invite so many users at once", errcode=Codes.UNKNOWN)
        version_id = req.room_version or DEFAULT_ROOM_VERSION
        room_version = KNOWN_ROOM_VERSIONS.get(version_id)
        if room_version is None:
            raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION,
                              f"Room version {version_id!r} is not supported")
        preset_name = req.preset or ("public_chat" if req.visibility == "public"
                                     else "private_chat")
        if preset_name not in PRESETS:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Unknown preset {preset_name!r}")
        preset = PRESETS[preset_name]
        for invitee in req.invite:
            UserID.parse(invitee)
        alias = None
        if req.room_alias_name is not None:
            alias = self._alias_for(req.room_alias_name)
            if await self._rooms.get_alias(alias) is not None:
                raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")
        initial_state = self._parse_initial_state(req.initial_state)
        # Checked before the room exists, so that a refusal leaves no half-made room.
        for content in (req.creation_content, req.power_level_content_override,
                        *initial_state.values()):
            check_content_depth(content)

        # 1. The create event.
        create_content: dict[str, Any] = dict(req.creation_content)
        create_content["room_version"] = room_version.identifier
        if not room_version.implicit_room_creator:
            create_content["creator"] = user_id
        trusted = preset_name == "trusted_private_chat"
        if room_version.privileged_creators and trusted and req.invite:
            extra = list(create_content.get("additional_creators") or [])
            create_content["additional_creators"] = extra + [
                i for i in req.invite if i not in extra and i != user_id]
        room_id = None if room_version.room_id_from_create_event else \
            f"!{_random_localpart()}:{self._server_name}"
        create = await self._creation.create_room_event(
            EventSpec(room_id=room_id, type="m.room.create", sender=user_id,
                      content=create_content, state_key=""), room_version)
        room_id = create.event.room_id

        async def send(event_type: str, content: Mapping[str, Any], state_key: str = "") -> None:
            await self._creation.send(EventSpec(room_id=room_id, type=event_type,
                                                sender=user_id, content=content,
                                                state_key=state_key))

        # 2. The creator joins.
        profile = await self._profiles.get_profile(user_id)
        member: dict[str, Any] = {"membership": "join"}
        if profile is not None:
            if profile.displayname:
                member["displayname"] = profile.displayname
            if profile.avatar_url:
                member["avatar_url"] = profile.avatar_url
        await send("m.room.member", member, user_id)

        # 3. Power levels, with the override merged over our defaults.
        creators = {user_id, *create_content.get("additional_creators", [])} \
            if room_version.privileged_creators else set()
        users: dict[str, int] = {} if room_version.privileged_creators else {user_id: 100}
        if trusted:
            users.update({i: 100 for i in req.invite if i not in creators})
        power: dict[str, Any] = {
            "users": users, "users_default": 0, "events": dict(DEFAULT_EVENT_LEVELS),
            "events_default": 0, "state_default": 50, "ban": 50, "kick": 50, "redact": 50,
            "invite": 0 if preset_name != "public_chat" else 50,
            "notifications": {"room": 50},
        }
        override = dict(req.power_level_content_override or {})
        if ("m.room.power_levels", "") in initial_state:
            override.update(initial_state.pop(("m.room.power_levels", "")))
        power.update(override)
        await send("m.room.power_levels", power)

        # 4. The canonical alias.
        if alias is not None:
            if not await self._rooms.create_alias(alias, room_id, user_id):
                raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")
            await send("m.room.canonical_alias", {"alias": alias})

        # 5. Preset state (unless initial_state sets it), then 6. initial_state.
        preset_state: dict[tuple[str, str], Mapping[str, Any]] = {
            ("m.room.join_rules", ""): {"join_rule": preset["join_rule"]},
            ("m.room.history_visibility", ""): {
                "history_visibility": preset["history_visibility"]},
            ("m.room.guest_access", ""): {"guest_access": preset["guest_access"]},
        }
        for key, content in preset_state.items():
            if key not in initial_state:
                await send(key[0], content, key[1])
        for (event_type, state_key), initial in initial_state.items():
            await send(event_type, initial, state_key)

        # 7. Name and topic.
        if req.name is not None:
            await send("m.room.name", {"name": req.name})
        if req.topic is not None:
            await send("m.room.topic", {"topic": req.topic})

        if req.visibility == "public":
            await self._rooms.set_room_is_public(room_id, True)

        # 8. Invites.
        members = self._hs.get_room_member_handler()
        for invitee in req.invite:
            # Counted above as a whole; the room must not end up half-invited.
            try:
                await members.invite(user_id, room_id, invitee, is_direct=req.is_direct,
                                     ratelimit=False)
            except MatrixError as e:
                # The spec: one invitee blocking invites does not fail the creation.
                if e.errcode != Codes.INVITE_BLOCKED:
                    raise
        return room_id

    def _alias_for(self, name: str) -> str:
        if not name or ":" in name or any(c.isspace() for c in name):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid room_alias_name")
        alias = f"#{name}:{self._server_name}"
        try:
            RoomAlias.parse(alias)
        except (MatrixError, ValueError):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid room_alias_name") from None
        return alias

    def _parse_initial_state(self, items: tuple[Mapping[str, Any], ...]
                             ) -> dict[tuple[str, str], Mapping[str, Any]]:
        state: dict[tuple[str, str], Mapping[str, Any]] = {}
        for item in items:
            event_type = item.get("type")
            state_key = item.get("state_key", "")
            content = item.get("content")
            if not isinstance(event_type, str) or not isinstance(state_key, str) \
                    or not isinstance(content, dict):
                raise MatrixError(400, Codes.BAD_JSON,
                                  "initial_state items need type, state_key and content")
            if event_type in ("m.room.create", "m.room.member"):
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  f"{event_type} cannot be set in initial_state")
            state[(event_type, state_key)] = content
        return state


def _random_localpart() -> str:
    import secrets

    return secrets.token_urlsafe(12).replace("-", "a").replace("_", "b")
