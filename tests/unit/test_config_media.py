"""The media repository's config keys: Synapse's defaults, parsing, and refusals."""

from __future__ import annotations

import unittest

from homeserver.config import HomeServerConfig
from homeserver.errors import ConfigError
from homeserver.media_config import MediaConfig, S3BackendConfig, UploadLimit


def parse(**overrides: object) -> HomeServerConfig:
    return HomeServerConfig.parse({"server_name": "example.org", **overrides}, "/etc/axon")


class MediaConfigTestCase(unittest.TestCase):
    def test_defaults_are_synapses(self) -> None:
        """Authenticated media on, 5 pending uploads expiring after 24 h, no quota, no
        retention, no providers."""
        media = parse().media
        self.assertEqual(media, MediaConfig())
        self.assertTrue(media.enable_authenticated_media)
        self.assertEqual(media.max_pending_media_uploads, 5)
        self.assertEqual(media.unused_expiration_time_ms, 86_400_000)
        self.assertEqual(parse().max_upload_size, 50 * 1024 * 1024)

    def test_values(self) -> None:
        """Quotas, retention and an S3 provider (synapse-s3-storage-provider's layout)."""
        media = parse(
            enable_authenticated_media=False, unused_expiration_time="1h",
            media_upload_limits=[{"time_period": "1d", "max_size": "1G"}],
            media_retention={"local_media_lifetime": "90d"},
            media_storage_providers=[{
                "module": "s3_storage_provider.S3StorageProviderBackend",
                "store_remote": True,
                "config": {"bucket": "b", "endpoint_url": "http://s3", "prefix": "m/"}}],
        ).media
        self.assertFalse(media.enable_authenticated_media)
        self.assertEqual(media.unused_expiration_time_ms, 3_600_000)
        self.assertEqual(media.media_upload_limits, (UploadLimit(86_400_000, 1024**3),))
        self.assertEqual(media.local_media_lifetime_ms, 90 * 86_400_000)
        self.assertIsNone(media.remote_media_lifetime_ms)
        (provider,) = media.storage_providers
        self.assertEqual(provider.kind, "s3")
        self.assertTrue(provider.store_local and provider.store_remote
                        and provider.store_synchronous)
        self.assertEqual(provider.s3, S3BackendConfig(bucket="b", endpoint_url="http://s3",
                                                      prefix="m/"))

    def test_file_provider_directory_is_relative_to_config(self) -> None:
        """A file_system provider's relative directory resolves against the config dir."""
        media = parse(media_storage_providers=[
            {"module": "file_system", "config": {"directory": "backup"}}]).media
        self.assertEqual(media.storage_providers[0].directory, "/etc/axon/backup")

    def test_bad_values_name_the_key(self) -> None:
        """Wrong types, unknown sub-keys and modules stop startup, naming the key."""
        cases = [
            ({"enable_authenticated_media": "yes"}, "enable_authenticated_media"),
            ({"max_pending_media_uploads": -1}, "max_pending_media_uploads"),
            ({"media_upload_limits": [{"time_period": "1d"}]}, "media_upload_limits[0]"),
            ({"media_retention": {"local_lifetime": "1d"}}, "media_retention.local_lifetime"),
            ({"media_storage_providers": [{"module": "nope"}]},
             "media_storage_providers[0].module"),
            ({"media_storage_providers": [{"module": "s3", "config": {}}]},
             "media_storage_providers[0].config.bucket"),
            ({"media_storage_providers": [{"module": "s3", "config": {"bucket": "b",
                                                                       "acl": "x"}}]},
             "media_storage_providers[0].config.acl"),
        ]
        for overrides, key in cases:
            with self.subTest(key), self.assertRaises(ConfigError) as cm:
                parse(**overrides)
            self.assertIn(f"'{key}", str(cm.exception))
