"""The user directory: searching local users by user ID and display name.

Who may be found (Synapse's rules, `user_directory` config): with `search_all_users:
false` (the default) only users who share a room with the searcher or are joined to a
public room (join rule `public` or history `world_readable`), and they drop out as soon as
that ends; with `search_all_users: true` every active local user. `enabled: false` turns
search off (empty results). Remote users are not indexed: results are local users only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from handlers.auth import Requester

if TYPE_CHECKING:
    from homeserver.server import HomeServer

DEFAULT_LIMIT = 10
MAX_LIMIT = 50


@attrs.frozen(slots=True)
class DirectoryResult:
    user_id: str
    display_name: str | None
    avatar_url: str | None


@attrs.frozen(slots=True)
class DirectorySearch:
    results: list[DirectoryResult]
    limited: bool


class UserDirectoryHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        self._profiles = hs.get_datastores().profiles
        self._config = hs.config.user_directory

    # POST /_matrix/client/v3/user_directory/search
    async def search(self, requester: Requester, search_term: str,
                     limit: int = DEFAULT_LIMIT) -> DirectorySearch:
        """Search the users the requester may find; `limit` is clamped to 0..50, as
        Synapse does. Best match first (exact, then prefix, then word matches)."""
        if not self._config.enabled:
            return DirectorySearch([], False)
        limit = max(0, min(limit, MAX_LIMIT))
        term = search_term.strip()
        # A full user ID of ours ("@alice:server") searches for its localpart.
        if term.startswith("@"):
            localpart, _, domain = term[1:].partition(":")
            if not domain or self._server_name.startswith(domain):
                term = localpart
        visible_to = None if self._config.search_all_users else requester.user_id
        # One extra row tells whether the results were truncated.
        hits = await self._profiles.search_user_directory(term, limit + 1, visible_to)
        return DirectorySearch(
            [DirectoryResult(h.user_id, h.displayname, h.avatar_url) for h in hits[:limit]],
            len(hits) > limit)
