"""`GET /_matrix/client/v1/room_summary/{roomIdOrAlias}` (spec v1.15, MSC3266): what a
room is before one joins it, for rooms we are in or, through a server in `via`, not.
Who may see it is the hierarchy's rule (public, knock, knock_restricted, world-readable;
restricted with a joined allowed room; a member, invitee or knocker)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class RoomSummaryHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._members = hs.get_datastores().room_members
        self._member_handler = hs.get_room_member_handler()
        self._hierarchy = hs.get_space_hierarchy_handler()
        self._fed_membership = hs.get_federation_membership_handler()

    # GET /_matrix/client/v1/room_summary/{roomIdOrAlias}
    async def get_room_summary(self, user_id: str | None, room_id_or_alias: str,
                               via: Sequence[str]) -> dict[str, Any]:
        """The summary, with the user's `membership` if they have one.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for neither a room ID nor an alias; 404
                M_NOT_FOUND for an unknown alias or room, or one the user may not see.
        """
        room_id, servers = await self._member_handler.resolve_room_for_join(
            room_id_or_alias, list(via))
        candidates = self._fed_membership.candidate_servers(room_id, servers)
        summary = await self._hierarchy.get_summary(user_id, room_id, candidates)
        if summary is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room not found or is not accessible")
        if user_id is not None:
            membership = await self._members.get_local_membership(user_id, room_id)
            if membership is not None:
                summary["membership"] = membership.membership
        return summary
