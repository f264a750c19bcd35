"""Discovery for clients: the spec versions we serve and the server's capabilities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS
from rest.http import HttpRequest, RestServlet, Router, client_patterns

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: the client-server spec versions whose features Axon has: the "Advertised" column of
#: docs/versions.md (a test keeps the two equal). Never list a version whose feature is
#: missing: clients gate on them (e.g. authenticated media on v1.11).
SUPPORTED_VERSIONS = ("r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0",
                      "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7",
                      "v1.8", "v1.9")


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
