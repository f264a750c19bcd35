"""The media repository's configuration keys (Synapse's names), parsed into attrs classes.

`max_upload_size` and `media_store_path` stay on `HomeServerConfig`; the rest lives in
`HomeServerConfig.media` (see docs/media.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from homeserver.errors import ConfigError

#: the `module` names that select the S3 backend (the second is synapse-s3-storage-provider's)
S3_MODULES = ("s3", "s3_storage_provider.S3StorageProviderBackend")
#: the `module` names that select a second directory on disk (the second is Synapse's)
FILE_MODULES = ("file_system", "synapse.media.storage_provider.FileStorageProviderBackend",
                "synapse.rest.media.v1.storage_provider.FileStorageProviderBackend")


def _expect(cond: bool, key: str, expected: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"Config key '{key}': expected {expected}, got {value!r}")


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    _expect(isinstance(value, dict), key, "a mapping", value)
    return value  # type: ignore[no-any-return]


def _check_keys(key: str, section: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for sub in section:
        if sub not in allowed:
            raise ConfigError(f"Config key '{key}.{sub}': expected one of {', '.join(allowed)}")


def _opt_str(key: str, section: Mapping[str, Any], name: str) -> str | None:
    value = section.get(name)
    if value is None:
        return None
    _expect(isinstance(value, str), f"{key}.{name}", "a string", value)
    return str(value)


def _bool(key: str, section: Mapping[str, Any], name: str, default: bool) -> bool:
    value = section.get(name, default)
    _expect(isinstance(value, bool), f"{key}.{name}", "true or false", value)
    return bool(value)


@attrs.frozen(slots=True)
class S3BackendConfig:
    """synapse-s3-storage-provider's `config` block (the subset that S3 APIs share)."""

    bucket: str
    endpoint_url: str | None = None
    region_name: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    #: a key prefix inside the bucket, e.g. "media/"
    prefix: str = ""
    storage_class: str | None = None


@attrs.frozen(slots=True)
class StorageProviderConfig:
    """One `media_storage_providers` entry: where files are copied besides the local disk.

    `store_local`/`store_remote`: copy local uploads / cached remote media there;
    `store_synchronous`: an upload answers only once the copy is made.
    """

    kind: str  # "s3" or "file"
    store_local: bool
    store_remote: bool
    store_synchronous: bool
    s3: S3BackendConfig | None = None
    directory: str | None = None

    @classmethod
    def parse(cls, key: str, value: Any, config_dir: str) -> StorageProviderConfig:
        section = _mapping(key, value)
        _check_keys(key, section, ("module", "store_local", "store_remote",
                                   "store_synchronous", "config"))
        module = section.get("module")
        _expect(module in S3_MODULES + FILE_MODULES, f"{key}.module",
                f"one of {', '.join(S3_MODULES + FILE_MODULES)}", module)
        conf = _mapping(f"{key}.config", section.get("config") or {})
        ckey = f"{key}.config"
        store_local = _bool(key, section, "store_local", True)
        store_remote = _bool(key, section, "store_remote", False)
        store_synchronous = _bool(key, section, "store_synchronous", True)
        if module in FILE_MODULES:
            _check_keys(ckey, conf, ("directory",))
            directory = _opt_str(ckey, conf, "directory")
            _expect(directory is not None, f"{ckey}.directory", "a directory", directory)
            assert directory is not None
            if not os.path.isabs(directory):
                directory = os.path.join(config_dir, directory)
            return cls(kind="file", directory=directory, store_local=store_local,
                       store_remote=store_remote, store_synchronous=store_synchronous)
        fields = ("bucket", "endpoint_url", "region_name", "access_key_id",
                  "secret_access_key", "session_token", "prefix", "storage_class")
        _check_keys(ckey, conf, fields)
        bucket = _opt_str(ckey, conf, "bucket")
        _expect(bool(bucket), f"{ckey}.bucket", "a bucket name", bucket)
        s3 = S3BackendConfig(**{  # type: ignore[arg-type]
            name: (_opt_str(ckey, conf, name) or "") if name == "prefix"
            else _opt_str(ckey, conf, name) for name in fields})
        return cls(kind="s3", s3=s3, store_local=store_local, store_remote=store_remote,
                   store_synchronous=store_synchronous)


@attrs.frozen(slots=True)
class UploadLimit:
    """A `media_upload_limits` entry: at most `max_size` bytes per user per `time_period`."""

    time_period_ms: int
    max_size: int


@attrs.frozen(slots=True)
class MediaConfig:
    #: Synapse's default: the v1 authenticated endpoints; media uploaded while this is on
    #: is not served by the deprecated unauthenticated `/_matrix/media/v3/download`
    enable_authenticated_media: bool = True
    #: async uploads a user may hold at once (Synapse's `max_pending_media_uploads`)
    max_pending_media_uploads: int = 5
    #: how long a `/create`d media ID waits for its content (Synapse's default, 24 h)
    unused_expiration_time_ms: int = 86_400_000
    media_upload_limits: tuple[UploadLimit, ...] = ()
    #: `media_retention`: delete media not accessed for this long (None: keep)
    local_media_lifetime_ms: int | None = None
    remote_media_lifetime_ms: int | None = None
    storage_providers: tuple[StorageProviderConfig, ...] = ()
    #: how long a download of a pending async upload waits by default (Synapse: 20 s)
    max_download_wait_ms: int = 20_000

    @classmethod
    def parse(cls, raw: Mapping[str, Any], config_dir: str) -> MediaConfig:
        from homeserver.config import parse_duration_ms, parse_size

        def get(name: str, parser: Any, default: Any) -> Any:
            value = raw.get(name)
            return default if value is None else parser(name, value)

        def count(name: str, value: Any) -> int:
            _expect(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                    name, "a non-negative integer", value)
            return int(value)

        def flag(name: str, value: Any) -> bool:
            _expect(isinstance(value, bool), name, "true or false", value)
            return bool(value)

        limits = []
        raw_limits = raw.get("media_upload_limits") or []
        _expect(isinstance(raw_limits, list), "media_upload_limits",
                "a list of {time_period, max_size}", raw_limits)
        for i, item in enumerate(raw_limits):
            key = f"media_upload_limits[{i}]"
            section = _mapping(key, item)
            _check_keys(key, section, ("time_period", "max_size"))
            _expect("time_period" in section and "max_size" in section, key,
                    "both time_period and max_size", item)
            limits.append(UploadLimit(
                time_period_ms=parse_duration_ms(f"{key}.time_period", section["time_period"]),
                max_size=parse_size(f"{key}.max_size", section["max_size"])))

        retention = _mapping("media_retention", raw.get("media_retention") or {})
        _check_keys("media_retention", retention,
                    ("local_media_lifetime", "remote_media_lifetime"))

        def lifetime(name: str) -> int | None:
            value = retention.get(name)
            return None if value is None else parse_duration_ms(f"media_retention.{name}",
                                                                 value)

        providers = raw.get("media_storage_providers") or []
        _expect(isinstance(providers, list), "media_storage_providers", "a list", providers)
        return cls(
            enable_authenticated_media=get("enable_authenticated_media", flag, True),
            max_pending_media_uploads=get("max_pending_media_uploads", count, 5),
            unused_expiration_time_ms=get("unused_expiration_time", parse_duration_ms,
                                          86_400_000),
            media_upload_limits=tuple(limits),
            local_media_lifetime_ms=lifetime("local_media_lifetime"),
            remote_media_lifetime_ms=lifetime("remote_media_lifetime"),
            storage_providers=tuple(
                StorageProviderConfig.parse(f"media_storage_providers[{i}]", p, config_dir)
                for i, p in enumerate(providers)),
        )


#: the top-level keys `MediaConfig.parse` reads
MEDIA_KEYS = frozenset({
    "enable_authenticated_media", "max_pending_media_uploads", "unused_expiration_time",
    "media_upload_limits", "media_retention", "media_storage_providers", "enable_media_repo",
})
