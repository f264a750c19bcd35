"""Matrix identifiers and their grammars (appendices: "Identifier Grammar")."""

from __future__ import annotations

import re

import attrs

from homeserver.errors import Codes, MatrixError

# Historical user IDs allow any printable ASCII except ':' in the localpart; new
# registrations are restricted to the current grammar below.
_LOCALPART_RE = re.compile(r"[a-z0-9._=\-/+]+")
_HISTORICAL_LOCALPART_RE = re.compile(r"[!-9;-~]+")
_DNS_NAME_RE = re.compile(r"[A-Za-z0-9\-.]{1,255}")
_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]")

MAX_USERID_LENGTH = 255


def is_valid_server_name(name: str) -> bool:
    """`server_name = hostname [ ":" port ]`; hostname is an IPv4 literal, an IPv6 literal in
    brackets, or a DNS name."""
    host, port = name, None
    if name.startswith("["):
        end = name.find("]")
        if end == -1:
            return False
        host, rest = name[: end + 1], name[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return False
            port = rest[1:]
        if not _IPV6_RE.fullmatch(host):
            return False
    else:
        if ":" in name:
            host, port = name.rsplit(":", 1)
        if not (_IPV4_RE.fullmatch(host) or _DNS_NAME_RE.fullmatch(host)):
            return False
    if port is not None:
        if not port.isdigit() or not 1 <= len(port) <= 5 or int(port) > 65535:
            return False
    return True


def is_valid_localpart(localpart: str) -> bool:
    """The grammar for new user IDs: lowercase letters, digits and `._=-/+`."""
    return bool(_LOCALPART_RE.fullmatch(localpart))


@attrs.frozen(slots=True)
class UserID:
    """A user ID, `@localpart:server_name`, e.g. `@alice:example.org`."""

    localpart: str
    domain: str

    @classmethod
    def parse(cls, s: str) -> UserID:
        """Parse a user ID, accepting historical localparts; raise M_INVALID_PARAM if bad."""
        if (not isinstance(s, str) or len(s) > MAX_USERID_LENGTH or not s.startswith("@")
                or ":" not in s):
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid user ID: {s!r}")
        localpart, domain = s[1:].split(":", 1)
        if not _HISTORICAL_LOCALPART_RE.fullmatch(localpart) or not is_valid_server_name(domain):
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid user ID: {s!r}")
        return cls(localpart, domain)

    @classmethod
    def is_valid(cls, s: str) -> bool:
        try:
            cls.parse(s)
            return True
        except MatrixError:
            return False

    def __str__(self) -> str:
        return f"@{self.localpart}:{self.domain}"

    def to_string(self) -> str:
        return str(self)
