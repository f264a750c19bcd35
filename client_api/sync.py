"""GET /sync: the client's long-poll for everything new."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.sync import SyncParams
from homeserver.errors import Codes, MatrixError
from homeserver.stream_token import StreamToken
from rest.http import (
    HttpRequest,
    RestServlet,
    Router,
    client_patterns,
    parse_boolean,
    parse_integer,
    parse_string,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

PRESENCE_VALUES = ("online", "offline", "unavailable")


class SyncServlet(RestServlet):
    PATTERNS = client_patterns("/sync")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._sync = hs.get_sync_handler()
        self._filters = hs.get_filter_handler()

    # GET /_matrix/client/v3/sync
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        since_param = parse_string(request, "since")
        since = None
        if since_param is not None:
            try:
                since = StreamToken.parse(since_param)
            except ValueError:
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  "Invalid 'since' token") from None
        timeout = parse_integer(request, "timeout", default=0) or 0
        if timeout < 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "'timeout' must not be negative")
        params = SyncParams(
            user_id=requester.user_id, device_id=requester.device_id, since=since,
            timeout_ms=timeout,
            full_state=bool(parse_boolean(request, "full_state", default=False)),
            filter=await self._filters.resolve(requester.user_id,
                                               parse_string(request, "filter")),
            set_presence=parse_string(request, "set_presence", default="online",
                                      allowed_values=PRESENCE_VALUES) or "online",
        )
        return 200, await self._sync.sync(params)


def register_servlets(hs: HomeServer, router: Router) -> None:
    SyncServlet(hs).register(router)
