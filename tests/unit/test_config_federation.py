"""Parsing `rc_federation` and `federation_max_request_body_size`."""

from __future__ import annotations

import logging
import unittest

from homeserver.config import HomeServerConfig, RcFederationConfig
from homeserver.errors import ConfigError


def parse(**overrides: object) -> HomeServerConfig:
    return HomeServerConfig.parse({"server_name": "example.org", **overrides}, "/srv/axon")


class FederationConfigTestCase(unittest.TestCase):
    def test_defaults_are_synapses(self) -> None:
        """Without the keys: Synapse's rc_federation defaults and 200 x 64 KiB bodies."""
        config = parse()
        self.assertEqual(config.rc_federation, RcFederationConfig(
            window_size=1000, sleep_limit=10, sleep_delay=500, reject_limit=50, concurrent=3))
        self.assertEqual(config.federation_max_request_body_size, 13_107_200)

    def test_values_are_read(self) -> None:
        """Given fields replace their defaults, the others stay; sizes take units."""
        config = parse(rc_federation={"sleep_limit": 20, "concurrent": 5},
                       federation_max_request_body_size="20M")
        self.assertEqual(config.rc_federation.sleep_limit, 20)
        self.assertEqual(config.rc_federation.concurrent, 5)
        self.assertEqual(config.rc_federation.reject_limit, 50)
        self.assertEqual(config.federation_max_request_body_size, 20 * 1024 * 1024)

    def test_bad_values_name_the_key(self) -> None:
        """An unknown field, a non-integer or an impossible value stops startup."""
        for value, key in [({"per_second": 1}, "rc_federation.per_second"),
                           ({"sleep_delay": "500ms"}, "rc_federation.sleep_delay"),
                           ({"concurrent": 0}, "rc_federation.concurrent"),
                           ({"window_size": 0}, "rc_federation.window_size"),
                           ({"reject_limit": -1}, "rc_federation.reject_limit"),
                           ("fast", "rc_federation")]:
            with self.assertRaisesRegex(ConfigError, key):
                parse(rc_federation=value)
        with self.assertRaisesRegex(ConfigError, "federation_max_request_body_size"):
            parse(federation_max_request_body_size="huge")

    def test_keys_are_known(self) -> None:
        """Neither key is warned about as unknown."""
        with self.assertNoLogs("homeserver.config", logging.WARNING):
            parse(rc_federation={}, federation_max_request_body_size=1)
