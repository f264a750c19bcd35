"""Token-bucket rate limiting, in memory, keyed by user or client address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeserver.config import RateLimitConfig
from homeserver.errors import LimitExceededError

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class Ratelimiter:
    """Allows `burst_count` actions at once, refilling at `per_second`.

    Buckets are pruned lazily when full, so memory stays bounded by active keys.
    """

    def __init__(self, hs: HomeServer, config: RateLimitConfig) -> None:
        self._clock = hs.get_clock()
        self.rate = config.per_second
        self.burst = config.burst_count
        # key -> (tokens used, time of last update)
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        used, then = self._buckets.get(key, (0.0, now))
        return max(0.0, used - (now - then) * self.rate)

    def check(self, key: str, update: bool = True, n_actions: float = 1.0) -> None:
        """Count an action for `key`; raise 429 M_LIMIT_EXCEEDED if over the limit."""
        if self.rate <= 0 and self.burst <= 0:
            return
        now = self._clock.time()
        level = self._level(key, now)
        if level + n_actions > self.burst:
            wait = (level + n_actions - self.burst) / self.rate if self.rate > 0 else 3600.0
            raise LimitExceededError(retry_after_ms=int(wait * 1000) + 1)
        if update:
            self._buckets[key] = (level + n_actions, now)
        if len(self._buckets) > 10_000:
            self._prune(now)

    def record(self, key: str, n_actions: float = 1.0) -> None:
        """Count an action without checking (e.g. a failed login after the fact)."""
        now = self._clock.time()
        self._buckets[key] = (self._level(key, now) + n_actions, now)

    def _prune(self, now: float) -> None:
        for key in [k for k in self._buckets if self._level(k, now) == 0.0]:
            del self._buckets[key]


def check_all(*checks: tuple[Ratelimiter, str]) -> None:
    """Count one action in each (limiter, key) only if none of them is over its limit,
    so a request refused by one bucket does not use up the others."""
    for limiter, key in checks:
        limiter.check(key, update=False)
    for limiter, key in checks:
        limiter.check(key)


class Ratelimiters:
    """The configured client limiters (Synapse's `rc_` keys of the same names)."""

    def __init__(self, hs: HomeServer) -> None:
        config = hs.config
        self.message = Ratelimiter(hs, config.rc_message)
        self.registration = Ratelimiter(hs, config.rc_registration)
        self.login_address = Ratelimiter(hs, config.rc_login.address)
        self.login_account = Ratelimiter(hs, config.rc_login.account)
        self.login_failed_attempts = Ratelimiter(hs, config.rc_login.failed_attempts)
        self.joins_local = Ratelimiter(hs, config.rc_joins.local)
        self.joins_remote = Ratelimiter(hs, config.rc_joins.remote)
        self.joins_per_room = Ratelimiter(hs, config.rc_joins_per_room)
        self.invites_per_room = Ratelimiter(hs, config.rc_invites.per_room)
        self.invites_per_user = Ratelimiter(hs, config.rc_invites.per_user)
        self.invites_per_issuer = Ratelimiter(hs, config.rc_invites.per_issuer)
        self.room_creation = Ratelimiter(hs, config.rc_room_creation)
        #: a profile change copied into a joined room, per "room user" key
        self.profile_member_updates = Ratelimiter(hs, config.rc_joins_per_room)
