"""Password hashing (bcrypt, with the optional pepper) and the password policy."""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import TYPE_CHECKING

import bcrypt

from homeserver.errors import Codes, MatrixError

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# bcrypt reads at most 72 bytes; longer passwords are refused rather than truncated.
MAX_PASSWORD_BYTES = 512


class PasswordHandler:
    def __init__(self, hs: HomeServer) -> None:
        self._hs = hs
        self._config = hs.config.password_config
        self._rounds = hs.config.bcrypt_rounds
        # a hash of nothing anyone knows, made on first use, at the configured cost
        self._dummy: bytes | None = None

    def _prepare(self, password: str) -> bytes:
        # NFKC so that the same password typed on different keyboards matches.
        data = unicodedata.normalize("NFKC", password + self._config.pepper).encode("utf-8")
        if len(data) > MAX_PASSWORD_BYTES:
            raise MatrixError(400, Codes.INVALID_PARAM, "Password too long")
        return data

    async def hash(self, password: str) -> str:
        data = self._prepare(password)
        rounds = self._rounds

        def _hash() -> str:
            # bcrypt uses the first 72 bytes; pre-hash longer input so all of it counts.
            return bcrypt.hashpw(_bcrypt_input(data), bcrypt.gensalt(rounds)).decode("ascii")

        return await self._hs.run_in_thread(_hash)

    async def check(self, password: str, stored_hash: str | None) -> bool:
        """Compare in constant time (bcrypt's checkpw); False when no hash is stored.

        Without a stored hash (an unknown or deactivated account) the password is still
        checked, against a dummy hash of the same cost, so that the answer takes as long
        as for a real account with a wrong password.
        """
        data = self._prepare(password)
        if not stored_hash:
            dummy = await self._dummy_hash()

            def _check_dummy() -> bool:
                bcrypt.checkpw(_bcrypt_input(data), dummy)
                return False

            return await self._hs.run_in_thread(_check_dummy)
        known_hash = stored_hash

        def _check() -> bool:
            try:
                return bcrypt.checkpw(_bcrypt_input(data), known_hash.encode("ascii"))
            except ValueError:
                return False

        return await self._hs.run_in_thread(_check)

    async def _dummy_hash(self) -> bytes:
        if self._dummy is None:
            rounds = self._rounds
            self._dummy = await self._hs.run_in_thread(
                lambda: bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds)))
        return self._dummy

    def validate_policy(self, password: str) -> None:
        """Raise 400 M_WEAK_PASSWORD if the password breaks `password_config.policy`."""
        policy = self._config.policy
        problems = []
        if len(password) < policy.minimum_length:
            problems.append(f"at least {policy.minimum_length} characters")
        if policy.require_digit and not re.search(r"\d", password):
            problems.append("a digit")
        if policy.require_symbol and not re.search(r"[^\w\s]|_", password):
            problems.append("a symbol")
        if policy.require_lowercase and not re.search(r"[a-z]", password):
            problems.append("a lowercase letter")
        if policy.require_uppercase and not re.search(r"[A-Z]", password):
            problems.append("an uppercase letter")
        if problems:
            raise MatrixError(400, Codes.WEAK_PASSWORD,
                              "Password must contain " + ", ".join(problems))


def _bcrypt_input(data: bytes) -> bytes:
    if len(data) <= 72:
        return data
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha512(data).digest())
