"""Local user accounts."""

from __future__ import annotations

import attrs

from storage.caches import LruCache
from storage.database import DatabasePool, IntegrityError, Transaction
from storage.stores.profiles import index_user_directory_txn


@attrs.frozen(slots=True)
class UserRow:
    user_id: str
    password_hash: str | None
    creation_ts: int
    admin: bool
    is_guest: bool
    user_type: str | None
    deactivated: bool
    locked: bool
    suspended: bool
    shadow_banned: bool
    #: a role below full admin ("moderator"), or None
    admin_role: str | None = None


_USER_COLS = (
    "name, password_hash, creation_ts, admin, is_guest, user_type, deactivated, locked,"
    " suspended, shadow_banned, admin_role"
)


def _user_row(row: tuple) -> UserRow:  # type: ignore[type-arg]
    return UserRow(
        user_id=row[0], password_hash=row[1], creation_ts=int(row[2]), admin=bool(row[3]),
        is_guest=bool(row[4]), user_type=row[5], deactivated=bool(row[6]), locked=bool(row[7]),
        suspended=bool(row[8]), shadow_banned=bool(row[9]), admin_role=row[10],
    )


class UserStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        # Every write below invalidates its user's entry once it has committed.
        self._cache: LruCache[str, UserRow] = LruCache(50_000)

    async def register_user(self, user_id: str, password_hash: str | None, creation_ts: int,
                            admin: bool = False, user_type: str | None = None,
                            displayname: str | None = None) -> bool:
        """Create the account and its profile. Returns False if the user ID is taken."""

        def _txn(txn: Transaction) -> bool:
            try:
                txn.insert("users", {
                    "name": user_id, "password_hash": password_hash,
                    "creation_ts": creation_ts, "admin": int(admin), "user_type": user_type,
                })
            except IntegrityError:
                return False
            txn.upsert("profiles", {"user_id": user_id}, {"displayname": displayname})
            index_user_directory_txn(txn, user_id, displayname)
            return True

        return await self.db.run_interaction("register_user", _txn)

    async def get_user(self, user_id: str) -> UserRow | None:
        """The account (cached: every request's token check reads it)."""
        cached = self._cache.get(user_id)
        if cached is not None:
            return cached
        seq = self._cache.sequence
        rows = await self.db.execute(
            "get_user", f"SELECT {_USER_COLS} FROM users WHERE name = ?", user_id
        )
        if not rows:
            return None
        user = _user_row(rows[0])
        self._cache.set(user_id, user, expected_sequence=seq)
        return user

    async def get_user_case_insensitive(self, user_id: str) -> list[str]:
        rows = await self.db.execute(
            "get_user_case_insensitive", "SELECT name FROM users WHERE lower(name) = lower(?)",
            user_id,
        )
        return [r[0] for r in rows]

    _FLAGS = frozenset({"admin", "is_guest", "deactivated", "locked", "suspended",
                        "shadow_banned", "user_type", "admin_role"})

    async def set_flags(self, user_id: str, **flags: object) -> None:
        """Set account flags (admin, is_guest, deactivated, locked, suspended, shadow_banned,
        user_type, admin_role); booleans are stored as 0/1."""
        unknown = set(flags) - self._FLAGS
        if unknown:
            raise ValueError(f"unknown user flags {sorted(unknown)}")
        if not flags:
            return
        sets = ", ".join(f"{k} = ?" for k in flags)
        values = [int(v) if isinstance(v, bool) else v for v in flags.values()]
        await self.db.execute("set_user_flags", f"UPDATE users SET {sets} WHERE name = ?",
                              *values, user_id)
        self._cache.invalidate(user_id)

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self.db.execute(
            "set_password_hash", "UPDATE users SET password_hash = ? WHERE name = ?",
            password_hash, user_id,
        )
        self._cache.invalidate(user_id)

    async def set_admin(self, user_id: str, admin: bool) -> None:
        await self.db.execute(
            "set_admin", "UPDATE users SET admin = ? WHERE name = ?", int(admin), user_id
        )
        self._cache.invalidate(user_id)

    async def set_deactivated(self, user_id: str, deactivated: bool) -> None:
        await self.db.execute(
            "set_deactivated", "UPDATE users SET deactivated = ? WHERE name = ?",
            int(deactivated), user_id,
        )
        self._cache.invalidate(user_id)

    async def deactivate_account(self, user_id: str) -> None:
        """Mark the user deactivated, drop the password hash and clear the profile (display
        name, avatar and custom fields), in one transaction. The row stays, so the name stays
        taken.
        """

        def _txn(txn: Transaction) -> None:
            txn.execute(
                "UPDATE users SET deactivated = 1, password_hash = NULL WHERE name = ?",
                (user_id,),
            )
            txn.execute(
                "UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = ?",
                (user_id,),
            )
            txn.execute("DELETE FROM profile_fields WHERE user_id = ?", (user_id,))
            index_user_directory_txn(txn, user_id, None)

        await self.db.run_interaction("deactivate_account", _txn)
        self._cache.invalidate(user_id)

    async def set_locked(self, user_id: str, locked: bool) -> None:
        await self.db.execute(
            "set_locked", "UPDATE users SET locked = ? WHERE name = ?", int(locked), user_id
        )
        self._cache.invalidate(user_id)

    async def count_users(self) -> int:
        rows = await self.db.execute("count_users", "SELECT COUNT(*) FROM users")
        return int(rows[0][0])
