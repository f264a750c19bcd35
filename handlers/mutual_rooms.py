"""`GET /_matrix/client/v1/mutual_rooms` (spec v1.19): rooms two users are both joined to."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import UserID

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: room IDs per answer; `next_batch` (the last room ID given) pages on
BATCH_SIZE = 100


@attrs.frozen(slots=True)
class MutualRooms:
    joined: list[str]
    count: int
    next_batch: str | None


class MutualRoomsHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._members = hs.get_datastores().room_members

    async def get_mutual_rooms(self, user_id: str, other_user_id: str,
                               from_token: str | None) -> MutualRooms:
        """The rooms (sorted by ID) where both users are joined, a batch at a time.

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a malformed or own user ID, or a `from`
                that is not one of our tokens.
        """
        try:
            UserID.parse(other_user_id)
        except MatrixError:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "The user ID provided was invalid") from None
        if other_user_id == user_id:
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "You cannot request a list of shared rooms with yourself")
        if from_token is not None and not from_token.startswith("!"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid 'from' token")
        mine = await self._members.get_rooms_for_local_user(user_id, ("join",))
        shared = sorted([
            m.room_id for m in mine
            if other_user_id in await self._members.get_users_in_room(m.room_id)])
        rest = [r for r in shared if from_token is None or r > from_token]
        batch = rest[:BATCH_SIZE]
        return MutualRooms(joined=batch, count=len(shared),
                           next_batch=batch[-1] if len(rest) > BATCH_SIZE else None)
