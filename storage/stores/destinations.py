"""Remote servers' reachability: the federation sender's backoff state, kept across
restarts (table `destinations`)."""

from __future__ import annotations

import attrs

from storage.database import DatabasePool, Transaction


@attrs.frozen(slots=True)
class DestinationRetry:
    """The backoff state of one remote server; `retry_interval == 0` means healthy."""

    destination: str
    #: when the last attempt failed (ms since the epoch)
    retry_last_ts: int
    #: wait this long after `retry_last_ts` before the next attempt (ms)
    retry_interval: int
    #: when the current run of failures started (ms), None when healthy
    failure_ts: int | None

    @property
    def retry_due_ts(self) -> int:
        """The earliest time (ms) at which the server may be tried again."""
        return self.retry_last_ts + self.retry_interval if self.retry_interval else 0


class DestinationsStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def get_destination_retry(self, destination: str) -> DestinationRetry | None:
        """The stored backoff state, or None for a server never marked down."""
        rows = await self.db.execute(
            "get_destination_retry",
            "SELECT retry_last_ts, retry_interval, failure_ts FROM destinations"
            " WHERE destination = ?", destination)
        if not rows:
            return None
        last, interval, failure = rows[0]
        return DestinationRetry(destination, int(last), int(interval),
                                None if failure is None else int(failure))

    async def set_destination_retry(self, retry: DestinationRetry) -> None:
        """Save the backoff state (healthy: interval 0, failure_ts None)."""

        def _txn(txn: Transaction) -> None:
            txn.upsert("destinations", {"destination": retry.destination},
                       {"retry_last_ts": retry.retry_last_ts,
                        "retry_interval": retry.retry_interval,
                        "failure_ts": retry.failure_ts})

        await self.db.run_interaction("set_destination_retry", _txn)
