"""Profiles (`displayname`, `avatar_url`, extended fields) and the user directory index.

Every write of a display name goes through `index_user_directory_txn` in the same
transaction, so the directory's search tokens never lag behind the profile.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from storage.database import DatabasePool, Transaction
from storage.stores.user_directory import VISIBLE_TO_SEARCHER_SQL

#: the profile keys kept as columns of `profiles`; every other key is a `profile_fields` row
COLUMN_FIELDS = ("displayname", "avatar_url")

# Token kinds in `user_directory_search` (see 20_profile_fields.sql).
KIND_LOCALPART = 0
KIND_DISPLAYNAME = 1
KIND_WORD = 2

MAX_TOKEN_LENGTH = 256
#: at most this many words of a search term are matched (each adds a sub-query)
MAX_SEARCH_WORDS = 8
# Above every real code point, so `[prefix, prefix + _TOP)` is the range of strings
# starting with `prefix` in byte (code point) order.
_TOP = "\U0010ffff"
_WORD_RE = re.compile(r"[^\W_]+")


@attrs.frozen(slots=True)
class ProfileRow:
    displayname: str | None
    avatar_url: str | None


@attrs.frozen(slots=True)
class DirectoryHit:
    user_id: str
    displayname: str | None
    avatar_url: str | None


def words(text: str) -> list[str]:
    """The lower-cased alphanumeric words of `text` (punctuation and `_` separate words)."""
    return _WORD_RE.findall(text.lower())


def directory_tokens(user_id: str, displayname: str | None) -> dict[str, int]:
    """The search tokens of a user, each with its kind (the lowest kind wins)."""
    localpart = user_id[1:].split(":", 1)[0].lower()
    found: list[tuple[str, int]] = [(localpart, KIND_LOCALPART)]
    found += [(w, KIND_WORD) for w in words(localpart)]
    if displayname:
        found.append((displayname.strip().lower(), KIND_DISPLAYNAME))
        found += [(w, KIND_WORD) for w in words(displayname)]
    tokens: dict[str, int] = {}
    for token, kind in found:
        token = token[:MAX_TOKEN_LENGTH]
        if token and kind < tokens.get(token, KIND_WORD + 1):
            tokens[token] = kind
    return tokens


def index_user_directory_txn(txn: Transaction, user_id: str, displayname: str | None) -> None:
    """Replace the user's directory search tokens (call wherever a display name is written)."""
    txn.execute("DELETE FROM user_directory_search WHERE user_id = ?", (user_id,))
    txn.executemany(
        "INSERT INTO user_directory_search (user_id, token, kind) VALUES (?, ?, ?)",
        [(user_id, token, kind) for token, kind in directory_tokens(user_id, displayname).items()],
    )


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix_clause(prefix: str) -> tuple[str, list[Any]]:
    # The range lets both engines use the token index; LIKE (escaped) makes the match exact
    # even where a collation would order strings differently.
    return ("token >= ? AND token < ? AND token LIKE ? ESCAPE '\\'",
            [prefix, prefix + _TOP, _escape_like(prefix) + "%"])


def _profile_size(profile: dict[str, Any]) -> int:
    """Bytes of the profile as compact JSON, the size the 64 KiB limit applies to."""
    return len(json.dumps(profile, ensure_ascii=False, separators=(",", ":"),
                          sort_keys=True).encode("utf-8"))


class ProfileStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def get_profile(self, user_id: str) -> ProfileRow | None:
        """The `displayname` and `avatar_url` columns; None if the user has no profile row."""
        rows = await self.db.execute(
            "get_profile", "SELECT displayname, avatar_url FROM profiles WHERE user_id = ?",
            user_id,
        )
        return ProfileRow(displayname=rows[0][0], avatar_url=rows[0][1]) if rows else None

    async def get_full_profile(self, user_id: str) -> dict[str, Any] | None:
        """Every set field of the profile as one dict; None if the user has no profile row."""
        return await self.db.run_interaction("get_full_profile", self._get_full_profile_txn,
                                             user_id)

    def _get_full_profile_txn(self, txn: Transaction, user_id: str) -> dict[str, Any] | None:
        row = txn.select_one(
            "SELECT displayname, avatar_url FROM profiles WHERE user_id = ?", (user_id,)
        )
        if row is None:
            return None
        profile: dict[str, Any] = {
            name: value for name, value in zip(COLUMN_FIELDS, row, strict=True)
            if value is not None
        }
        for name, value in txn.select_all(
            "SELECT field_name, value FROM profile_fields WHERE user_id = ?", (user_id,)
        ):
            profile[name] = json.loads(value)
        return profile

    async def get_profile_field(self, user_id: str, field_name: str) -> Any:
        """One field's value, or None if it is unset."""
        if field_name in COLUMN_FIELDS:
            row = await self.get_profile(user_id)
            return None if row is None else getattr(row, field_name)
        rows = await self.db.execute(
            "get_profile_field",
            "SELECT value FROM profile_fields WHERE user_id = ? AND field_name = ?",
            user_id, field_name,
        )
        return json.loads(rows[0][0]) if rows else None

    async def set_profile_field(self, user_id: str, field_name: str, value: Any,
                                max_profile_bytes: int | None = None) -> bool:
        """Set one field (`value` None removes it).

        The size check and the write happen in one transaction that locks the profile row,
        so concurrent writes of different keys cannot together exceed the limit.

        Returns:
            False, without writing, if the profile would exceed `max_profile_bytes`.
        """
        return await self.db.run_interaction(
            "set_profile_field", self._set_profile_field_txn, user_id, field_name, value,
            max_profile_bytes,
        )

    def _set_profile_field_txn(self, txn: Transaction, user_id: str, field_name: str,
                               value: Any, max_profile_bytes: int | None) -> bool:
        # A no-op update takes the row lock (PostgreSQL); a concurrent writer then waits
        # and is retried on its serialisation failure.
        txn.execute("UPDATE profiles SET user_id = user_id WHERE user_id = ?", (user_id,))
        if txn.rowcount == 0:
            txn.insert("profiles", {"user_id": user_id})
        if value is not None and max_profile_bytes is not None:
            profile = self._get_full_profile_txn(txn, user_id) or {}
            profile[field_name] = value
            if _profile_size(profile) > max_profile_bytes:
                return False
        if field_name in COLUMN_FIELDS:
            # The column name comes from the fixed COLUMN_FIELDS, never from the request.
            column = COLUMN_FIELDS[COLUMN_FIELDS.index(field_name)]
            txn.execute(f"UPDATE profiles SET {column} = ? WHERE user_id = ?", (value, user_id))
            if column == "displayname":
                index_user_directory_txn(txn, user_id, value)
        elif value is None:
            txn.execute("DELETE FROM profile_fields WHERE user_id = ? AND field_name = ?",
                        (user_id, field_name))
        else:
            txn.upsert("profile_fields", {"user_id": user_id, "field_name": field_name},
                       {"value": json.dumps(value, ensure_ascii=False, separators=(",", ":"))})
        return True

    # -- user directory --

    async def search_user_directory(self, term: str, limit: int,
                                    visible_to: str | None = None) -> list[DirectoryHit]:
        """Local, active, non-guest, non-support users whose tokens match `term` (and,
        with `visible_to`, whom that searcher may find: `VISIBLE_TO_SEARCHER_SQL`).

        A user matches if a token starts with the whole (lower-cased) term, or if every word
        of the term starts one of their tokens. Results come best first: an exact localpart
        or display name, then a prefix of either, then word matches; within a rank, users
        with a display name, then with an avatar, then by user ID.

        Args:
            term: the search term (case and surrounding space do not matter).
            limit: the most results to return.
            visible_to: the searcher, when results are limited to the users they share
                a room with or who are in public rooms; None for every user.
        """
        term = term.strip().lower()
        term_words = words(term)[:MAX_SEARCH_WORDS]
        if not term or limit <= 0:
            return []
        return await self.db.run_interaction(
            "search_user_directory", self._search_txn, term, term_words, limit, visible_to
        )

    def _search_txn(self, txn: Transaction, term: str, term_words: list[str],
                    limit: int, visible_to: str | None) -> list[DirectoryHit]:
        where, args = _prefix_clause(term)
        branches = [
            "SELECT user_id, CASE WHEN kind < ? AND token = ? THEN 0 WHEN kind < ? THEN 1"
            f" ELSE 2 END AS score FROM user_directory_search WHERE {where}"
        ]
        params: list[Any] = [KIND_WORD, term, KIND_WORD, *args]
        if term_words and term_words != [term]:
            parts = []
            for word in term_words:
                where, args = _prefix_clause(word)
                parts.append(f"SELECT user_id FROM user_directory_search WHERE {where}")
                params += args
            branches.append(f"SELECT user_id, 2 AS score FROM ({' INTERSECT '.join(parts)}) w")
        visible = ""
        if visible_to is not None:
            visible = f" AND {VISIBLE_TO_SEARCHER_SQL}"
            params.append(visible_to)
        sql = (
            "SELECT u.name, p.displayname, p.avatar_url FROM ("
            "  SELECT user_id, MIN(score) AS score FROM ("
            f"   {' UNION ALL '.join(branches)}"
            "  ) m GROUP BY user_id"
            " ) r"
            " JOIN users u ON u.name = r.user_id"
            " LEFT JOIN profiles p ON p.user_id = u.name"
            " WHERE u.deactivated = 0 AND u.is_guest = 0 AND u.locked = 0"
            "  AND (u.user_type IS NULL OR u.user_type <> 'support')"
            f"{visible}"
            " ORDER BY r.score, CASE WHEN p.displayname IS NULL THEN 1 ELSE 0 END,"
            "  CASE WHEN p.avatar_url IS NULL THEN 1 ELSE 0 END, u.name"
            " LIMIT ?"
        )
        params.append(limit)
        return [DirectoryHit(user_id=r[0], displayname=r[1], avatar_url=r[2])
                for r in txn.select_all(sql, params)]
