"""Matrix identifiers and their grammars (appendices: "Identifier Grammar")."""

from __future__ import annotations

import re

import attrs

from homeserver.errors import Codes, MatrixError
from homeserver.room_versions import EventFormat, RoomVersion

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


# Room IDs, event IDs, aliases, event types and state keys (appendices: "Room IDs",
# "Room Aliases", "Event IDs"; client-server-api: "Size limits").

MAX_IDENTIFIER_BYTES = 255
#: `type` and `state_key` of an event must not exceed 255 bytes.
MAX_EVENT_KEY_BYTES = 255

# A reference hash (SHA-256) in unpadded base64 is 43 characters.
_HASH_STD_RE = re.compile(r"[A-Za-z0-9+/]{43}")
_HASH_URLSAFE_RE = re.compile(r"[A-Za-z0-9_\-]{43}")
_HASH_ANY_RE = re.compile(r"[A-Za-z0-9+/_\-]{43}")


def _utf8_len(s: str) -> int | None:
    """Length in UTF-8 bytes, or None if `s` holds a lone surrogate (not a valid code point)."""
    try:
        return len(s.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _is_valid_opaque_localpart(localpart: str) -> bool:
    """Historical localparts of room IDs and aliases: any code point except `:` and NUL."""
    return ":" not in localpart and "\x00" not in localpart


def _split_domain_id(s: object, sigil: str, what: str) -> tuple[str, str]:
    """Split `&localpart:domain`, checking the sigil, the byte length and the server name."""
    if not isinstance(s, str) or not s.startswith(sigil) or ":" not in s:
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid {what}: {s!r}")
    size = _utf8_len(s)
    localpart, domain = s[1:].split(":", 1)
    if (size is None or size > MAX_IDENTIFIER_BYTES or not _is_valid_opaque_localpart(localpart)
            or not is_valid_server_name(domain)):
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid {what}: {s!r}")
    return localpart, domain


@attrs.frozen(slots=True)
class RoomID:
    """A room ID: `!opaque:server_name` (e.g. `!abc:example.org`) in room versions 1–11;
    `!` + the URL-safe unpadded base64 reference hash of the create event, with no server
    part (e.g. `!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM`), from v12.

    `domain` is None for the v12 form.
    """

    opaque_id: str
    domain: str | None = None

    @classmethod
    def parse(cls, s: str, room_version: RoomVersion | None = None) -> RoomID:
        """Parse either form; with `room_version`, only the form that version uses.

        Raises:
            MatrixError: 400 M_INVALID_PARAM.
        """
        if isinstance(s, str) and s.startswith("!") and ":" not in s:
            if not _HASH_URLSAFE_RE.fullmatch(s[1:]) or (
                    room_version is not None and not room_version.room_id_from_create_event):
                raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid room ID: {s!r}")
            return cls(s[1:], None)
        opaque_id, domain = _split_domain_id(s, "!", "room ID")
        if room_version is not None and room_version.room_id_from_create_event:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid room ID: {s!r}")
        return cls(opaque_id, domain)

    @classmethod
    def is_valid(cls, s: str, room_version: RoomVersion | None = None) -> bool:
        try:
            cls.parse(s, room_version)
            return True
        except MatrixError:
            return False

    def __str__(self) -> str:
        return f"!{self.opaque_id}" if self.domain is None else f"!{self.opaque_id}:{self.domain}"

    def to_string(self) -> str:
        return str(self)


@attrs.frozen(slots=True)
class EventID:
    """An event ID: `$opaque:server_name` in room versions 1–2 (e.g. `$abc:example.org`);
    `$` + the unpadded base64 reference hash from v3 (standard alphabet in v3, URL-safe
    from v4, e.g. `$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg`).

    `domain` is None for the hash forms.
    """

    opaque_id: str
    domain: str | None = None

    @classmethod
    def parse(cls, s: str, room_version: RoomVersion | None = None) -> EventID:
        """Parse any form; with `room_version`, only the form that version uses.

        Raises:
            MatrixError: 400 M_INVALID_PARAM.
        """
        if isinstance(s, str) and s.startswith("$") and ":" not in s:
            fmt = room_version.event_format if room_version is not None else None
            pattern = {None: _HASH_ANY_RE, EventFormat.V2: _HASH_STD_RE,
                       EventFormat.V3: _HASH_URLSAFE_RE}.get(fmt)
            if pattern is None or not pattern.fullmatch(s[1:]):
                raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid event ID: {s!r}")
            return cls(s[1:], None)
        opaque_id, domain = _split_domain_id(s, "$", "event ID")
        if room_version is not None and room_version.uses_reference_hash_event_ids:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid event ID: {s!r}")
        return cls(opaque_id, domain)

    @classmethod
    def is_valid(cls, s: str, room_version: RoomVersion | None = None) -> bool:
        try:
            cls.parse(s, room_version)
            return True
        except MatrixError:
            return False

    def __str__(self) -> str:
        return f"${self.opaque_id}" if self.domain is None else f"${self.opaque_id}:{self.domain}"

    def to_string(self) -> str:
        return str(self)


@attrs.frozen(slots=True)
class RoomAlias:
    """A room alias, `#localpart:server_name`, e.g. `#matrix:example.org`."""

    localpart: str
    domain: str

    @classmethod
    def parse(cls, s: str) -> RoomAlias:
        """Parse an alias; the localpart is any non-empty text without `:` or NUL.

        Raises:
            MatrixError: 400 M_INVALID_PARAM.
        """
        localpart, domain = _split_domain_id(s, "#", "room alias")
        if not localpart:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid room alias: {s!r}")
        return cls(localpart, domain)

    @classmethod
    def is_valid(cls, s: str) -> bool:
        try:
            cls.parse(s)
            return True
        except MatrixError:
            return False

    def __str__(self) -> str:
        return f"#{self.localpart}:{self.domain}"

    def to_string(self) -> str:
        return str(self)


def is_valid_event_type(event_type: object) -> bool:
    """An event `type`: a non-empty string of at most 255 bytes in UTF-8."""
    if not isinstance(event_type, str) or not event_type:
        return False
    size = _utf8_len(event_type)
    return size is not None and size <= MAX_EVENT_KEY_BYTES


def is_valid_state_key(state_key: object) -> bool:
    """A `state_key`: a string (empty is the common case) of at most 255 bytes in UTF-8."""
    if not isinstance(state_key, str):
        return False
    size = _utf8_len(state_key)
    return size is not None and size <= MAX_EVENT_KEY_BYTES
