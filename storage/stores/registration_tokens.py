"""Registration tokens (spec: "Token-authenticated registration") and the claims on them.

A token is valid while it has uses left (`pending + completed < uses_allowed`, or no
limit) and has not expired (`expiry_time` is the last valid millisecond). A UIA session
that passes the token stage holds a claim (`pending` + 1); the claim is settled as used
when registration succeeds, or released when the session expires.
"""

from __future__ import annotations

import enum

import attrs

from storage.database import DatabasePool, IntegrityError, Transaction


class Keep(enum.Enum):
    """Marks a column that an update leaves as it is."""

    KEEP = 0


KEEP = Keep.KEEP

_COLS = "token, uses_allowed, pending, completed, expiry_time"

# `?` is the current time in milliseconds.
_VALID_SQL = (
    "(uses_allowed IS NULL OR pending + completed < uses_allowed)"
    " AND (expiry_time IS NULL OR expiry_time >= ?)"
)
_INVALID_SQL = (
    "((uses_allowed IS NOT NULL AND pending + completed >= uses_allowed)"
    " OR (expiry_time IS NOT NULL AND expiry_time < ?))"
)


@attrs.frozen(slots=True)
class RegistrationTokenRow:
    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_time: int | None


def _row(r: tuple) -> RegistrationTokenRow:  # type: ignore[type-arg]
    return RegistrationTokenRow(
        token=r[0], uses_allowed=None if r[1] is None else int(r[1]), pending=int(r[2]),
        completed=int(r[3]), expiry_time=None if r[4] is None else int(r[4]),
    )


def _get_token_txn(txn: Transaction, token: str) -> RegistrationTokenRow | None:
    row = txn.select_one(f"SELECT {_COLS} FROM registration_tokens WHERE token = ?", (token,))
    return _row(row) if row else None


class _ClaimRace(Exception):
    """Another request of the same session claimed first; its claim stands."""


class RegistrationTokenStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    # -- administration --

    async def get_token(self, token: str) -> RegistrationTokenRow | None:
        return await self.db.run_interaction("get_registration_token", _get_token_txn, token)

    async def list_tokens(self, valid: bool | None, now_ms: int) -> list[RegistrationTokenRow]:
        """All tokens, or only the valid (`True`) or invalid (`False`) ones, by token."""
        where = ""
        args: tuple[int, ...] = ()
        if valid is not None:
            where, args = f" WHERE {_VALID_SQL if valid else _INVALID_SQL}", (now_ms,)
        rows = await self.db.execute(
            "list_registration_tokens",
            f"SELECT {_COLS} FROM registration_tokens{where} ORDER BY token", *args,
        )
        return [_row(r) for r in rows]

    async def create_token(self, token: str, uses_allowed: int | None,
                           expiry_time: int | None) -> bool:
        """Add a token; False if one with that name exists."""

        def _txn(txn: Transaction) -> None:
            txn.insert("registration_tokens", {
                "token": token, "uses_allowed": uses_allowed, "pending": 0, "completed": 0,
                "expiry_time": expiry_time,
            })

        try:
            await self.db.run_interaction("create_registration_token", _txn)
        except IntegrityError:
            return False
        return True

    async def update_token(self, token: str, uses_allowed: int | None | Keep = KEEP,
                           expiry_time: int | None | Keep = KEEP
                           ) -> RegistrationTokenRow | None:
        """Change the given columns; returns the updated row, or None if there is no token."""
        changes = {k: v for k, v in (("uses_allowed", uses_allowed),
                                     ("expiry_time", expiry_time)) if v is not KEEP}

        def _txn(txn: Transaction) -> RegistrationTokenRow | None:
            if changes:
                sets = ", ".join(f"{col} = ?" for col in changes)
                txn.execute(f"UPDATE registration_tokens SET {sets} WHERE token = ?",
                            (*changes.values(), token))
            return _get_token_txn(txn, token)

        return await self.db.run_interaction("update_registration_token", _txn)

    async def delete_token(self, token: str) -> bool:
        """Delete a token and the claims on it; False if there was no such token."""

        def _txn(txn: Transaction) -> bool:
            txn.execute("DELETE FROM registration_tokens WHERE token = ?", (token,))
            deleted = txn.rowcount > 0
            # A token later re-created under the same name starts from clean counters.
            txn.execute("DELETE FROM registration_token_claims WHERE token = ?", (token,))
            return deleted

        return await self.db.run_interaction("delete_registration_token", _txn)

    # -- use during registration --

    async def is_valid(self, token: str, now_ms: int) -> bool:
        rows = await self.db.execute(
            "registration_token_is_valid",
            f"SELECT 1 FROM registration_tokens WHERE token = ? AND {_VALID_SQL}", token, now_ms,
        )
        return bool(rows)

    async def claim(self, token: str, session_id: str, now_ms: int) -> str | None:
        """Let a UIA session hold one use of `token`.

        Returns:
            the token the session holds: the one it claimed before (which may differ from
            `token`), else `token` if it was valid and is now claimed; None if it is invalid.
        """

        def _txn(txn: Transaction) -> str | None:
            held = txn.select_one(
                "SELECT token FROM registration_token_claims WHERE session_id = ?", (session_id,)
            )
            if held is not None:
                return str(held[0])
            # Check and count in one statement, so two sessions cannot take the last use.
            txn.execute(
                f"UPDATE registration_tokens SET pending = pending + 1"
                f" WHERE token = ? AND {_VALID_SQL}", (token, now_ms),
            )
            if txn.rowcount != 1:
                return None
            try:
                txn.insert("registration_token_claims", {
                    "session_id": session_id, "token": token, "creation_time": now_ms,
                })
            except IntegrityError as e:
                raise _ClaimRace() from e  # rolls the `pending` increment back
            return token

        try:
            return await self.db.run_interaction("claim_registration_token", _txn)
        except _ClaimRace:
            rows = await self.db.execute(
                "get_registration_token_claim",
                "SELECT token FROM registration_token_claims WHERE session_id = ?", session_id,
            )
            return str(rows[0][0]) if rows else None

    async def use_claim(self, session_id: str) -> None:
        """Registration succeeded: the session's claim moves from `pending` to `completed`.

        Idempotent: a claim is counted as completed at most once.
        """

        def _txn(txn: Transaction) -> None:
            txn.execute(
                "UPDATE registration_token_claims SET used = 1 WHERE session_id = ? AND used = 0",
                (session_id,),
            )
            if txn.rowcount != 1:
                return
            row = txn.select_one(
                "SELECT token FROM registration_token_claims WHERE session_id = ?", (session_id,)
            )
            assert row is not None
            txn.execute(
                "UPDATE registration_tokens SET completed = completed + 1,"
                " pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END WHERE token = ?",
                (row[0],),
            )

        await self.db.run_interaction("use_registration_token_claim", _txn)

    async def release_expired_claims(self, older_than_ms: int) -> int:
        """Give back the uses held by unfinished sessions created before `older_than_ms`.

        Returns:
            how many claims were released.
        """

        def _txn(txn: Transaction) -> int:
            rows = txn.select_all(
                "SELECT token, COUNT(*) FROM registration_token_claims"
                " WHERE used = 0 AND creation_time < ? GROUP BY token", (older_than_ms,),
            )
            for token, count in rows:
                txn.execute(
                    "UPDATE registration_tokens SET pending = CASE WHEN pending > ?"
                    " THEN pending - ? ELSE 0 END WHERE token = ?", (count, count, token),
                )
            txn.execute(
                "DELETE FROM registration_token_claims WHERE used = 0 AND creation_time < ?",
                (older_than_ms,),
            )
            return sum(int(c) for _, c in rows)

        return await self.db.run_interaction("release_expired_registration_token_claims", _txn)
