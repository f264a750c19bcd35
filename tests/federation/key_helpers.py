"""Fake remote servers for key ring tests: signing keys, key responses, a scripted fetcher."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import signedjson.key
from signedjson.sign import sign_json

DAY_MS = 24 * 3600 * 1000


@attrs.define
class FakeServer:
    """A remote server with one current signing key (and optionally old ones)."""

    name: str
    version: str = "k1"
    key: Any = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.key is None:
            self.key = signedjson.key.generate_signing_key(self.version)

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.version}"

    @property
    def verify_key_b64(self) -> str:
        return str(signedjson.key.encode_verify_key_base64(self.key.verify_key))

    def key_response(self, valid_until_ts: int, old: dict[str, Any] | None = None,
                     server_name: str | None = None) -> dict[str, Any]:
        body = {
            "server_name": server_name or self.name,
            "valid_until_ts": valid_until_ts,
            "verify_keys": {self.key_id: {"key": self.verify_key_b64}},
            "old_verify_keys": old or {},
        }
        return sign_json(body, self.name, self.key)

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        return sign_json(copy.deepcopy(obj), self.name, self.key)


@attrs.define
class ScriptedFetcher:
    """Answers `(server, path)` from `routes` (a value, or an exception to raise) and
    records every call; unknown routes fail like an unreachable server."""

    routes: dict[tuple[str, str], Any] = attrs.Factory(dict)
    calls: list[tuple[str, str, Any]] = attrs.Factory(list)

    async def __call__(self, server_name: str, path: str, body: dict[str, Any] | None) -> Any:
        self.calls.append((server_name, path, copy.deepcopy(body)))
        answer = self.routes.get((server_name, path))
        if answer is None:
            raise ConnectionError(f"{server_name} unreachable")
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(body)
        return copy.deepcopy(answer)
