"""The startup check against open registration without any verification (as Synapse's)."""

from __future__ import annotations

import unittest

from homeserver.config import HomeServerConfig
from homeserver.errors import ConfigError


def parse(**keys: object) -> HomeServerConfig:
    return HomeServerConfig.parse({"server_name": "example.org", **keys}, "/srv/axon")


class OpenRegistrationCheckTestCase(unittest.TestCase):
    def test_open_registration_without_verification_refused(self) -> None:
        """enable_registration alone stops startup, naming the keys that would allow it."""
        with self.assertRaises(ConfigError) as ctx:
            parse(enable_registration=True)
        message = str(ctx.exception)
        for key in ("enable_registration", "enable_registration_without_verification",
                    "registration_requires_token"):
            self.assertIn(f"'{key}'", message)
        with self.assertRaises(ConfigError):
            parse(enable_registration=True, enable_registration_without_verification=False,
                  registration_requires_token=False)

    def test_allowed_combinations(self) -> None:
        """Tokens or the explicit opt-out make open registration acceptable; closed is fine."""
        config = parse(enable_registration=True, registration_requires_token=True)
        self.assertTrue(config.registration_requires_token)
        config = parse(enable_registration=True, enable_registration_without_verification=True)
        self.assertTrue(config.enable_registration_without_verification)
        self.assertFalse(parse().enable_registration)
        self.assertFalse(parse(registration_requires_token=True).enable_registration)

    def test_bad_types_name_the_key(self) -> None:
        """A non-boolean value of either key is refused naming that key."""
        for key in ("enable_registration_without_verification", "registration_requires_token"):
            with self.subTest(key=key), self.assertRaisesRegex(ConfigError, key):
                parse(enable_registration=True, **{key: "yes"})
