"""The Synapse-compatible admin API, under `/_synapse/admin/`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from homeserver.errors import Codes, MatrixError
from rest.http import parse_integer, parse_string

if TYPE_CHECKING:
    from rest.http import HttpRequest


def admin_patterns(path_regex: str, version: str = "v1") -> tuple[str, ...]:
    """The regex for an admin API path, e.g. `/_synapse/admin/v1/registration_tokens`."""
    return (f"^/_synapse/admin/{re.escape(version)}{path_regex}$",)


def parse_paging(request: HttpRequest, default_limit: int = 100) -> tuple[int, int]:
    """`from` and `limit` as Synapse's admin lists take them: integers >= 0 (else 400)."""
    start = parse_integer(request, "from", default=0, minimum=0)
    limit = parse_integer(request, "limit", default=default_limit, minimum=0)
    assert start is not None and limit is not None
    return start, limit


def parse_direction(request: HttpRequest) -> str:
    """`dir`: "f" (default) or "b"; anything else is 400 M_INVALID_PARAM."""
    direction = parse_string(request, "dir", default="f")
    if direction not in ("f", "b"):
        raise MatrixError(400, Codes.INVALID_PARAM, "Unknown direction: must be f or b")
    return direction


def next_token(start: int, returned: int, limit: int, total: int) -> dict[str, str]:
    """`{"next_token": ...}` while more rows follow, as Synapse sends it (a string)."""
    return {"next_token": str(start + returned)} if start + limit < total else {}
