"""Federation queries about our users: their devices and end-to-end keys
(`/user/devices`, `/user/keys/query`, `/user/keys/claim`, authenticated with X-Matrix), and
`GET /openid/userinfo`, which third parties call without X-Matrix (per the spec)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import pydantic

from federation.transport.server import FederationServlet, federation_patterns
from rest.http import HttpRequest, RequestBody, RestServlet, Router, parse_body, parse_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer


#: users in one query or claim (a server asks about its users' room-mates on one server)
MAX_USERS = 1000
_Id = Annotated[str, pydantic.StringConstraints(max_length=255)]


class KeysQueryBody(RequestBody):
    device_keys: dict[_Id, list[_Id]] = pydantic.Field(max_length=MAX_USERS)


class KeysClaimBody(RequestBody):
    one_time_keys: dict[_Id, dict[_Id, _Id]] = pydantic.Field(max_length=MAX_USERS)


class UserDevicesServlet(FederationServlet):
    PATTERNS = federation_patterns("/user/devices/(?P<user_id>[^/]+)")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_federation_device_query_handler()

    # GET /_matrix/federation/v1/user/devices/{userId}
    async def on_GET_authed(self, request: HttpRequest, origin: str,
                            user_id: str) -> tuple[int, Any]:
        return 200, await self._handler.get_user_devices(user_id)


class UserKeysQueryServlet(FederationServlet):
    PATTERNS = federation_patterns("/user/keys/query")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_federation_device_query_handler()

    # POST /_matrix/federation/v1/user/keys/query
    async def on_POST_authed(self, request: HttpRequest, origin: str) -> tuple[int, Any]:
        body = parse_body(request, KeysQueryBody)
        return 200, await self._handler.query_keys(body.device_keys)


class UserKeysClaimServlet(FederationServlet):
    PATTERNS = federation_patterns("/user/keys/claim")

    def __init__(self, hs: HomeServer) -> None:
        super().__init__(hs)
        self._handler = hs.get_federation_device_query_handler()

    # POST /_matrix/federation/v1/user/keys/claim
    async def on_POST_authed(self, request: HttpRequest, origin: str) -> tuple[int, Any]:
        body = parse_body(request, KeysClaimBody)
        return 200, await self._handler.claim_keys(body.one_time_keys)


class OpenIdUserInfoServlet(RestServlet):
    """Not a `FederationServlet`: the caller is a third party with the token, not a
    server signing its request."""

    PATTERNS = federation_patterns("/openid/userinfo")

    def __init__(self, hs: HomeServer) -> None:
        self._handler = hs.get_openid_handler()

    # GET /_matrix/federation/v1/openid/userinfo?access_token=
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        return 200, await self._handler.get_userinfo(parse_string(request, "access_token"))


def register_servlets(hs: HomeServer, router: Router) -> None:
    UserDevicesServlet(hs).register(router)
    UserKeysQueryServlet(hs).register(router)
    UserKeysClaimServlet(hs).register(router)
    OpenIdUserInfoServlet(hs).register(router)
