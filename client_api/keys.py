"""End-to-end encryption keys: `/keys/upload`, `/keys/query`, `/keys/claim`,
`/keys/changes`, `/keys/device_signing/upload`, `/keys/signatures/upload`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import pydantic

from homeserver.errors import BadRequestError
from rest.http import (
    HttpRequest,
    RequestBody,
    RestServlet,
    Router,
    client_patterns,
    parse_json_object,
    parse_string,
    validate_model,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

#: "algorithm:id": an algorithm name without colons or spaces, then a non-empty ID
KeyId = Annotated[str, pydantic.StringConstraints(
    pattern=r"^[A-Za-z0-9_.\-]{1,100}:\S{1,200}$")]
Algorithm = Annotated[str, pydantic.StringConstraints(
    pattern=r"^[A-Za-z0-9_.\-]{1,100}$")]
#: a public key or signature (unpadded base64; generous for future algorithms)
KeyText = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=2048)]
UserIdText = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=255)]
Signatures = dict[UserIdText, dict[KeyId, KeyText]]

#: keys in one upload, per kind (the one-time key cap is 500 per algorithm anyway)
MAX_KEYS_PER_UPLOAD = 1000
MAX_QUERY_USERS = 1000


class DeviceKeysBody(RequestBody):
    user_id: str
    device_id: str
    algorithms: list[Algorithm] = pydantic.Field(max_length=100)
    keys: dict[KeyId, KeyText] = pydantic.Field(min_length=1, max_length=100)
    signatures: Signatures
    unsigned: dict[str, Any] | None = None


class SignedKeyBody(RequestBody):
    key: KeyText
    signatures: Signatures
    fallback: bool | None = None


OneTimeKeys = dict[KeyId, KeyText | SignedKeyBody]


class KeysUploadBody(RequestBody):
    device_keys: DeviceKeysBody | None = None
    one_time_keys: OneTimeKeys | None = pydantic.Field(
        default=None, max_length=MAX_KEYS_PER_UPLOAD)
    fallback_keys: OneTimeKeys | None = pydantic.Field(default=None, max_length=100)
    unstable_fallback_keys: OneTimeKeys | None = pydantic.Field(
        default=None, max_length=100, alias="org.matrix.msc2732.fallback_keys")


class KeysUploadServlet(RestServlet):
    PATTERNS = client_patterns("/keys/upload")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._keys = hs.get_e2e_keys_handler()

    # POST /_matrix/client/v3/keys/upload
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True)
        raw = parse_json_object(request)
        body = validate_model(KeysUploadBody, raw)
        if requester.device_id is None:
            raise BadRequestError("This access token has no device")
        # The models checked the shapes; the keys are stored exactly as sent, since
        # their signatures cover every field.
        fallback = raw.get("fallback_keys") if body.fallback_keys is not None \
            else raw.get("org.matrix.msc2732.fallback_keys")
        counts = await self._keys.upload_keys(
            requester.user_id, requester.device_id,
            raw.get("device_keys") if body.device_keys is not None else None,
            raw.get("one_time_keys") or {}, fallback or {})
        return 200, {"one_time_key_counts": counts}


class KeysQueryBody(RequestBody):
    device_keys: dict[UserIdText, list[str]] = pydantic.Field(max_length=MAX_QUERY_USERS)
    timeout: int | None = pydantic.Field(default=None, ge=0)
    token: str | None = None


class KeysQueryServlet(RestServlet):
    PATTERNS = client_patterns("/keys/query")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._keys = hs.get_e2e_keys_handler()

    # POST /_matrix/client/v3/keys/query
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True)
        body = validate_model(KeysQueryBody, parse_json_object(request))
        result = await self._keys.query_keys(requester.user_id, body.device_keys,
                                             body.timeout)
        return 200, {"device_keys": result.device_keys, "master_keys": result.master_keys,
                     "self_signing_keys": result.self_signing_keys,
                     "user_signing_keys": result.user_signing_keys,
                     "failures": result.failures}


class KeysClaimBody(RequestBody):
    one_time_keys: dict[UserIdText, dict[str, Algorithm]] = pydantic.Field(
        max_length=MAX_QUERY_USERS)
    timeout: int | None = pydantic.Field(default=None, ge=0)


class KeysClaimServlet(RestServlet):
    PATTERNS = client_patterns("/keys/claim")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._keys = hs.get_e2e_keys_handler()

    # POST /_matrix/client/v3/keys/claim
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        await self._auth.get_user_by_req(request, allow_guest=True)
        body = validate_model(KeysClaimBody, parse_json_object(request))
        result = await self._keys.claim_keys(body.one_time_keys, body.timeout)
        return 200, {"one_time_keys": result.one_time_keys, "failures": result.failures}


class KeysChangesServlet(RestServlet):
    PATTERNS = client_patterns("/keys/changes")

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._keys = hs.get_e2e_keys_handler()

    # GET /_matrix/client/v3/keys/changes?from=&to=
    async def on_GET(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request, allow_guest=True)
        from_token = parse_string(request, "from", required=True)
        to_token = parse_string(request, "to", required=True)
        assert from_token is not None and to_token is not None
        changed, left = await self._keys.get_key_changes(requester.user_id, from_token,
                                                         to_token)
        return 200, {"changed": changed, "left": left}


class CrossSigningKeyBody(RequestBody):
    user_id: str
    usage: list[Annotated[str, pydantic.StringConstraints(max_length=100)]] = \
        pydantic.Field(min_length=1, max_length=10)
    keys: dict[KeyId, KeyText] = pydantic.Field(min_length=1, max_length=10)
    signatures: Signatures | None = None


class SigningKeysUploadBody(RequestBody):
    master_key: CrossSigningKeyBody | None = None
    self_signing_key: CrossSigningKeyBody | None = None
    user_signing_key: CrossSigningKeyBody | None = None
    auth: dict[str, Any] | None = None


class SigningKeysUploadServlet(RestServlet):
    PATTERNS = client_patterns("/keys/device_signing/upload", unstable=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._ui_auth = hs.get_ui_auth_handler()
        self._cross_signing = hs.get_cross_signing_handler()

    # POST /_matrix/client/v3/keys/device_signing/upload
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        raw = parse_json_object(request)
        body = validate_model(SigningKeysUploadBody, raw)
        keys = {t: raw[f"{t}_key"] for t in ("master", "self_signing", "user_signing")
                if getattr(body, f"{t}_key") is not None}
        if await self._cross_signing.upload_needs_auth(requester.user_id, keys):
            await self._ui_auth.check_ui_auth(
                request, raw, [["m.login.password"]], "reset your cross-signing keys",
                for_user_id=requester.user_id)
        await self._cross_signing.upload_signing_keys(requester.user_id, keys)
        return 200, {}


class SignaturesUploadBody(pydantic.RootModel[
        dict[UserIdText, dict[Annotated[str, pydantic.StringConstraints(max_length=255)],
                              dict[str, Any]]]]):
    model_config = pydantic.ConfigDict(strict=True, frozen=True)


class SignaturesUploadServlet(RestServlet):
    PATTERNS = client_patterns("/keys/signatures/upload", unstable=True)

    def __init__(self, hs: HomeServer) -> None:
        self._auth = hs.get_auth()
        self._cross_signing = hs.get_cross_signing_handler()

    # POST /_matrix/client/v3/keys/signatures/upload
    async def on_POST(self, request: HttpRequest) -> tuple[int, Any]:
        requester = await self._auth.get_user_by_req(request)
        body = validate_model(SignaturesUploadBody, parse_json_object(request))
        failures = await self._cross_signing.upload_signatures(requester.user_id, body.root)
        return 200, {"failures": failures}


def register_servlets(hs: HomeServer, router: Router) -> None:
    KeysUploadServlet(hs).register(router)
    KeysQueryServlet(hs).register(router)
    KeysClaimServlet(hs).register(router)
    KeysChangesServlet(hs).register(router)
    SigningKeysUploadServlet(hs).register(router)
    SignaturesUploadServlet(hs).register(router)
