"""The device-list stream: which users' devices changed, at which position, and the
membership reads /sync needs to tell who started or stopped sharing a room with a user."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import attrs

from storage.database import DatabasePool, Transaction
from storage.stream import StreamIdGenerator

# Keep `IN (...)` lists well under SQLite's oldest bound-parameter limit (999).
_CHUNK = 400


@attrs.frozen(slots=True)
class MembershipChange:
    """One membership event of a room the syncing user has (or had) a membership in."""

    user_id: str
    room_id: str
    membership: str
    stream_ordering: int


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


class DeviceListStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db
        self._stream = StreamIdGenerator(db, "device_lists_stream", "stream_id")

    def get_current_position(self) -> int:
        """The device-list stream position every reader may safely use."""
        return self._stream.get_current_token()

    async def add_device_changes(self, user_id: str, device_ids: Collection[str]) -> int:
        """Record that these devices of the user changed, under one new position (returned).

        Callers only call this for a real change: every position handed out gets a row, so
        the position restarts where it was after a reboot.
        """

        def _txn(txn: Transaction, stream_id: int) -> None:
            txn.executemany(
                "INSERT INTO device_lists_stream (stream_id, user_id, device_id)"
                " VALUES (?, ?, ?)",
                [(stream_id, user_id, d) for d in sorted(set(device_ids))])

        with self._stream.get_next() as stream_id:
            await self.db.run_interaction("add_device_changes", _txn, stream_id)
        return stream_id

    async def get_last_position_for_user(self, user_id: str,
                                         exclude_device: str | None = None) -> int:
        """The position of the user's newest device-list change (0 if none), leaving out
        the rows of `exclude_device`: the `stream_id` of
        `GET /_matrix/federation/v1/user/devices/{userId}`."""
        rows = await self.db.execute(
            "get_device_list_last_position_for_user",
            "SELECT MAX(stream_id) FROM device_lists_stream WHERE user_id = ?"
            " AND device_id != ?", user_id, exclude_device or "")
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    async def prune_superseded_changes(self) -> int:
        """Delete every row with a newer row for the same (user, device): "which users
        changed since X" is answered by each device's newest row alone. Returns how many
        rows went."""

        def _txn(txn: Transaction) -> int:
            txn.execute(
                "DELETE FROM device_lists_stream WHERE stream_id < ("
                " SELECT MAX(d.stream_id) FROM device_lists_stream AS d"
                " WHERE d.user_id = device_lists_stream.user_id"
                " AND d.device_id = device_lists_stream.device_id)")
            return txn.rowcount

        return await self.db.run_interaction("prune_device_lists_stream", _txn)

    async def delete_changes_for_users(self, user_ids: Collection[str]) -> None:
        """Forget the rows of these (remote) users, except the stream's newest row, which
        holds the position across restarts."""
        users = sorted(set(user_ids))

        def _txn(txn: Transaction) -> None:
            for chunk in _chunks(users):
                txn.execute(
                    "DELETE FROM device_lists_stream"
                    f" WHERE user_id IN ({','.join('?' * len(chunk))})"
                    " AND stream_id < (SELECT MAX(stream_id) FROM device_lists_stream)",
                    tuple(chunk))

        if users:
            await self.db.run_interaction("delete_device_list_changes_for_users", _txn)

    async def get_users_changed_between(self, from_key: int, to_key: int) -> set[str]:
        """Users with a device-list change at a position in (from_key, to_key]."""
        if from_key >= to_key:
            return set()
        rows = await self.db.execute(
            "get_device_list_users_changed",
            "SELECT DISTINCT user_id FROM device_lists_stream"
            " WHERE stream_id > ? AND stream_id <= ?", from_key, to_key)
        return {r[0] for r in rows}

    async def get_membership_changes_for_user(self, user_id: str, from_ordering: int,
                                              to_ordering: int) -> list[MembershipChange]:
        """Membership events in (from_ordering, to_ordering] of every room the local user
        has a membership row in (joined, left, invited...), oldest first."""
        if from_ordering >= to_ordering:
            return []
        rows = await self.db.execute(
            "get_membership_changes_for_user",
            "SELECT m.user_id, m.room_id, m.membership, m.stream_ordering"
            " FROM room_memberships AS m"
            " JOIN local_current_membership AS l ON l.room_id = m.room_id AND l.user_id = ?"
            " WHERE m.stream_ordering > ? AND m.stream_ordering <= ?"
            " ORDER BY m.stream_ordering",
            user_id, from_ordering, to_ordering)
        return [MembershipChange(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def get_users_joined_to_any(self, user_ids: Collection[str],
                                      room_ids: Collection[str]) -> set[str]:
        """Those of `user_ids` currently joined to at least one of `room_ids`."""
        users, rooms = sorted(set(user_ids)), sorted(set(room_ids))
        if not users or not rooms:
            return set()

        def _txn(txn: Transaction) -> set[str]:
            found: set[str] = set()
            for room_chunk in _chunks(rooms):
                wanted = [u for u in users if u not in found]
                for user_chunk in _chunks(wanted):
                    rows = txn.select_all(
                        "SELECT DISTINCT state_key FROM current_state_events"
                        f" WHERE room_id IN ({','.join('?' * len(room_chunk))})"
                        " AND type = 'm.room.member'"
                        f" AND state_key IN ({','.join('?' * len(user_chunk))})"
                        " AND membership = 'join'",
                        (*room_chunk, *user_chunk))
                    found.update(r[0] for r in rows)
            return found

        return await self.db.run_interaction("get_users_joined_to_any", _txn)
