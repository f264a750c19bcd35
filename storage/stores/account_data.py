"""Account data (global and per room) and room tags, on one account-data stream.

Global account data is stored with `room_id = ''`. Tag changes (adds and removals) are
recorded per (user, room) in `room_tags_revisions`, so /sync can resend a room's tags.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from storage.caches import LruCache
from storage.database import DatabasePool, Transaction
from storage.stream import StreamIdGenerator

#: the room_id of global account data
GLOBAL = ""

IGNORED_USER_LIST = "m.ignored_user_list"
INVITE_PERMISSION_CONFIG = "m.invite_permission_config"

#: both tables draw from one counter: it restarts above the maximum of the two
_STREAM_SOURCE = ("(SELECT stream_id FROM account_data"
                  " UNION ALL SELECT stream_id FROM room_tags_revisions) AS ad_stream")

#: users remembered by the "changed since" map before it is reset
_MAX_TRACKED_USERS = 100_000


@attrs.frozen(slots=True)
class AccountDataRow:
    #: "" for global account data
    room_id: str
    type: str
    content: Mapping[str, Any]
    stream_id: int


class AccountDataStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._stream_ids = StreamIdGenerator(db, _STREAM_SOURCE, "stream_id")
        self._ignored_cache: LruCache[str, frozenset[str]] = LruCache(50_000)
        self._blocks_invites_cache: LruCache[str, bool] = LruCache(50_000)
        # user -> highest stream id allocated for them since `_tracked_from`: lets an
        # incremental /sync skip the database when nothing of the user changed.
        self._tracked_from = self._stream_ids.get_current_token()
        self._last_change: dict[str, int] = {}

    def get_current_position(self) -> int:
        """The account-data stream position up to which every change is persisted."""
        return self._stream_ids.get_current_token()

    def _note_change(self, user_id: str, stream_id: int) -> None:
        if len(self._last_change) >= _MAX_TRACKED_USERS:
            self._last_change.clear()
            self._tracked_from = stream_id - 1
        self._last_change[user_id] = stream_id

    def may_have_changed(self, user_id: str, from_key: int) -> bool:
        """False only when certainly nothing of the user changed after `from_key`."""
        if from_key < self._tracked_from:
            return True
        return self._last_change.get(user_id, 0) > from_key

    # -- account data --

    async def set_account_data(self, user_id: str, room_id: str, data_type: str,
                               content: Mapping[str, Any]) -> int:
        """Store global (`room_id` "") or room account data; returns its stream id."""
        encoded = json.dumps(dict(content))
        with self._stream_ids.get_next() as stream_id:
            self._note_change(user_id, stream_id)
            await self.db.run_interaction(
                "set_account_data", self._set_account_data_txn, user_id, room_id,
                data_type, encoded, stream_id)
        return stream_id

    def _set_account_data_txn(self, txn: Transaction, user_id: str, room_id: str,
                              data_type: str, content: str, stream_id: int) -> None:
        # The later allocation wins if two writes of one key commit out of order.
        txn.execute(
            "INSERT INTO account_data (user_id, room_id, account_data_type, content,"
            " stream_id) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id, room_id, account_data_type) DO UPDATE SET"
            " content = EXCLUDED.content, stream_id = EXCLUDED.stream_id"
            " WHERE account_data.stream_id < EXCLUDED.stream_id",
            (user_id, room_id, data_type, content, stream_id))
        if room_id == GLOBAL and data_type == IGNORED_USER_LIST:
            txn.call_after(self._ignored_cache.invalidate, user_id)
        if room_id == GLOBAL and data_type == INVITE_PERMISSION_CONFIG:
            txn.call_after(self._blocks_invites_cache.invalidate, user_id)

    async def get_account_data(self, user_id: str, room_id: str,
                               data_type: str) -> dict[str, Any] | None:
        """The content of one global (`room_id` "") or room account data type, or None."""
        rows = await self.db.execute(
            "get_account_data",
            "SELECT content FROM account_data WHERE user_id = ? AND room_id = ?"
            " AND account_data_type = ?", user_id, room_id, data_type)
        if not rows:
            return None
        content: dict[str, Any] = json.loads(rows[0][0])
        return content

    async def get_account_data_changes(self, user_id: str, from_key: int | None,
                                       to_key: int) -> list[AccountDataRow]:
        """The user's account data last written in (from_key, to_key] (all up to to_key
        when from_key is None), oldest first."""
        low = -1 if from_key is None else from_key
        if low >= to_key:
            return []
        rows = await self.db.execute(
            "get_account_data_changes",
            "SELECT room_id, account_data_type, content, stream_id FROM account_data"
            " WHERE user_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id",
            user_id, low, to_key)
        return [AccountDataRow(room_id=r[0], type=r[1], content=json.loads(r[2]),
                               stream_id=int(r[3])) for r in rows]

    async def get_ignored_users(self, user_id: str) -> frozenset[str]:
        """The keys of `ignored_users` in the user's `m.ignored_user_list` (cached)."""
        cached = self._ignored_cache.get(user_id)
        if cached is not None:
            return cached
        sequence = self._ignored_cache.sequence
        content = await self.get_account_data(user_id, GLOBAL, IGNORED_USER_LIST)
        ignored = (content or {}).get("ignored_users")
        result = frozenset(ignored) if isinstance(ignored, dict) else frozenset()
        self._ignored_cache.set(user_id, result, expected_sequence=sequence)
        return result

    async def blocks_invites(self, user_id: str) -> bool:
        """Whether `m.invite_permission_config` says `default_action: block` (cached)."""
        cached = self._blocks_invites_cache.get(user_id)
        if cached is not None:
            return cached
        sequence = self._blocks_invites_cache.sequence
        content = await self.get_account_data(user_id, GLOBAL, INVITE_PERMISSION_CONFIG)
        blocked = (content or {}).get("default_action") == "block"
        self._blocks_invites_cache.set(user_id, blocked, expected_sequence=sequence)
        return blocked

    # -- room tags --

    async def add_tag(self, user_id: str, room_id: str, tag: str,
                      content: Mapping[str, Any]) -> int:
        """Add or replace one tag of a room; returns its stream id."""
        encoded = json.dumps(dict(content))
        with self._stream_ids.get_next() as stream_id:
            self._note_change(user_id, stream_id)
            await self.db.run_interaction(
                "add_tag", self._add_tag_txn, user_id, room_id, tag, encoded, stream_id)
        return stream_id

    def _add_tag_txn(self, txn: Transaction, user_id: str, room_id: str, tag: str,
                     content: str, stream_id: int) -> None:
        txn.upsert("room_tags", {"user_id": user_id, "room_id": room_id, "tag": tag},
                   {"content": content, "stream_id": stream_id})
        self._bump_tags_revision_txn(txn, user_id, room_id, stream_id)

    async def remove_tag(self, user_id: str, room_id: str, tag: str) -> int | None:
        """Remove one tag of a room; returns the stream id, or None if it was not set."""
        with self._stream_ids.get_next() as stream_id:
            self._note_change(user_id, stream_id)
            removed = await self.db.run_interaction(
                "remove_tag", self._remove_tag_txn, user_id, room_id, tag, stream_id)
        return stream_id if removed else None

    def _remove_tag_txn(self, txn: Transaction, user_id: str, room_id: str, tag: str,
                        stream_id: int) -> bool:
        txn.execute("DELETE FROM room_tags WHERE user_id = ? AND room_id = ? AND tag = ?",
                    (user_id, room_id, tag))
        if txn.rowcount <= 0:
            return False
        self._bump_tags_revision_txn(txn, user_id, room_id, stream_id)
        return True

    @staticmethod
    def _bump_tags_revision_txn(txn: Transaction, user_id: str, room_id: str,
                                stream_id: int) -> None:
        txn.execute(
            "INSERT INTO room_tags_revisions (user_id, room_id, stream_id) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id, room_id) DO UPDATE SET stream_id = EXCLUDED.stream_id"
            " WHERE room_tags_revisions.stream_id < EXCLUDED.stream_id",
            (user_id, room_id, stream_id))

    async def get_tags_for_room(self, user_id: str, room_id: str) -> dict[str, Any]:
        """tag -> its content, for one room of the user."""
        rows = await self.db.execute(
            "get_tags_for_room",
            "SELECT tag, content FROM room_tags WHERE user_id = ? AND room_id = ?",
            user_id, room_id)
        return {r[0]: json.loads(r[1]) for r in rows}

    async def get_tag_changes(self, user_id: str, from_key: int | None,
                              to_key: int) -> dict[str, dict[str, Any]]:
        """room_id -> all its current tags, for the rooms whose tags changed in
        (from_key, to_key] (every room with a revision up to to_key when from_key is None;
        a room whose last tag was removed maps to {})."""
        low = -1 if from_key is None else from_key
        if low >= to_key:
            return {}

        def _txn(txn: Transaction) -> dict[str, dict[str, Any]]:
            rooms = [r[0] for r in txn.select_all(
                "SELECT room_id FROM room_tags_revisions WHERE user_id = ?"
                " AND stream_id > ? AND stream_id <= ?", (user_id, low, to_key))]
            result: dict[str, dict[str, Any]] = {room_id: {} for room_id in rooms}
            if not rooms:
                return result
            if from_key is None:
                rows = txn.select_all(
                    "SELECT room_id, tag, content FROM room_tags WHERE user_id = ?",
                    (user_id,))
            else:
                rows = txn.select_all(
                    "SELECT t.room_id, t.tag, t.content FROM room_tags AS t"
                    " JOIN room_tags_revisions AS r"
                    " ON r.user_id = t.user_id AND r.room_id = t.room_id"
                    " WHERE t.user_id = ? AND r.stream_id > ? AND r.stream_id <= ?",
                    (user_id, low, to_key))
            for room_id, tag, content in rows:
                if room_id in result:
                    result[room_id][tag] = json.loads(content)
            return result

        return await self.db.run_interaction("get_tag_changes", _txn)
