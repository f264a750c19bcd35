"""The outbound IP blacklist/whitelist and its config keys."""

from __future__ import annotations

import ipaddress
import unittest

from federation.ip_filter import IPFilter
from homeserver.config import HomeServerConfig
from homeserver.errors import ConfigError


def config(**raw: object) -> HomeServerConfig:
    return HomeServerConfig.parse({"server_name": "example.org", **raw}, "/srv/axon")


class DefaultBlacklistTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.filter = IPFilter.from_config(config())

    def test_private_ranges_refused(self) -> None:
        for ip in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                   "100.64.0.1", "169.254.169.254", "192.0.2.1", "198.18.0.1", "224.0.0.1",
                   "0.0.0.0", "::", "::1", "[::1]", "fe80::1", "fe80::1%eth0", "fc00::1",
                   "fd12:3456::1", "2001:db8::1", "ff02::1", "fec0::1",
                   # IPv4 in IPv6 clothing must not slip through
                   "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::10.0.0.1"):
            with self.subTest(ip):
                self.assertFalse(self.filter.is_allowed(ip))

    def test_public_addresses_allowed(self) -> None:
        for ip in ("8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111",
                   "::ffff:8.8.8.8", ipaddress.ip_address("93.184.216.34")):
            with self.subTest(ip):
                self.assertTrue(self.filter.is_allowed(ip))

    def test_not_an_ip_is_refused(self) -> None:
        for value in ("example.org", "", "1.2.3", "300.1.1.1"):
            with self.subTest(value):
                self.assertFalse(self.filter.is_allowed(value))

    def test_filter_allowed_keeps_order(self) -> None:
        self.assertEqual(self.filter.filter_allowed(["8.8.8.8", "10.0.0.1", "1.1.1.1", "::1"]),
                         ["8.8.8.8", "1.1.1.1"])


class ConfiguredFilterTestCase(unittest.TestCase):
    def test_whitelist_overrides_blacklist(self) -> None:
        f = IPFilter.from_config(config(ip_range_whitelist=["10.1.0.0/16", "::1"]))
        self.assertTrue(f.is_allowed("10.1.2.3"))
        self.assertTrue(f.is_allowed("::ffff:10.1.2.3"))
        self.assertTrue(f.is_allowed("::1"))
        self.assertFalse(f.is_allowed("10.2.0.1"))
        self.assertFalse(f.is_allowed("127.0.0.1"))

    def test_custom_blacklist_replaces_default(self) -> None:
        """As in Synapse: a configured list replaces the defaults; 0.0.0.0 and :: stay."""
        f = IPFilter.from_config(config(ip_range_blacklist=["8.8.8.0/24"]))
        self.assertFalse(f.is_allowed("8.8.8.8"))
        self.assertTrue(f.is_allowed("127.0.0.1"))
        self.assertFalse(f.is_allowed("0.0.0.0"))
        self.assertFalse(f.is_allowed("::"))

    def test_empty_blacklist(self) -> None:
        f = IPFilter.from_config(config(ip_range_blacklist=[]))
        self.assertTrue(f.is_allowed("192.168.0.1"))

    def test_config_values(self) -> None:
        c = config(ip_range_blacklist=["10.0.0.1/8", "::1"], ip_range_whitelist=["1.2.3.4"])
        self.assertEqual(c.ip_range_blacklist, (ipaddress.ip_network("10.0.0.0/8"),
                                                ipaddress.ip_network("::1/128")))
        self.assertEqual(c.ip_range_whitelist, (ipaddress.ip_network("1.2.3.4/32"),))
        self.assertEqual(len(config().ip_range_blacklist), 19)
        self.assertEqual(config().ip_range_whitelist, ())

    def test_bad_config_values_name_the_key(self) -> None:
        cases = [
            ("ip_range_blacklist", "10.0.0.0/8", "ip_range_blacklist"),
            ("ip_range_blacklist", ["10.0.0.0/8", "nope"], "ip_range_blacklist[1]"),
            ("ip_range_whitelist", [10], "ip_range_whitelist[0]"),
            ("ip_range_whitelist", {"a": 1}, "ip_range_whitelist"),
            ("ip_range_whitelist", ["10.0.0.0/33"], "ip_range_whitelist[0]"),
        ]
        for key, value, named in cases:
            with self.subTest(key=key, value=value), self.assertRaises(ConfigError) as ctx:
                config(**{key: value})
            self.assertIn(f"'{named}'", str(ctx.exception))
