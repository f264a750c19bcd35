"""User directory search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.user_directory import DEFAULT_LIMIT
from rest.http import HttpRequest, RequestBody, RestServlet, Router, client_patterns, parse_body

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class UserDirectorySearchBody(RequestBody):
    search_term: str
    limit: int = DEFAULT_LIMIT


class UserDirectorySearchServlet(RestServlet):
    PATTERNS = client_patterns("/user_directory/search")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._directory = hs.get_user_directory_handler()

    # POST /_matrix/client/v3/user_directory/search
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = parse_body(request, UserDirectorySearchBody)
        found = await self._directory.search(requester, body.search_term, body.limit)
        results = []
        for hit in found.results:
            result: dict[str, Any] = {"user_id": hit.user_id}
            if hit.display_name is not None:
                result["display_name"] = hit.display_name
            if hit.avatar_url is not None:
                result["avatar_url"] = hit.avatar_url
            results.append(result)
        return 200, {"results": results, "limited": found.limited}


def register_servlets(hs: HomeServer, router: Router) -> None:
    UserDirectorySearchServlet(hs).register(router)
