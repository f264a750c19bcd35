"""Requests, servlets, the router and the request-parsing helpers.

A servlet declares `PATTERNS` (regexes with named groups for path parameters) and
`on_GET`/`on_PUT`/... methods that take the `HttpRequest` plus the decoded path
parameters and return `(status, json_dict)`. The router renders every error — a
`MatrixError`, a UIA challenge, or an unexpected exception — in exactly one place.
"""

from __future__ import annotations

import contextvars
import io
import json
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from typing import IO, Any, TypeVar

import attrs
import pydantic

from homeserver.errors import (
    Codes,
    InteractiveAuthIncomplete,
    LimitExceededError,
    MatrixError,
)
from homeserver.json_decode import JsonDecodeError, decode_json

logger = logging.getLogger(__name__)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"),
    # Tus-* and Upload-*: browser tus clients of the resumable upload API
    ("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization, Date, "
     "Tus-Resumable, Upload-Length, Upload-Metadata, Upload-Offset"),
    ("Access-Control-Expose-Headers", "Synapse-Trace-Id, Server, Location, Tus-Resumable, "
     "Tus-Version, Tus-Extension, Tus-Max-Size, Upload-Offset, Upload-Length, "
     "Upload-Expires, Upload-Metadata, Io-Axon-Content-Uri"),
)

#: HEAD falls back to on_GET and OPTIONS to an empty 200 when a servlet has no own method
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS")


@attrs.define(slots=True)
class HttpRequest:
    """One HTTP request, independent of the transport that carried it."""

    method: str
    #: the path as sent, still percent-encoded
    path: str
    query: dict[str, list[str]]
    #: header names lower-cased
    headers: dict[str, str]
    body: bytes
    client_ip: str
    request_id: str = "-"
    #: set by `Auth.get_user_by_req` once the access token is checked
    requester: Any = None
    #: the request target exactly as sent (path and query), which X-Matrix signatures cover
    uri: str = ""
    #: the body as a file (Twisted's spool) for paths whose bodies are streamed
    #: (`rest/resource.py` STREAMED_BODY_PREFIXES); `body` is then empty
    content: IO[bytes] | None = None

    @property
    def user_agent(self) -> str:
        return self.headers.get("user-agent", "")

    def body_file(self) -> IO[bytes]:
        """The body as a readable file from its start, whether streamed or in `body`."""
        if self.content is None:
            return io.BytesIO(self.body)
        self.content.seek(0)
        return self.content


@attrs.frozen(slots=True)
class FileRange:
    """`length` bytes of the local file `path` from `offset`, part of a streamed body."""

    path: str
    offset: int
    length: int


@attrs.frozen(slots=True)
class StreamedBody:
    """A response body written piece by piece: bytes as they are, files streamed from disk
    (never read whole into memory)."""

    parts: tuple[bytes | FileRange, ...]

    @property
    def length(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p.length for p in self.parts)

    def read_all(self) -> bytes:
        """The whole body in memory (tests only)."""
        out = []
        for part in self.parts:
            if isinstance(part, bytes):
                out.append(part)
            else:
                with open(part.path, "rb") as f:
                    f.seek(part.offset)
                    out.append(f.read(part.length))
        return b"".join(out)


@attrs.define(slots=True)
class HttpResponse:
    code: int
    body: bytes
    headers: list[tuple[str, str]] = attrs.Factory(list)
    content_type: str = "application/json"
    #: set instead of `body` for large bodies (media downloads)
    stream: StreamedBody | None = None


ServletResult = tuple[int, Any] | HttpResponse


class RestServlet:
    """Base of every servlet: `PATTERNS` plus `on_<METHOD>` coroutines."""

    PATTERNS: tuple[str, ...] = ()

    def register(self, router: Router) -> None:
        router.register(self)


def client_patterns(path_regex: str, releases: Iterable[str] = ("r0", "v3"),
                    unstable: bool = False, v1: bool = False) -> tuple[str, ...]:
    """Regexes for a client-server API path under each of its version prefixes."""
    versions = list(releases)
    if v1:
        versions.append("v1")
    if unstable:
        versions.append("unstable")
    prefix = "/_matrix/client/(?:" + "|".join(re.escape(v) for v in versions) + ")"
    return (f"^{prefix}{path_regex}$",)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(code: int, obj: Any, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    return HttpResponse(code=code, body=_json_bytes(obj), headers=list(headers))


def error_response(e: MatrixError) -> HttpResponse:
    headers = []
    if isinstance(e, LimitExceededError):
        headers.append(("Retry-After", str(max(1, (e.retry_after_ms + 999) // 1000))))
    return json_response(e.code, e.to_json(), headers)


Handler = Callable[..., Awaitable[ServletResult]]


class Router:
    """Maps (method, path) to servlet methods and renders results and errors."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

    def register(self, servlet: RestServlet) -> None:
        methods = {
            m: getattr(servlet, f"on_{m}") for m in METHODS if hasattr(servlet, f"on_{m}")
        }
        if "GET" in methods:
            methods.setdefault("HEAD", methods["GET"])
        for pattern in servlet.PATTERNS:
            self._routes.append((re.compile(pattern), methods))

    def _match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        path_matched = False
        for regex, methods in self._routes:
            m = regex.match(path)
            if not m:
                continue
            path_matched = True
            handler = methods.get(method)
            if handler is not None:
                args = {
                    k: urllib.parse.unquote(v) for k, v in m.groupdict().items() if v is not None
                }
                return handler, args, True
        return None, {}, path_matched

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Dispatch one request; never raises, never leaks a traceback."""
        token = request_id_var.set(request.request_id)
        try:
            response = await self._dispatch(request)
        finally:
            request_id_var.reset(token)
        response.headers.extend(CORS_HEADERS)
        return response

    async def _dispatch(self, request: HttpRequest) -> HttpResponse:
        try:
            handler, args, path_matched = self._match(request.method, request.path)
            if handler is None and request.method == "OPTIONS":
                return json_response(200, {})
            if handler is None:
                if path_matched:
                    raise MatrixError(405, Codes.UNRECOGNIZED, "Unrecognized request method")
                raise MatrixError(404, Codes.UNRECOGNIZED, "Unrecognized request")
            result = await handler(request, **args)
        except MatrixError as e:
            if e.code >= 500:
                logger.error("%s %s: %s", request.method, request.path, e)
            return error_response(e)
        except InteractiveAuthIncomplete as e:
            return json_response(401, e.body)
        except Exception:
            logger.exception("Unhandled error in %s %s", request.method, request.path)
            return json_response(
                500, {"errcode": Codes.UNKNOWN, "error": "Internal server error"}
            )
        if isinstance(result, HttpResponse):
            return result
        code, obj = result
        return json_response(code, obj)


# --- request parsing -----------------------------------------------------------------------


def parse_json_value(request: HttpRequest, allow_empty_body: bool = False) -> Any:
    """The body as JSON; 400 M_NOT_JSON if it is not JSON (or is empty, unless allowed)."""
    if not request.body.strip():
        if allow_empty_body:
            return None
        raise MatrixError(400, Codes.NOT_JSON, "Content not JSON")
    try:
        return decode_json(request.body)
    except JsonDecodeError as e:
        raise MatrixError(400, Codes.NOT_JSON, f"Content not JSON: {e}") from None


def parse_json_object(request: HttpRequest, allow_empty_body: bool = False) -> dict[str, Any]:
    """The body as a JSON object; 400 M_BAD_JSON if it is JSON but not an object."""
    value = parse_json_value(request, allow_empty_body)
    if value is None and allow_empty_body:
        return {}
    if not isinstance(value, dict):
        raise MatrixError(400, Codes.BAD_JSON, "Content must be a JSON object")
    return value


M = TypeVar("M", bound=pydantic.BaseModel)


class RequestBody(pydantic.BaseModel):
    """Base of request-body models: strict types (no "1" → 1), unknown fields kept."""

    model_config = pydantic.ConfigDict(strict=True, extra="allow", frozen=True)


def validate_model(model: type[M], value: Any) -> M:
    """Validate a JSON value against a model, with the spec's error codes.

    A missing required field gives 400 M_MISSING_PARAM; any other mismatch 400 M_BAD_JSON.
    """
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "missing":
            raise MatrixError(400, Codes.MISSING_PARAM, f"Missing parameter: {where}") from None
        raise MatrixError(400, Codes.BAD_JSON, f"Invalid {where}: {first['msg']}") from None


def parse_body(request: HttpRequest, model: type[M], allow_empty_body: bool = False) -> M:
    """Parse the JSON body into `model` (see `validate_model` for the errors)."""
    return validate_model(model, parse_json_object(request, allow_empty_body))


def parse_string(request: HttpRequest, name: str, default: str | None = None,
                 required: bool = False, allowed_values: Iterable[str] | None = None
                 ) -> str | None:
    values = request.query.get(name)
    if not values:
        if required:
            raise MatrixError(400, Codes.MISSING_PARAM, f"Missing string query parameter {name}")
        return default
    value = values[0]
    if allowed_values is not None and value not in allowed_values:
        raise MatrixError(
            400, Codes.INVALID_PARAM,
            f"Query parameter {name} must be one of {sorted(allowed_values)}",
        )
    return value


def parse_integer(request: HttpRequest, name: str, default: int | None = None,
                  required: bool = False, minimum: int | None = None,
                  maximum: int | None = None) -> int | None:
    raw = parse_string(request, name, required=required)
    if raw is None:
        return default
    if not re.fullmatch(r"-?\d{1,18}", raw):
        raise MatrixError(400, Codes.INVALID_PARAM, f"Query parameter {name} must be an integer")
    value = int(raw)
    if minimum is not None and value < minimum:
        raise MatrixError(400, Codes.INVALID_PARAM, f"Query parameter {name} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise MatrixError(400, Codes.INVALID_PARAM, f"Query parameter {name} must be <= {maximum}")
    return value


def parse_boolean(request: HttpRequest, name: str, default: bool | None = None,
                  required: bool = False) -> bool | None:
    raw = parse_string(request, name, required=required)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM,
                          f"Query parameter {name} must be 'true' or 'false'")
    return raw == "true"
