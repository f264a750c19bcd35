"""The user directory: searching local users by user ID and display name.

TODO: once rooms exist, limit results to users who share a room with the searcher or are
joined to public rooms, unless `user_directory.search_all_users` is set (spec:
POST /user_directory/search). Until then every active local user is searchable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.auth import Requester

if TYPE_CHECKING:
    from homeserver.server import HomeServer

DEFAULT_LIMIT = 10
MAX_LIMIT = 50


class UserDirectoryHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        self._profiles = hs.get_datastores().profiles

    # POST /_matrix/client/v3/user_directory/search
    async def search(self, requester: Requester, search_term: str,
                     limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
        """Search local users; `limit` is clamped to 0..50, as Synapse does.

        Returns:
            `{"results": [{user_id, display_name?, avatar_url?}], "limited": bool}`, best
            match first (exact, then prefix, then word matches).
        """
        limit = max(0, min(limit, MAX_LIMIT))
        term = search_term.strip()
        # A full user ID of ours ("@alice:server") searches for its localpart.
        if term.startswith("@"):
            localpart, _, domain = term[1:].partition(":")
            if not domain or self._server_name.startswith(domain):
                term = localpart
        # One extra row tells whether the results were truncated.
        hits = await self._profiles.search_user_directory(term, limit + 1)
        results = []
        for hit in hits[:limit]:
            result: dict[str, Any] = {"user_id": hit.user_id}
            if hit.displayname is not None:
                result["display_name"] = hit.displayname
            if hit.avatar_url is not None:
                result["avatar_url"] = hit.avatar_url
            results.append(result)
        return {"results": results, "limited": len(hits) > limit}
