"""`GET /_matrix/key/v2/server`: our signing key, self-signed (server-server API, "Publishing
Keys")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signedjson.sign import sign_json

from rest.http import HttpRequest, RestServlet, Router

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class LocalKeyServlet(RestServlet):
    # The `/{keyId}` form is deprecated; like Synapse we ignore the key ID and send all keys.
    PATTERNS = ("^/_matrix/key/v2/server(?:/(?P<key_id>[^/]*))?$",)

    def __init__(self, hs: HomeServer) -> None:
        self._server_name = hs.hostname
        self._clock = hs.get_clock()
        self._signing_key = hs.get_signing_key()
        self._refresh_interval_ms = hs.config.key_refresh_interval

    # GET /_matrix/key/v2/server
    async def on_GET(self, request: HttpRequest, key_id: str | None = None) -> tuple[int, Any]:
        key = self._signing_key
        body = {
            "server_name": self._server_name,
            # Signed per request: ed25519 is cheap, and the expiry follows the clock.
            "valid_until_ts": self._clock.time_msec() + self._refresh_interval_ms,
            "verify_keys": {key.key_id: {"key": key.verify_key_base64}},
            "old_verify_keys": {},
        }
        return 200, sign_json(body, self._server_name, key.key)


def register_servlets(hs: HomeServer, router: Router) -> None:
    LocalKeyServlet(hs).register(router)
