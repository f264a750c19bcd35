"""Authenticating inbound federation requests (`Authorization: X-Matrix`) and the servlet
base class every federation endpoint uses."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from signedjson.sign import SignatureVerifyException

from federation.auth import parse_x_matrix, verify_request
from federation.keyring import KeyRingError
from homeserver.errors import Codes, MatrixError
from homeserver.json_decode import JsonDecodeError, decode_json
from rest.http import HttpRequest, RestServlet

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

FEDERATION_V1 = "/_matrix/federation/v1"
FEDERATION_V2 = "/_matrix/federation/v2"


def federation_patterns(path_regex: str, version: str = FEDERATION_V1) -> tuple[str, ...]:
    return (f"^{version}{path_regex}$",)


class FederationAuth:
    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        self._clock = hs.get_clock()
        self._keyring = hs.get_keyring()

    async def authenticate(self, request: HttpRequest) -> str:
        """Check the request's X-Matrix signature; returns the origin server name.

        Raises:
            MatrixError: 401 M_UNAUTHORIZED for a missing, malformed or wrong signature
                or one by a key we cannot find; 400 M_NOT_JSON for a body that is not JSON.
        """
        header = request.headers.get("authorization", "")
        if not header.startswith("X-Matrix"):
            raise MatrixError(401, Codes.UNAUTHORIZED, "Missing X-Matrix Authorization header")
        try:
            auth = parse_x_matrix(header)
        except ValueError as e:
            raise MatrixError(401, Codes.UNAUTHORIZED, f"Bad X-Matrix header: {e}") from None
        if auth.destination is not None and auth.destination != self._server_name:
            raise MatrixError(401, Codes.UNAUTHORIZED,
                              f"Request is for {auth.destination}, not this server")
        content: Any = None
        if request.body:
            try:
                content = decode_json(request.body)
            except JsonDecodeError:
                raise MatrixError(400, Codes.NOT_JSON, "Content not JSON") from None
        try:
            key = await self._keyring.get_verify_key(auth.origin, auth.key,
                                                     self._clock.time_msec())
            verify_request(auth, request.method, request.uri or request.path, content,
                           key)  # type: ignore[arg-type]  # signedjson's alias of nacl's
        except (KeyRingError, SignatureVerifyException, ValueError) as e:
            logger.info("Refused federation request from %s: %s", auth.origin, e)
            raise MatrixError(401, Codes.UNAUTHORIZED,
                              f"Invalid signature from {auth.origin}") from None
        return auth.origin


class FederationServlet(RestServlet):
    """A federation endpoint: `on_<METHOD>(request, origin, **path_args)` after auth,
    inside the origin's `rc_federation` limits unless `RATELIMIT` is false."""

    RATELIMIT = True

    def __init__(self, hs: HomeServer) -> None:
        self._fed_auth = hs.get_federation_auth()
        self._ratelimiter = hs.get_federation_ratelimiter()

    def register(self, router: Any) -> None:
        for method in ("GET", "PUT", "POST", "DELETE"):
            handler = getattr(self, f"on_{method}_authed", None)
            if handler is None:
                continue

            def make(h: Any) -> Any:
                async def authed(request: HttpRequest, **kwargs: Any) -> Any:
                    origin = await self._fed_auth.authenticate(request)
                    if not self.RATELIMIT:
                        return await h(request, origin, **kwargs)
                    async with self._ratelimiter.ratelimit(origin):
                        return await h(request, origin, **kwargs)
                return authed

            setattr(self, f"on_{method}", make(handler))
        super().register(router)
