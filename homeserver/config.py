"""Configuration: `homeserver.yaml` parsed once at startup into frozen attrs classes.

Keys use Synapse's names where the concept is the same, so a Synapse config loads. An
unknown top-level key is logged as a warning naming it; a bad value of a known key raises
`ConfigError` naming the key and what was expected, which stops startup.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import yaml

from homeserver.errors import ConfigError
from homeserver.media_config import MEDIA_KEYS, MediaConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")
D = TypeVar("D")

_MISSING: Any = object()


# --- value parsers -------------------------------------------------------------------------


def _expect(cond: bool, key: str, expected: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"Config key '{key}': expected {expected}, got {value!r}")


def _str(key: str, value: Any) -> str:
    _expect(isinstance(value, str), key, "a string", value)
    return str(value)


def _opt_str(key: str, value: Any) -> str | None:
    return None if value is None else _str(key, value)


def _bool(key: str, value: Any) -> bool:
    _expect(isinstance(value, bool), key, "true or false", value)
    return bool(value)


def _int(key: str, value: Any) -> int:
    _expect(isinstance(value, int) and not isinstance(value, bool), key, "an integer", value)
    return int(value)


def _number(key: str, value: Any) -> float:
    _expect(
        isinstance(value, int | float) and not isinstance(value, bool), key, "a number", value
    )
    return float(value)


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_DURATION_UNITS = {
    "": 1,
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}


def parse_size(key: str, value: Any) -> int:
    """Sizes as Synapse writes them: an integer of bytes, or "50M", "10K", "1G"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = re.fullmatch(r"(\d+)\s*([KMG]?)", value.strip().upper()) if isinstance(value, str) else None
    _expect(m is not None, key, 'a size like 52428800 or "50M"', value)
    assert m is not None
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


def parse_duration_ms(key: str, value: Any) -> int:
    """Durations as Synapse writes them: an integer of milliseconds, or "5m", "2h", "7d"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = re.fullmatch(r"(\d+)\s*(ms|s|m|h|d|w|y)?", value.strip()) if isinstance(value, str) else None
    _expect(m is not None, key, 'a duration like 300000 or "5m", "2h", "7d"', value)
    assert m is not None
    return int(m.group(1)) * _DURATION_UNITS[m.group(2) or ""]


def _opt(parser: Callable[[str, Any], T]) -> Callable[[str, Any], T | None]:
    def parse(key: str, value: Any) -> T | None:
        return None if value is None else parser(key, value)

    return parse


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    _expect(isinstance(value, dict), key, "a mapping", value)
    return value  # type: ignore[no-any-return]


def _get(section: Mapping[str, Any], prefix: str, name: str, parser: Callable[[str, Any], T],
         default: D) -> T | D:
    if name not in section or section[name] is None:
        return default
    return parser(f"{prefix}{name}", section[name])


# --- sections ------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class RateLimitConfig:
    """A token bucket: `per_second` actions refill, up to `burst_count` at once."""

    per_second: float
    burst_count: float

    @classmethod
    def parse(cls, key: str, value: Any, default: RateLimitConfig) -> RateLimitConfig:
        if value is None:
            return default
        section = _mapping(key, value)
        return cls(
            per_second=_get(section, f"{key}.", "per_second", _number, default.per_second),
            burst_count=_get(section, f"{key}.", "burst_count", _number, default.burst_count),
        )


def _parse_buckets(key: str, value: Any, defaults: Mapping[str, RateLimitConfig]
                   ) -> dict[str, RateLimitConfig]:
    """Named sub-buckets of one `rc_` section (Synapse's nested form, e.g. `rc_joins.local`).

    A flat `{per_second, burst_count}` at the top applies to every bucket; nested buckets
    override it. Any other key stops startup.
    """
    if value is None:
        return dict(defaults)
    section = _mapping(key, value)
    allowed = ("per_second", "burst_count", *defaults)
    for sub in section:
        if sub not in allowed:
            raise ConfigError(f"Config key '{key}.{sub}': expected one of {', '.join(allowed)}")
    flat = {k: v for k, v in section.items() if k in ("per_second", "burst_count")}
    return {
        name: RateLimitConfig.parse(f"{key}.{name}", section.get(name),
                                    RateLimitConfig.parse(key, flat, default))
        for name, default in defaults.items()
    }


@attrs.frozen(slots=True)
class LoginRateLimitConfig:
    """Synapse's `rc_login`: per client address, per account, and per failed attempt."""

    address: RateLimitConfig
    account: RateLimitConfig
    failed_attempts: RateLimitConfig

    @classmethod
    def parse(cls, value: Any) -> LoginRateLimitConfig:
        return cls(**_parse_buckets("rc_login", value, {
            "address": RateLimitConfig(0.003, 5),
            "account": RateLimitConfig(0.003, 5),
            "failed_attempts": RateLimitConfig(0.17, 3),
        }))


@attrs.frozen(slots=True)
class JoinsRateLimitConfig:
    """Synapse's `rc_joins`: joins per user to rooms this server is in, and to others."""

    local: RateLimitConfig
    remote: RateLimitConfig

    @classmethod
    def parse(cls, value: Any) -> JoinsRateLimitConfig:
        return cls(**_parse_buckets("rc_joins", value, {
            "local": RateLimitConfig(0.1, 10),
            "remote": RateLimitConfig(0.01, 10),
        }))


@attrs.frozen(slots=True)
class InvitesRateLimitConfig:
    """Synapse's `rc_invites`: invites per room, per invited user and per inviter."""

    per_room: RateLimitConfig
    per_user: RateLimitConfig
    per_issuer: RateLimitConfig

    @classmethod
    def parse(cls, value: Any) -> InvitesRateLimitConfig:
        return cls(**_parse_buckets("rc_invites", value, {
            "per_room": RateLimitConfig(0.3, 10),
            "per_user": RateLimitConfig(0.003, 5),
            "per_issuer": RateLimitConfig(0.3, 10),
        }))


@attrs.frozen(slots=True)
class RcFederationConfig:
    """Synapse's `rc_federation`, per origin server: more than `sleep_limit` requests in
    `window_size` ms are each delayed by `sleep_delay` ms; at most `concurrent` are
    processed at once; once more than `reject_limit` wait, the next gets 429."""

    window_size: int = 1000
    sleep_limit: int = 10
    sleep_delay: int = 500
    reject_limit: int = 50
    concurrent: int = 3

    @classmethod
    def parse(cls, value: Any) -> RcFederationConfig:
        if value is None:
            return cls()
        section = _mapping("rc_federation", value)
        fields = ("window_size", "sleep_limit", "sleep_delay", "reject_limit", "concurrent")
        for sub in section:
            if sub not in fields:
                raise ConfigError(
                    f"Config key 'rc_federation.{sub}': expected one of {', '.join(fields)}")
        default = cls()
        parsed: dict[str, int] = {}
        for name in fields:
            number = _get(section, "rc_federation.", name, _int, getattr(default, name))
            # A window of 0 ms or no concurrency would refuse or stall every request.
            lowest = 1 if name in ("window_size", "concurrent") else 0
            _expect(number >= lowest, f"rc_federation.{name}", f"an integer >= {lowest}",
                    number)
            parsed[name] = number
        return cls(**parsed)


#: 200 PDUs' worth (Synapse's MAX_REQUEST_SIZE): a full transaction of 50 PDUs of 64 KiB
#: and 100 EDUs (Synapse keeps each under 64 KiB) with room for non-canonical encoding.
DEFAULT_FEDERATION_MAX_REQUEST_BODY_SIZE = 200 * 65536


@attrs.frozen(slots=True)
class ListenerConfig:
    port: int
    bind_addresses: tuple[str, ...]
    type: str
    tls: bool
    x_forwarded: bool
    resources: tuple[str, ...]

    @classmethod
    def parse(cls, key: str, value: Any) -> ListenerConfig:
        section = _mapping(key, value)
        port = _get(section, f"{key}.", "port", _int, _MISSING)
        _expect(port is not _MISSING and 0 <= port <= 65535, f"{key}.port",
                "a port number 0-65535", section.get("port"))
        binds = section.get("bind_addresses", ["::", "0.0.0.0"])
        if "bind_address" in section:
            binds = [section["bind_address"]]
        _expect(isinstance(binds, list) and all(isinstance(b, str) for b in binds),
                f"{key}.bind_addresses", "a list of addresses", binds)
        type_ = _get(section, f"{key}.", "type", _str, "http")
        _expect(type_ in ("http", "metrics"), f"{key}.type", "'http' or 'metrics'", type_)
        names: list[str] = []
        for i, res in enumerate(section.get("resources") or [{"names": ["client", "federation"]}]):
            res_map = _mapping(f"{key}.resources[{i}]", res)
            res_names = res_map.get("names", [])
            _expect(isinstance(res_names, list) and all(isinstance(n, str) for n in res_names),
                    f"{key}.resources[{i}].names", "a list of names", res_names)
            names.extend(res_names)
        return cls(
            port=port,
            bind_addresses=tuple(binds),
            type=type_,
            tls=_get(section, f"{key}.", "tls", _bool, False),
            x_forwarded=_get(section, f"{key}.", "x_forwarded", _bool, False),
            resources=tuple(names),
        )


@attrs.frozen(slots=True)
class DatabaseConfig:
    """`database: {name: sqlite3|psycopg2, args: {...}}`, as in Synapse."""

    name: str
    args: Mapping[str, Any]

    @classmethod
    def parse(cls, value: Any, data_dir: str) -> DatabaseConfig:
        if value is None:
            return cls(name="sqlite3", args={"database": os.path.join(data_dir, "homeserver.db")})
        section = _mapping("database", value)
        name = _get(section, "database.", "name", _str, "sqlite3")
        _expect(name in ("sqlite3", "psycopg2"), "database.name", "'sqlite3' or 'psycopg2'", name)
        args = dict(_get(section, "database.", "args", _mapping, {}))
        if name == "sqlite3":
            db = args.get("database", os.path.join(data_dir, "homeserver.db"))
            _expect(isinstance(db, str), "database.args.database", "a file path", db)
            if db != ":memory:" and not os.path.isabs(db):
                db = os.path.join(data_dir, db)
            args["database"] = db
        for key in ("cp_min", "cp_max"):
            if key in args:
                _int(f"database.args.{key}", args[key])
        return cls(name=name, args=args)


@attrs.frozen(slots=True)
class TrustedKeyServer:
    """One `trusted_key_servers` entry (Synapse's format): a notary the key ring asks for
    remote keys when the server itself does not answer."""

    server_name: str
    #: key ID -> unpadded base64 ed25519 key; empty: the notary's own keys are fetched
    verify_keys: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse_list(cls, key: str, value: Any) -> tuple[TrustedKeyServer, ...]:
        _expect(isinstance(value, list), key, "a list of {server_name, verify_keys}", value)
        servers = []
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            section = _mapping(where, item)
            name = _get(section, f"{where}.", "server_name", _str, _MISSING)
            _expect(name is not _MISSING, f"{where}.server_name", "a server name", name)
            keys = _get(section, f"{where}.", "verify_keys", _mapping, {})
            for key_id, b64 in keys.items():
                _expect(isinstance(key_id, str) and key_id.startswith("ed25519:")
                        and isinstance(b64, str) and _is_ed25519_key(b64),
                        f"{where}.verify_keys", "ed25519:<version>: <base64 public key>",
                        f"{key_id}: {b64}")
            servers.append(cls(server_name=name, verify_keys=tuple(sorted(keys.items()))))
        return tuple(servers)


def _is_ed25519_key(b64: str) -> bool:
    try:
        raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except ValueError:
        return False
    return len(raw) == 32


#: Synapse's default notary.
DEFAULT_TRUSTED_KEY_SERVERS = (TrustedKeyServer(server_name="matrix.org"),)


@attrs.frozen(slots=True)
class PasswordPolicy:
    minimum_length: int = 0
    require_digit: bool = False
    require_symbol: bool = False
    require_lowercase: bool = False
    require_uppercase: bool = False


@attrs.frozen(slots=True)
class PasswordConfig:
    enabled: bool
    localdb_enabled: bool
    pepper: str
    policy: PasswordPolicy

    @classmethod
    def parse(cls, value: Any) -> PasswordConfig:
        section = _mapping("password_config", value) if value is not None else {}
        p = "password_config."
        policy_map = _get(section, p, "policy", _mapping, {})
        pp = "password_config.policy."
        policy = PasswordPolicy(
            minimum_length=_get(policy_map, pp, "minimum_length", _int, 0),
            require_digit=_get(policy_map, pp, "require_digit", _bool, False),
            require_symbol=_get(policy_map, pp, "require_symbol", _bool, False),
            require_lowercase=_get(policy_map, pp, "require_lowercase", _bool, False),
            require_uppercase=_get(policy_map, pp, "require_uppercase", _bool, False),
        )
        if not _get(policy_map, pp, "enabled", _bool, True):
            policy = PasswordPolicy()
        return cls(
            enabled=_get(section, p, "enabled", _bool, True),
            localdb_enabled=_get(section, p, "localdb_enabled", _bool, True),
            pepper=_get(section, p, "pepper", _str, ""),
            policy=policy,
        )


@attrs.frozen(slots=True)
class UserDirectoryConfig:
    """Synapse's `user_directory` section."""

    enabled: bool = True
    #: false: only users sharing a room with the searcher or in a public room
    search_all_users: bool = False
    #: rank our own users first (all results are local users today: no effect yet)
    prefer_local_users: bool = False

    @classmethod
    def parse(cls, value: Any) -> UserDirectoryConfig:
        section = _mapping("user_directory", value) if value is not None else {}
        p = "user_directory."
        return cls(
            enabled=_get(section, p, "enabled", _bool, True),
            search_all_users=_get(section, p, "search_all_users", _bool, False),
            prefer_local_users=_get(section, p, "prefer_local_users", _bool, False),
        )


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Synapse's default `ip_range_blacklist`: loopback, private, CGNAT, link-local, test,
#: multicast and site-local ranges, so outbound requests cannot reach the local network.
DEFAULT_IP_RANGE_BLACKLIST: tuple[str, ...] = (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
    "192.0.0.0/24", "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "::1/128", "fe80::/10", "fc00::/7",
    "2001:db8::/32", "ff00::/8", "fec0::/10",
)


def parse_ip_ranges(key: str, value: Any) -> tuple[IPNetwork, ...]:
    """A list of CIDR ranges or single addresses (`10.0.0.0/8`, `::1`), as in Synapse."""
    _expect(isinstance(value, list | tuple), key, "a list of IP ranges", value)
    ranges: list[IPNetwork] = []
    for i, item in enumerate(value):
        try:
            if not isinstance(item, str):
                raise TypeError
            ranges.append(ipaddress.ip_network(item, strict=False))
        except (TypeError, ValueError):
            raise ConfigError(
                f"Config key '{key}[{i}]': expected an IP range like 10.0.0.0/8, got {item!r}"
            ) from None
    return tuple(ranges)


@attrs.frozen(slots=True)
class ThumbnailSize:
    """One `thumbnail_sizes` entry."""

    width: int
    height: int
    method: str


#: Synapse's default `thumbnail_sizes`
DEFAULT_THUMBNAIL_SIZES = (
    ThumbnailSize(32, 32, "crop"), ThumbnailSize(96, 96, "crop"),
    ThumbnailSize(320, 240, "scale"), ThumbnailSize(640, 480, "scale"),
    ThumbnailSize(800, 600, "scale"),
)


def _thumbnail_sizes(key: str, value: Any) -> tuple[ThumbnailSize, ...]:
    _expect(isinstance(value, list), key, "a list of {width, height, method}", value)
    sizes = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        section = _mapping(where, item)
        width = _get(section, f"{where}.", "width", _int, 0)
        height = _get(section, f"{where}.", "height", _int, 0)
        method = _get(section, f"{where}.", "method", _str, "scale")
        _expect(width > 0 and height > 0, where, "a positive width and height", item)
        _expect(method in ("crop", "scale"), f"{where}.method", "'crop' or 'scale'", method)
        sizes.append(ThumbnailSize(width, height, method))
    return tuple(sizes)


@attrs.frozen(slots=True)
class UrlBlacklistRule:
    """One `url_preview_url_blacklist` entry: URL component → pattern, a regex if it starts
    with `^`, a glob otherwise. A URL matching every pattern of one entry is refused."""

    patterns: tuple[tuple[str, str], ...]


_URL_COMPONENTS = ("scheme", "netloc", "path", "params", "query", "fragment", "username",
                   "password", "hostname", "port")


def _url_blacklist(key: str, value: Any) -> tuple[UrlBlacklistRule, ...]:
    _expect(isinstance(value, list), key, "a list of mappings", value)
    rules = []
    for i, item in enumerate(value):
        section = _mapping(f"{key}[{i}]", item)
        for comp, pattern in section.items():
            _expect(comp in _URL_COMPONENTS, f"{key}[{i}]", f"keys among {_URL_COMPONENTS}",
                    comp)
            _expect(isinstance(pattern, str), f"{key}[{i}].{comp}", "a string", pattern)
            if pattern.startswith("^"):
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise ConfigError(f"Config key '{key}[{i}].{comp}': bad regex: {e}") from e
        rules.append(UrlBlacklistRule(tuple(section.items())))
    return tuple(rules)


@attrs.frozen(slots=True)
class MediaExtrasConfig:
    """Thumbnails, URL previews and resumable uploads (Synapse's key names where they
    exist)."""

    thumbnail_sizes: tuple[ThumbnailSize, ...] = DEFAULT_THUMBNAIL_SIZES
    #: images with more pixels are not thumbnailed (decompression bombs)
    max_image_pixels: int = 32 * 1024 * 1024
    url_preview_enabled: bool = False
    url_preview_ip_range_blacklist: tuple[IPNetwork, ...] = ()
    url_preview_ip_range_whitelist: tuple[IPNetwork, ...] = ()
    url_preview_url_blacklist: tuple[UrlBlacklistRule, ...] = ()
    #: most bytes of a page (or image) fetched for a preview
    max_spider_size: int = 10 * 1024 * 1024
    url_preview_accept_language: tuple[str, ...] = ("en",)
    #: an incomplete resumable upload is dropped this long after its last PATCH (ms)
    resumable_upload_lifetime: int = 86_400_000

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> MediaExtrasConfig:
        enabled = _get(raw, "", "url_preview_enabled", _bool, False)
        blacklist = _get(raw, "", "url_preview_ip_range_blacklist", parse_ip_ranges, None)
        # As Synapse: previews fetch arbitrary URLs, so the operator must say what is off
        # limits (the documented default denies private, loopback and link-local ranges).
        if enabled and blacklist is None:
            raise ConfigError(
                "Config key 'url_preview_ip_range_blacklist': required when "
                "'url_preview_enabled' is true (see docs/configuration.md for a default "
                "that denies private, loopback and link-local ranges)")
        languages = _get(raw, "", "url_preview_accept_language", _str_list, ["en"])
        max_pixels = _get(raw, "", "max_image_pixels", parse_size, 32 * 1024 * 1024)
        _expect(max_pixels > 0, "max_image_pixels", "a positive size", max_pixels)
        return cls(
            thumbnail_sizes=_get(raw, "", "thumbnail_sizes", _thumbnail_sizes,
                                 DEFAULT_THUMBNAIL_SIZES),
            max_image_pixels=max_pixels,
            url_preview_enabled=enabled,
            url_preview_ip_range_blacklist=blacklist or (),
            url_preview_ip_range_whitelist=_get(
                raw, "", "url_preview_ip_range_whitelist", parse_ip_ranges, ()),
            url_preview_url_blacklist=_get(raw, "", "url_preview_url_blacklist",
                                           _url_blacklist, ()),
            max_spider_size=_get(raw, "", "max_spider_size", parse_size, 10 * 1024 * 1024),
            url_preview_accept_language=tuple(languages),
            resumable_upload_lifetime=_get(raw, "", "resumable_upload_lifetime",
                                           parse_duration_ms, 86_400_000),
        )


def _str_list(key: str, value: Any) -> list[str]:
    _expect(isinstance(value, list) and all(isinstance(v, str) for v in value), key,
            "a list of strings", value)
    return list(value)


MEDIA_EXTRAS_KEYS = frozenset({
    "thumbnail_sizes", "dynamic_thumbnails", "max_image_pixels", "url_preview_enabled",
    "url_preview_ip_range_blacklist", "url_preview_ip_range_whitelist",
    "url_preview_url_blacklist", "max_spider_size", "url_preview_accept_language",
    "resumable_upload_lifetime",
})


# Keys of Synapse's config that we understand; anything else gets a warning.
KNOWN_KEYS = frozenset({
    "server_name", "public_baseurl", "listeners", "database", "signing_key_path",
    "enable_registration", "enable_registration_without_verification",
    "registration_requires_token", "registration_shared_secret", "rc_message",
    "rc_registration", "rc_login", "rc_joins", "rc_joins_per_room", "rc_invites",
    "rc_room_creation", "max_upload_size", "refreshable_access_token_lifetime",
    "refresh_token_lifetime", "password_config", "bcrypt_rounds", "pid_file", "media_store_path",
    "report_stats", "log_config", "user_directory", "serve_server_wellknown",
    "allow_guest_access", "key_refresh_interval", "old_signing_keys",
    "trusted_key_servers", "suppress_key_server_warning", "macaroon_secret_key", "form_secret",
    "max_request_body_size", "web_client_location", "admin_contact",
    "presence", "ip_range_blacklist", "ip_range_whitelist",
    "tls_certificate_path", "tls_private_key_path", "federation_verify_certificates",
    "rc_federation", "federation_max_request_body_size",
}) | MEDIA_KEYS | MEDIA_EXTRAS_KEYS


@attrs.frozen(slots=True)
class HomeServerConfig:
    """Everything the server reads from `homeserver.yaml`; built by `parse`."""

    server_name: str
    public_baseurl: str
    config_dir: str
    listeners: tuple[ListenerConfig, ...]
    database: DatabaseConfig
    signing_key_path: str
    enable_registration: bool
    enable_registration_without_verification: bool
    registration_requires_token: bool
    registration_shared_secret: str | None
    rc_message: RateLimitConfig
    rc_registration: RateLimitConfig
    rc_login: LoginRateLimitConfig
    rc_joins: JoinsRateLimitConfig
    rc_joins_per_room: RateLimitConfig
    rc_invites: InvitesRateLimitConfig
    rc_room_creation: RateLimitConfig
    max_upload_size: int
    max_request_body_size: int
    refreshable_access_token_lifetime: int | None
    refresh_token_lifetime: int | None
    password_config: PasswordConfig
    bcrypt_rounds: int
    user_directory: UserDirectoryConfig
    serve_server_wellknown: bool
    key_refresh_interval: int
    media_store_path: str
    pid_file: str | None
    #: Synapse's `presence.enabled`: when false, presence is neither stored nor sent
    presence_enabled: bool = True
    #: outbound federation/HTTP may not connect to these (Synapse's `ip_range_blacklist`)
    ip_range_blacklist: tuple[IPNetwork, ...] = parse_ip_ranges(
        "ip_range_blacklist", DEFAULT_IP_RANGE_BLACKLIST)
    #: exceptions to `ip_range_blacklist` (Synapse's `ip_range_whitelist`)
    ip_range_whitelist: tuple[IPNetwork, ...] = ()
    #: notaries for remote server keys (`trusted_key_servers`, Synapse's format)
    trusted_key_servers: tuple[TrustedKeyServer, ...] = DEFAULT_TRUSTED_KEY_SERVERS

    #: certificate chain and key (PEM) for listeners with `tls: true`
    tls_certificate_path: str | None = None
    tls_private_key_path: str | None = None
    #: check remote servers' TLS certificates (off only for test set-ups)
    federation_verify_certificates: bool = True
    #: per-origin limits on inbound federation requests (Synapse's `rc_federation`)
    rc_federation: RcFederationConfig = RcFederationConfig()
    #: body limit for `/_matrix/federation/` paths on listeners serving federation
    federation_max_request_body_size: int = DEFAULT_FEDERATION_MAX_REQUEST_BODY_SIZE
    #: the media repository's other keys (homeserver/media_config.py)
    media: MediaConfig = MediaConfig()
    #: thumbnails, URL previews, resumable uploads
    media_extras: MediaExtrasConfig = MediaExtrasConfig()

    @classmethod
    def parse(cls, raw: Mapping[str, Any], config_dir: str) -> HomeServerConfig:
        """Parse a loaded YAML mapping; relative paths resolve against `config_dir`."""
        if not isinstance(raw, Mapping):
            raise ConfigError("The config file must be a YAML mapping of keys to values")
        for key in raw:
            if key not in KNOWN_KEYS:
                logger.warning("Unknown config key '%s' is ignored", key)

        server_name = _get(raw, "", "server_name", _str, _MISSING)
        if server_name is _MISSING:
            raise ConfigError("Config key 'server_name': required, e.g. 'example.com'")
        _expect(re.fullmatch(r"[A-Za-z0-9.\-:\[\]]{1,255}", server_name) is not None,
                "server_name", "a server name like example.com or example.com:8448", server_name)

        def path(key: str, default: str) -> str:
            value = _get(raw, "", key, _str, default)
            return value if os.path.isabs(value) else os.path.join(config_dir, value)

        def opt_path(key: str) -> str | None:
            value = _get(raw, "", key, _opt_str, None)
            if value is None:
                return None
            return value if os.path.isabs(value) else os.path.join(config_dir, value)

        listeners_raw = raw.get("listeners")
        if listeners_raw is None:
            listeners_raw = [{"port": 8008, "bind_addresses": ["127.0.0.1"], "type": "http"}]
        _expect(isinstance(listeners_raw, list), "listeners", "a list", listeners_raw)
        listeners = tuple(
            ListenerConfig.parse(f"listeners[{i}]", item) for i, item in enumerate(listeners_raw)
        )

        public_baseurl = _get(raw, "", "public_baseurl", _str, "")
        if not public_baseurl:
            public_baseurl = f"https://{server_name}/"
        if not public_baseurl.endswith("/"):
            public_baseurl += "/"
        _expect(re.match(r"https?://", public_baseurl) is not None, "public_baseurl",
                "an http(s) URL", public_baseurl)

        presence = _get(raw, "", "presence", _mapping, {})
        bcrypt_rounds = _get(raw, "", "bcrypt_rounds", _int, 12)
        _expect(4 <= bcrypt_rounds <= 31, "bcrypt_rounds", "an integer from 4 to 31",
                bcrypt_rounds)

        enable_registration = _get(raw, "", "enable_registration", _bool, False)
        without_verification = _get(
            raw, "", "enable_registration_without_verification", _bool, False)
        requires_token = _get(raw, "", "registration_requires_token", _bool, False)
        # As in Synapse: open registration with no check at all invites spam bots.
        if enable_registration and not without_verification and not requires_token:
            raise ConfigError(
                "Config key 'enable_registration' is true but neither "
                "'registration_requires_token' nor 'enable_registration_without_verification' "
                "is set: open registration without any verification is a known vector for "
                "spam and abuse. Require registration tokens (registration_requires_token: true) "
                "or, to allow it anyway, set enable_registration_without_verification: true."
            )

        if any(listener.tls for listener in listeners) and not (
                raw.get("tls_certificate_path") and raw.get("tls_private_key_path")):
            raise ConfigError(
                "Config key 'listeners': a listener has 'tls: true', so "
                "'tls_certificate_path' and 'tls_private_key_path' must be set "
                "(python -m homeserver generate-config --federation-port makes a "
                "self-signed pair for development)")

        return cls(
            server_name=server_name,
            public_baseurl=public_baseurl,
            config_dir=config_dir,
            listeners=listeners,
            database=DatabaseConfig.parse(raw.get("database"), config_dir),
            signing_key_path=path("signing_key_path", f"{server_name}.signing.key"),
            enable_registration=enable_registration,
            enable_registration_without_verification=without_verification,
            registration_requires_token=requires_token,
            registration_shared_secret=_get(raw, "", "registration_shared_secret", _opt_str, None),
            rc_message=RateLimitConfig.parse(
                "rc_message", raw.get("rc_message"), RateLimitConfig(0.2, 10)),
            rc_registration=RateLimitConfig.parse(
                "rc_registration", raw.get("rc_registration"), RateLimitConfig(0.17, 3)),
            rc_login=LoginRateLimitConfig.parse(raw.get("rc_login")),
            rc_joins=JoinsRateLimitConfig.parse(raw.get("rc_joins")),
            rc_joins_per_room=RateLimitConfig.parse(
                "rc_joins_per_room", raw.get("rc_joins_per_room"), RateLimitConfig(1, 10)),
            rc_invites=InvitesRateLimitConfig.parse(raw.get("rc_invites")),
            rc_room_creation=RateLimitConfig.parse(
                "rc_room_creation", raw.get("rc_room_creation"), RateLimitConfig(0.016, 10)),
            max_upload_size=_get(raw, "", "max_upload_size", parse_size, 50 * 1024 * 1024),
            max_request_body_size=_get(raw, "", "max_request_body_size", parse_size, 1024 * 1024),
            refreshable_access_token_lifetime=_get(
                raw, "", "refreshable_access_token_lifetime", _opt(parse_duration_ms), 300_000),
            refresh_token_lifetime=_get(
                raw, "", "refresh_token_lifetime", _opt(parse_duration_ms), None),
            password_config=PasswordConfig.parse(raw.get("password_config")),
            bcrypt_rounds=bcrypt_rounds,
            user_directory=UserDirectoryConfig.parse(raw.get("user_directory")),
            serve_server_wellknown=_get(raw, "", "serve_server_wellknown", _bool, False),
            key_refresh_interval=_get(
                raw, "", "key_refresh_interval", parse_duration_ms, 86_400_000),
            media_store_path=path("media_store_path", "media_store"),
            pid_file=_get(raw, "", "pid_file", _opt_str, None),
            tls_certificate_path=opt_path("tls_certificate_path"),
            tls_private_key_path=opt_path("tls_private_key_path"),
            federation_verify_certificates=_get(
                raw, "", "federation_verify_certificates", _bool, True),
            presence_enabled=_get(presence, "presence.", "enabled", _bool, True),
            ip_range_blacklist=_get(raw, "", "ip_range_blacklist", parse_ip_ranges,
                                    parse_ip_ranges("ip_range_blacklist",
                                                    DEFAULT_IP_RANGE_BLACKLIST)),
            ip_range_whitelist=_get(raw, "", "ip_range_whitelist", parse_ip_ranges, ()),
            trusted_key_servers=_get(raw, "", "trusted_key_servers", TrustedKeyServer.parse_list,
                                     DEFAULT_TRUSTED_KEY_SERVERS),
            rc_federation=RcFederationConfig.parse(raw.get("rc_federation")),
            federation_max_request_body_size=_get(
                raw, "", "federation_max_request_body_size", parse_size,
                DEFAULT_FEDERATION_MAX_REQUEST_BODY_SIZE),
            media=MediaConfig.parse(raw, config_dir),
            media_extras=MediaExtrasConfig.parse(raw),
        )

    @classmethod
    def load(cls, path: str) -> HomeServerConfig:
        """Read and parse a `homeserver.yaml`."""
        try:
            with open(path, encoding="utf-8") as f:
                raw = yaml.safe_load(f)
        except OSError as e:
            raise ConfigError(f"Cannot read config file {path}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"Config file {path} is not valid YAML: {e}") from e
        return cls.parse(raw or {}, os.path.dirname(os.path.abspath(path)))
