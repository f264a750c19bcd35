"""Notary endpoints (server-server API, "Querying Keys Through Another Server"):
`POST /_matrix/key/v2/query` and `GET /_matrix/key/v2/query/{serverName}`.

We answer with the key responses the key ring holds (fetching them from the server when
the cache is missing or stale), each co-signed by us; our own keys come from our signing
key. A server we cannot reach and hold nothing for is simply left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeserver.errors import Codes, MatrixError
from homeserver.identifiers import is_valid_server_name
from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    parse_integer,
    parse_json_object,
    validate_model,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: servers one POST may ask about: each may cost an outbound fetch
MAX_SERVERS_PER_QUERY = 100


class _KeyCriteria(RequestBody):
    minimum_valid_until_ts: int | None = None


class _KeyQueryBody(RequestBody):
    server_keys: dict[str, dict[str, _KeyCriteria]]


class KeyQueryServlet(RestServlet):
    PATTERNS = ("^/_matrix/key/v2/query$",)

    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._keyring = hs.get_keyring()

    # POST /_matrix/key/v2/query
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        try:
            body = validate_model(_KeyQueryBody, parse_json_object(request))
        except MatrixError as e:
            # Synapse's code for a missing `server_keys` too (this is not the client API).
            if e.errcode == Codes.MISSING_PARAM:
                raise MatrixError(400, Codes.BAD_JSON, e.msg) from None
            raise
        if len(body.server_keys) > MAX_SERVERS_PER_QUERY:
            raise MatrixError(400, Codes.BAD_JSON,
                              f"At most {MAX_SERVERS_PER_QUERY} servers per query")
        for name in body.server_keys:
            if not is_valid_server_name(name):
                raise MatrixError(400, Codes.BAD_JSON, f"Invalid server name {name!r}")
        now = self._clock.time_msec()
        keys: list[dict[str, Any]] = []
        for name, criteria in body.server_keys.items():
            minimum = max((c.minimum_valid_until_ts for c in criteria.values()
                           if c.minimum_valid_until_ts is not None), default=now)
            keys += await self._keyring.get_key_responses(name, list(criteria), minimum)
        return 200, {"server_keys": keys}


class KeyQueryServerServlet(RestServlet):
    PATTERNS = ("^/_matrix/key/v2/query/(?P<server_name>[^/]*)$",)

    def __init__(self, hs: HomeServer) -> None:
        self._clock = hs.get_clock()
        self._keyring = hs.get_keyring()

    # GET /_matrix/key/v2/query/{serverName}
    async def on_GET(self, request: HttpRequest, server_name: str) -> tuple[int, Any]:
        if not is_valid_server_name(server_name):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid server name")
        minimum = parse_integer(request, "minimum_valid_until_ts")
        if minimum is None:
            minimum = self._clock.time_msec()
        keys = await self._keyring.get_key_responses(server_name, (), minimum)
        return 200, {"server_keys": keys}


def register_servlets(hs: HomeServer, router: Router) -> None:
    KeyQueryServlet(hs).register(router)
    KeyQueryServerServlet(hs).register(router)
