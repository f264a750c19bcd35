"""Profile endpoints: the whole profile, and one field at a time (spec v1.16 keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.profile import MISSING
from rest.http import HttpRequest, RestServlet, Router, client_patterns, parse_json_object

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class ProfileServlet(RestServlet):
    PATTERNS = client_patterns("/profile/(?P<user_id>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._profiles = hs.get_profile_handler()

    # GET /_matrix/client/v3/profile/{userId}
    async def on_GET(self, request: HttpRequest, user_id: str) -> tuple[int, Any]:
        return 200, await self._profiles.get_profile(user_id)


class ProfileFieldServlet(RestServlet):
    PATTERNS = client_patterns("/profile/(?P<user_id>[^/]*)/(?P<key>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._profiles = hs.get_profile_handler()

    # GET /_matrix/client/v3/profile/{userId}/{keyName}
    async def on_GET(self, request: HttpRequest, user_id: str, key: str) -> tuple[int, Any]:
        return 200, {key: await self._profiles.get_profile_field(user_id, key)}

    # PUT /_matrix/client/v3/profile/{userId}/{keyName}
    async def on_PUT(self, request: HttpRequest, user_id: str, key: str) -> tuple[int, Any]:
        # Guests may set their display name, as in Synapse.
        requester = await self._auth.get_user_by_req(request, allow_guest=key == "displayname")
        body = parse_json_object(request)
        await self._profiles.set_profile_field(requester, user_id, key, body.get(key, MISSING))
        return 200, {}

    # DELETE /_matrix/client/v3/profile/{userId}/{keyName}
    async def on_DELETE(self, request: HttpRequest, user_id: str, key: str) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=key == "displayname")
        await self._profiles.delete_profile_field(requester, user_id, key)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    ProfileServlet(hs).register(router)
    ProfileFieldServlet(hs).register(router)
