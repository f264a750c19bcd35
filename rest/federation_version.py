"""`GET /_matrix/federation/v1/version`: who we are, for other servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import homeserver
from rest.http import HttpRequest, RestServlet, Router

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class FederationVersionServlet(RestServlet):
    PATTERNS = ("^/_matrix/federation/v1/version$",)

    # GET /_matrix/federation/v1/version
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        return 200, {"server": {"name": "Axon", "version": homeserver.__version__}}


def register_servlets(hs: HomeServer, router: Router) -> None:
    FederationVersionServlet().register(router)
