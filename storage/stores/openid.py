"""OpenID tokens: short-lived proofs of a user's identity for third-party services,
stored only as SHA-256 hashes with their expiry."""

from __future__ import annotations

from storage.database import DatabasePool, Transaction


class OpenIdStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def add_token(self, token_hash: str, user_id: str, valid_until_ms: int,
                        now_ms: int) -> None:
        """Store a new token, and drop the expired ones (indexed by expiry) on the way."""

        def _txn(txn: Transaction) -> None:
            txn.execute("DELETE FROM open_id_tokens WHERE valid_until_ms <= ?", (now_ms,))
            txn.insert("open_id_tokens", {"token_hash": token_hash, "user_id": user_id,
                                          "valid_until_ms": valid_until_ms})

        await self.db.run_interaction("add_open_id_token", _txn)

    async def get_user_for_token(self, token_hash: str, now_ms: int) -> str | None:
        """The user the token was issued to, or None if unknown or expired."""
        rows = await self.db.execute(
            "get_open_id_token",
            "SELECT user_id FROM open_id_tokens WHERE token_hash = ? AND valid_until_ms > ?",
            token_hash, now_ms)
        return str(rows[0][0]) if rows else None
