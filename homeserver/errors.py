"""Matrix errors: one exception type rendered to `{"errcode", "error"}` in exactly one place."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class Codes:
    """The `errcode` values we send (client-server spec, "Standard error response")."""

    FORBIDDEN = "M_FORBIDDEN"
    UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"
    MISSING_TOKEN = "M_MISSING_TOKEN"
    USER_LOCKED = "M_USER_LOCKED"
    USER_SUSPENDED = "M_USER_SUSPENDED"
    BAD_JSON = "M_BAD_JSON"
    NOT_JSON = "M_NOT_JSON"
    NOT_FOUND = "M_NOT_FOUND"
    LIMIT_EXCEEDED = "M_LIMIT_EXCEEDED"
    UNRECOGNIZED = "M_UNRECOGNIZED"
    UNKNOWN = "M_UNKNOWN"
    UNAUTHORIZED = "M_UNAUTHORIZED"
    USER_DEACTIVATED = "M_USER_DEACTIVATED"
    USER_IN_USE = "M_USER_IN_USE"
    INVALID_USERNAME = "M_INVALID_USERNAME"
    ROOM_IN_USE = "M_ROOM_IN_USE"
    INVALID_ROOM_STATE = "M_INVALID_ROOM_STATE"
    THREEPID_IN_USE = "M_THREEPID_IN_USE"
    THREEPID_NOT_FOUND = "M_THREEPID_NOT_FOUND"
    SERVER_NOT_TRUSTED = "M_SERVER_NOT_TRUSTED"
    UNSUPPORTED_ROOM_VERSION = "M_UNSUPPORTED_ROOM_VERSION"
    INCOMPATIBLE_ROOM_VERSION = "M_INCOMPATIBLE_ROOM_VERSION"
    UNABLE_TO_AUTHORISE_JOIN = "M_UNABLE_TO_AUTHORISE_JOIN"
    UNABLE_TO_GRANT_JOIN = "M_UNABLE_TO_GRANT_JOIN"
    BAD_STATE = "M_BAD_STATE"
    GUEST_ACCESS_FORBIDDEN = "M_GUEST_ACCESS_FORBIDDEN"
    MISSING_PARAM = "M_MISSING_PARAM"
    INVALID_PARAM = "M_INVALID_PARAM"
    TOO_LARGE = "M_TOO_LARGE"
    EXCLUSIVE = "M_EXCLUSIVE"
    RESOURCE_LIMIT_EXCEEDED = "M_RESOURCE_LIMIT_EXCEEDED"
    WEAK_PASSWORD = "M_WEAK_PASSWORD"
    CAPTCHA_NEEDED = "M_CAPTCHA_NEEDED"
    INVALID_SIGNATURE = "M_INVALID_SIGNATURE"
    PROFILE_TOO_LARGE = "M_PROFILE_TOO_LARGE"
    KEY_TOO_LARGE = "M_KEY_TOO_LARGE"
    WRONG_ROOM_KEYS_VERSION = "M_WRONG_ROOM_KEYS_VERSION"
    INVITE_BLOCKED = "M_INVITE_BLOCKED"


class MatrixError(Exception):
    """An error that a client or server sees as an HTTP status plus a Matrix error body.

    Args:
        code: the HTTP status.
        errcode: the Matrix `errcode`, one of `Codes`.
        msg: a human-readable `error` string.
        **extra: further top-level fields of the body (e.g. `soft_logout`).
    """

    def __init__(self, code: int, errcode: str, msg: str, **extra: Any) -> None:
        super().__init__(f"{code} {errcode}: {msg}")
        self.code = int(code)
        self.errcode = errcode
        self.msg = msg
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.msg, **self.extra}


class NotFoundError(MatrixError):
    def __init__(self, msg: str = "Not found", errcode: str = Codes.NOT_FOUND) -> None:
        super().__init__(HTTPStatus.NOT_FOUND, errcode, msg)


class ForbiddenError(MatrixError):
    def __init__(self, msg: str, errcode: str = Codes.FORBIDDEN) -> None:
        super().__init__(HTTPStatus.FORBIDDEN, errcode, msg)


class BadRequestError(MatrixError):
    def __init__(self, msg: str, errcode: str = Codes.INVALID_PARAM, **extra: Any) -> None:
        super().__init__(HTTPStatus.BAD_REQUEST, errcode, msg, **extra)


class LimitExceededError(MatrixError):
    """429 with `retry_after_ms` in the body (and a Retry-After header, added by the renderer)."""

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(
            HTTPStatus.TOO_MANY_REQUESTS,
            Codes.LIMIT_EXCEEDED,
            "Too many requests",
            retry_after_ms=int(retry_after_ms),
        )
        self.retry_after_ms = int(retry_after_ms)


class InteractiveAuthIncomplete(Exception):
    """User-interactive auth needs another stage: rendered as 401 with the UIA body."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("interactive auth incomplete")
        self.body = body


class ConfigError(Exception):
    """The configuration is unusable; the message names the key and what was expected."""
