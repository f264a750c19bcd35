"""Server ACLs (`m.room.server_acl`): may a server take part in a room?

Pure: the caller passes the ACL event's content (or None when the room has none). The
order of the checks is the event schema's (client-server "Server Access Control Lists"):
no ACL → allow; an IP literal while `allow_ip_literals` is false → deny; a `deny` match →
deny; an `allow` match → allow; otherwise deny. Globs (`*`, `?`) match case-insensitively
and against the host without its port.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

ACL_EVENT_TYPE = "m.room.server_acl"


def server_host(server_name: str) -> str:
    """The server name without its port (`[::1]:8448` → `[::1]`, `a.org:80` → `a.org`)."""
    if server_name.startswith("["):
        end = server_name.find("]")
        return server_name[:end + 1] if end != -1 else server_name
    return server_name.rsplit(":", 1)[0] if ":" in server_name else server_name


def _is_ip_literal(host: str) -> bool:
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _glob_regex(glob: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _matches_any(host: str, globs: Any) -> bool:
    if not isinstance(globs, list):
        return False
    return any(isinstance(g, str) and _glob_regex(g).fullmatch(host) for g in globs)


def is_server_allowed(server_name: str, acl_content: Mapping[str, Any] | None) -> bool:
    """Whether `server_name` passes the room's ACL (`acl_content`; None: no ACL event)."""
    if acl_content is None:
        return True
    host = server_host(server_name)
    allow_ip = acl_content.get("allow_ip_literals", True)
    if allow_ip is False and _is_ip_literal(host):
        return False
    if _matches_any(host, acl_content.get("deny", [])):
        return False
    return _matches_any(host, acl_content.get("allow", []))
