"""Admin API for registration tokens, with the paths and JSON of Synapse's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.registration_tokens import DEFAULT_TOKEN_LENGTH, KEEP
from rest.admin import admin_patterns
from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    parse_body,
    parse_boolean,
)

if TYPE_CHECKING:
    from handlers.registration_tokens import RegistrationTokenRow
    from homeserver.server import HomeServer


def token_json(row: RegistrationTokenRow) -> dict[str, Any]:
    return {
        "token": row.token,
        "uses_allowed": row.uses_allowed,
        "pending": row.pending,
        "completed": row.completed,
        "expiry_time": row.expiry_time,
    }


class ListRegistrationTokensServlet(RestServlet):
    PATTERNS = admin_patterns("/registration_tokens")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._tokens = hs.get_registration_handler().tokens

    # GET /_synapse/admin/v1/registration_tokens
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        await self._auth.require_server_admin(request)
        valid = parse_boolean(request, "valid")
        rows = await self._tokens.list_tokens(valid)
        return 200, {"registration_tokens": [token_json(r) for r in rows]}


class NewTokenBody(RequestBody):
    token: str | None = None
    uses_allowed: int | None = None
    expiry_time: int | None = None
    length: int = DEFAULT_TOKEN_LENGTH


class NewRegistrationTokenServlet(RestServlet):
    PATTERNS = admin_patterns("/registration_tokens/new")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._tokens = hs.get_registration_handler().tokens

    # POST /_synapse/admin/v1/registration_tokens/new
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        await self._auth.require_server_admin(request)
        body = parse_body(request, NewTokenBody)
        row = await self._tokens.create_token(body.token, body.uses_allowed, body.expiry_time,
                                              body.length)
        return 200, token_json(row)


class UpdateTokenBody(RequestBody):
    uses_allowed: int | None = None
    expiry_time: int | None = None


class RegistrationTokenServlet(RestServlet):
    PATTERNS = admin_patterns("/registration_tokens/(?P<token>[^/]*)")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._tokens = hs.get_registration_handler().tokens

    # GET /_synapse/admin/v1/registration_tokens/{token}
    async def on_GET(self, request: HttpRequest, token: str) -> tuple[int, Any]:
        await self._auth.require_server_admin(request)
        return 200, token_json(await self._tokens.get_token(token))

    # PUT /_synapse/admin/v1/registration_tokens/{token}
    async def on_PUT(self, request: HttpRequest, token: str) -> tuple[int, Any]:
        await self._auth.require_server_admin(request)
        body = parse_body(request, UpdateTokenBody)
        # An omitted field is left as it is; an explicit null clears the limit.
        given = body.model_fields_set
        row = await self._tokens.update_token(
            token,
            uses_allowed=body.uses_allowed if "uses_allowed" in given else KEEP,
            expiry_time=body.expiry_time if "expiry_time" in given else KEEP,
        )
        return 200, token_json(row)

    # DELETE /_synapse/admin/v1/registration_tokens/{token}
    async def on_DELETE(self, request: HttpRequest, token: str) -> tuple[int, Any]:
        await self._auth.require_server_admin(request)
        await self._tokens.delete_token(token)
        return 200, {}


def register_servlets(hs: HomeServer, router: Router) -> None:
    ListRegistrationTokensServlet(hs).register(router)
    NewRegistrationTokenServlet(hs).register(router)
    RegistrationTokenServlet(hs).register(router)
