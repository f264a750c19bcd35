"""Discovery for clients: the spec versions we serve and the server's capabilities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS
from rest.http import HttpRequest, RestServlet, Router, client_patterns

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: the client-server spec versions Axon implements
SUPPORTED_VERSIONS = tuple(f"v1.{minor}" for minor in range(1, 17))


class VersionsServlet(RestServlet):
    PATTERNS = ("^/_matrix/client/versions$",)

    # GET /_matrix/client/versions
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        return 200, {"versions": list(SUPPORTED_VERSIONS), "unstable_features": {}}


class CapabilitiesServlet(RestServlet):
    PATTERNS = client_patterns("/capabilities")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._password_enabled = hs.config.password_config.enabled

    # GET /_matrix/client/v3/capabilities
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        await self._auth.get_user_by_req(request, allow_guest=True)
        return 200, {"capabilities": {
            "m.change_password": {"enabled": self._password_enabled},
            "m.room_versions": {
                "default": DEFAULT_ROOM_VERSION,
                "available": {
                    v.identifier: "stable" if v.stable else "unstable"
                    for v in KNOWN_ROOM_VERSIONS.values()
                },
            },
            # Deprecated by m.profile_fields in v1.16, still read by older clients.
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": True},
            "m.3pid_changes": {"enabled": False},
            "m.get_login_token": {"enabled": False},
            "m.profile_fields": {"enabled": True},
        }}


def register_servlets(hs: HomeServer, router: Router) -> None:
    VersionsServlet().register(router)
    CapabilitiesServlet(hs).register(router)
