"""`.well-known` discovery documents and the health check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from rest.http import HttpRequest, HttpResponse, RestServlet, Router

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class ClientWellKnownServlet(RestServlet):
    PATTERNS = (r"^/\.well-known/matrix/client$",)

    def __init__(self, hs: HomeServer) -> None:
        self._body = {"m.homeserver": {"base_url": hs.config.public_baseurl}}

    # GET /.well-known/matrix/client
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        return 200, self._body


class ServerWellKnownServlet(RestServlet):
    PATTERNS = (r"^/\.well-known/matrix/server$",)

    def __init__(self, hs: HomeServer) -> None:
        self._enabled = hs.config.serve_server_wellknown
        # Delegation to port 443 of the server name, as Synapse's `serve_server_wellknown`.
        self._body = {"m.server": f"{hs.hostname}:443"}

    # GET /.well-known/matrix/server
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        if not self._enabled:
            raise MatrixError(404, Codes.NOT_FOUND, ".well-known/matrix/server is not served")
        return 200, self._body


class HealthServlet(RestServlet):
    PATTERNS = ("^/health$",)

    # GET /health
    async def on_GET(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(code=200, body=b"OK", content_type="text/plain")


def register_servlets(hs: HomeServer, router: Router) -> None:
    ClientWellKnownServlet(hs).register(router)
    ServerWellKnownServlet(hs).register(router)
    HealthServlet().register(router)
