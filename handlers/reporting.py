"""Reports about users (`POST /users/{userId}/report`, spec v1.13)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.auth import Requester
from homeserver.identifiers import UserID

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class ReportingHandler:
    def __init__(self, hs: HomeServer) -> None:
        stores = hs.get_datastores()
        self._moderation = stores.moderation
        self._users = stores.users
        self._clock = hs.get_clock()
        self._is_mine_id = hs.is_mine_id

    # POST /_matrix/client/v3/users/{userId}/report
    async def report_user(self, requester: Requester, target_user_id: str,
                          reason: str) -> None:
        """Store a report about one of our users. Unknown and remote users are not
        reported but answer the same (MSC4277: the answer must not reveal who exists).

        Raises:
            MatrixError: 400 M_INVALID_PARAM for a malformed user ID.
        """
        UserID.parse(target_user_id)
        if not self._is_mine_id(target_user_id):
            return
        if await self._users.get_user(target_user_id) is None:
            return
        await self._moderation.add_user_report(target_user_id, requester.user_id, reason,
                                               self._clock.time_msec())
