"""Cached URL previews: the OpenGraph JSON of a URL until it expires."""

from __future__ import annotations

from storage.database import DatabasePool, Transaction


class UrlPreviewStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def get_preview(self, url: str, now_ms: int) -> str | None:
        """The newest unexpired OpenGraph JSON of `url`, or None."""
        rows = await self.db.execute(
            "get_url_preview",
            "SELECT og FROM url_previews WHERE url = ? AND expires_ms > ?"
            " ORDER BY fetched_ms DESC LIMIT 1", url, now_ms)
        return str(rows[0][0]) if rows else None

    async def store_preview(self, url: str, fetched_ms: int, expires_ms: int, og: str) -> None:
        """Keep a preview, and drop the expired ones (indexed by expiry) on the way."""

        def _txn(txn: Transaction) -> None:
            txn.execute("DELETE FROM url_previews WHERE expires_ms <= ?", (fetched_ms,))
            txn.upsert("url_previews", {"url": url, "fetched_ms": fetched_ms},
                       {"expires_ms": expires_ms, "og": og})

        await self.db.run_interaction("store_url_preview", _txn)

    async def delete_expired(self, now_ms: int) -> None:
        await self.db.execute("delete_expired_url_previews",
                              "DELETE FROM url_previews WHERE expires_ms <= ?", now_ms)
