"""Asking another server for a room's summary and direct children
(`GET /_matrix/federation/v1/hierarchy/{roomId}`), for the client hierarchy walk and
`/room_summary` when we are not in the room. The answer is checked against a declarative
model with limits before anything of it is used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import pydantic

from federation.pdu_limits import ShortString

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

#: servers tried per room, at most
MAX_SERVERS_TRIED = 3
REQUEST_TIMEOUT = 15.0
#: a space's children (state events) and summaries, at most, in one answer
MAX_CHILDREN = 1000
_CONFIG = pydantic.ConfigDict(strict=True, extra="ignore", frozen=True)


class RemoteChildState(pydantic.BaseModel):
    """One `m.space.child` stripped state event of a remote room."""

    model_config = _CONFIG
    type: ShortString
    state_key: ShortString
    content: dict[str, Any]
    sender: ShortString
    origin_server_ts: int


class RemoteRoomSummary(pydantic.BaseModel):
    """A room's summary as another server gives it (`SpaceHierarchyRoomsChunk`)."""

    model_config = _CONFIG
    room_id: ShortString
    num_joined_members: Annotated[int, pydantic.Field(ge=0)]
    world_readable: bool
    guest_can_join: bool
    join_rule: ShortString | None = None
    name: str | None = None
    topic: str | None = None
    canonical_alias: ShortString | None = None
    avatar_url: str | None = None
    room_type: ShortString | None = None
    encryption: ShortString | None = None
    room_version: ShortString | None = None
    allowed_room_ids: Annotated[list[ShortString], pydantic.Field(max_length=MAX_CHILDREN)] = []
    children_state: Annotated[list[RemoteChildState],
                              pydantic.Field(max_length=MAX_CHILDREN)] = []

    def summary(self) -> dict[str, Any]:
        """The public summary fields (those set), without `children_state`."""
        return self.model_dump(exclude_none=True,
                               exclude={"children_state", "allowed_room_ids"}) | (
            {"allowed_room_ids": list(self.allowed_room_ids)} if self.allowed_room_ids
            else {})


class RemoteHierarchy(pydantic.BaseModel):
    model_config = _CONFIG
    room: RemoteRoomSummary
    #: entries are checked one by one (a bad child does not cost the others)
    children: Annotated[list[Any], pydantic.Field(max_length=MAX_CHILDREN)] = []
    inaccessible_children: Annotated[list[ShortString],
                                     pydantic.Field(max_length=MAX_CHILDREN)] = []

    def valid_children(self) -> list[RemoteRoomSummary]:
        out = []
        for child in self.children:
            try:
                out.append(RemoteRoomSummary.model_validate(child))
            except pydantic.ValidationError:
                continue
        return out


class RemoteHierarchyClient:
    def __init__(self, hs: HomeServer) -> None:
        self._client = hs.get_federation_client()
        self._server_name = hs.hostname

    async def fetch(self, room_id: str, servers: Sequence[str],
                    suggested_only: bool = False) -> RemoteHierarchy | None:
        """The first valid answer of `servers` (ours left out) about `room_id`, or None."""
        tried = 0
        for server in dict.fromkeys(servers):
            if server == self._server_name or tried >= MAX_SERVERS_TRIED:
                continue
            tried += 1
            try:
                answer = await self._client.get_json(
                    server, f"/_matrix/federation/v1/hierarchy/{quote(room_id, safe='')}",
                    {"suggested_only": "true" if suggested_only else "false"},
                    timeout=REQUEST_TIMEOUT)
                hierarchy = RemoteHierarchy.model_validate(answer)
            except Exception as e:  # noqa: BLE001 - any failure: try the next server
                logger.info("Hierarchy of %s from %s failed: %s", room_id, server, e)
                continue
            if hierarchy.room.room_id == room_id:
                return hierarchy
        return None
