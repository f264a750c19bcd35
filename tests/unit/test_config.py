"""Parsing homeserver.yaml: Synapse key names, unknown keys warned, bad values refused."""

from __future__ import annotations

import logging
import unittest

from homeserver.config import HomeServerConfig, parse_duration_ms, parse_size
from homeserver.errors import ConfigError

BASE = {"server_name": "example.org"}


def parse(**overrides: object) -> HomeServerConfig:
    return HomeServerConfig.parse({**BASE, **overrides}, "/srv/axon")


class ConfigTestCase(unittest.TestCase):
    def test_defaults(self) -> None:
        """A config with only server_name gets SQLite in the config dir and one listener."""
        config = parse()
        self.assertEqual(config.database.name, "sqlite3")
        self.assertEqual(config.database.args["database"], "/srv/axon/homeserver.db")
        self.assertEqual(config.listeners[0].port, 8008)
        self.assertEqual(config.public_baseurl, "https://example.org/")
        self.assertEqual(config.signing_key_path, "/srv/axon/example.org.signing.key")
        self.assertFalse(config.enable_registration)

    def test_missing_server_name(self) -> None:
        """Without server_name startup stops with a message naming the key."""
        with self.assertRaisesRegex(ConfigError, "server_name"):
            HomeServerConfig.parse({}, "/srv")

    def test_unknown_key_is_a_warning(self) -> None:
        """An unknown key (e.g. from a Synapse config) is logged by name and ignored."""
        with self.assertLogs("homeserver.config", logging.WARNING) as logs:
            parse(some_synapse_only_key=1)
        self.assertIn("some_synapse_only_key", logs.output[0])

    def test_bad_values_name_the_key(self) -> None:
        """Each bad value raises ConfigError naming the offending key."""
        cases = {
            "enable_registration": "yes",
            "rc_message": {"per_second": "fast"},
            "max_upload_size": "lots",
            "refresh_token_lifetime": "forever",
            "listeners": [{"port": 99999}],
            "database": {"name": "mysql"},
            "bcrypt_rounds": 2,
            "password_config": {"policy": {"minimum_length": "8"}},
            "public_baseurl": "ftp://x/",
            "user_directory": {"search_all_users": "yes"},
        }
        for key, value in cases.items():
            with self.subTest(key=key), self.assertRaises(ConfigError) as ctx:
                parse(**{key: value})
            self.assertIn(key, str(ctx.exception))

    def test_user_directory(self) -> None:
        """user_directory: Synapse's keys and defaults (enabled, only shared/public rooms)."""
        default = parse().user_directory
        self.assertEqual((default.enabled, default.search_all_users,
                          default.prefer_local_users), (True, False, False))
        custom = parse(user_directory={"enabled": False, "search_all_users": True,
                                       "prefer_local_users": True}).user_directory
        self.assertEqual((custom.enabled, custom.search_all_users,
                          custom.prefer_local_users), (False, True, True))

    def test_rc_login_nested_and_flat(self) -> None:
        """rc_login accepts Synapse's nested buckets and a flat form for all three."""
        nested = parse(rc_login={"address": {"per_second": 1, "burst_count": 2},
                                 "failed_attempts": {"per_second": 3, "burst_count": 4}})
        self.assertEqual(nested.rc_login.address.burst_count, 2)
        self.assertEqual(nested.rc_login.failed_attempts.per_second, 3)
        flat = parse(rc_login={"per_second": 5, "burst_count": 6})
        self.assertEqual(flat.rc_login.account.per_second, 5)
        self.assertEqual(flat.rc_login.address.burst_count, 6)
        with self.assertRaisesRegex(ConfigError, "rc_login.bogus"):
            parse(rc_login={"bogus": {}})

    def test_client_rate_limit_defaults_are_synapses(self) -> None:
        """Without rc_ keys every client limiter gets Synapse's default bucket."""
        config = parse()
        got = {
            "rc_message": config.rc_message,
            "rc_registration": config.rc_registration,
            "rc_login.address": config.rc_login.address,
            "rc_login.account": config.rc_login.account,
            "rc_login.failed_attempts": config.rc_login.failed_attempts,
            "rc_joins.local": config.rc_joins.local,
            "rc_joins.remote": config.rc_joins.remote,
            "rc_joins_per_room": config.rc_joins_per_room,
            "rc_invites.per_room": config.rc_invites.per_room,
            "rc_invites.per_user": config.rc_invites.per_user,
            "rc_invites.per_issuer": config.rc_invites.per_issuer,
            "rc_room_creation": config.rc_room_creation,
        }
        expected = {
            "rc_message": (0.2, 10), "rc_registration": (0.17, 3),
            "rc_login.address": (0.003, 5), "rc_login.account": (0.003, 5),
            "rc_login.failed_attempts": (0.17, 3),
            "rc_joins.local": (0.1, 10), "rc_joins.remote": (0.01, 10),
            "rc_joins_per_room": (1, 10),
            "rc_invites.per_room": (0.3, 10), "rc_invites.per_user": (0.003, 5),
            "rc_invites.per_issuer": (0.3, 10), "rc_room_creation": (0.016, 10),
        }
        self.assertEqual({k: (v.per_second, v.burst_count) for k, v in got.items()}, expected)

    def test_rc_joins_and_invites_nested(self) -> None:
        """rc_joins and rc_invites take Synapse's nested buckets; a missing one keeps its
        default and an unknown one stops startup."""
        config = parse(rc_joins={"remote": {"per_second": 2}},
                       rc_invites={"per_user": {"burst_count": 7}})
        self.assertEqual(config.rc_joins.remote.per_second, 2)
        self.assertEqual(config.rc_joins.remote.burst_count, 10)
        self.assertEqual(config.rc_joins.local.per_second, 0.1)
        self.assertEqual(config.rc_invites.per_user.burst_count, 7)
        self.assertEqual(config.rc_invites.per_room.per_second, 0.3)
        with self.assertRaisesRegex(ConfigError, "rc_invites.per_server"):
            parse(rc_invites={"per_server": {}})
        with self.assertRaisesRegex(ConfigError, "rc_joins.local.per_second"):
            parse(rc_joins={"local": {"per_second": "fast"}})

    def test_sizes_and_durations(self) -> None:
        """Sizes and durations use Synapse's suffixes; plain integers are bytes / ms."""
        self.assertEqual(parse_size("k", "50M"), 50 * 1024 * 1024)
        self.assertEqual(parse_size("k", 1000), 1000)
        self.assertEqual(parse_duration_ms("k", "5m"), 300_000)
        self.assertEqual(parse_duration_ms("k", "7d"), 7 * 86_400_000)
        self.assertEqual(parse_duration_ms("k", 1500), 1500)
        config = parse(refreshable_access_token_lifetime="2h", max_upload_size="10K")
        self.assertEqual(config.refreshable_access_token_lifetime, 7_200_000)
        self.assertEqual(config.max_upload_size, 10240)

    def test_postgres_database(self) -> None:
        """A psycopg2 database keeps its args for the engine."""
        config = parse(database={"name": "psycopg2",
                                 "args": {"user": "axon", "database": "axon", "cp_max": 10}})
        self.assertEqual(config.database.name, "psycopg2")
        self.assertEqual(config.database.args["user"], "axon")
