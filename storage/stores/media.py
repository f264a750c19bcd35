"""The media repository's metadata: local uploads (`local_media_repository`) and the cache
of remote media (`remote_media_cache`). The files themselves live in the storage backend,
keyed by SHA-256, so identical uploads share one stored copy."""

from __future__ import annotations

import attrs

from storage.database import DatabasePool, IntegrityError, Transaction

_LOCAL_COLUMNS = ("media_id, media_type, media_length, created_ts, upload_name, user_id, "
                  "sha256, unused_expires_at, authenticated, quarantined_by")
_REMOTE_COLUMNS = ("media_origin, media_id, media_type, media_length, created_ts, "
                   "upload_name, sha256, authenticated, quarantined_by")


@attrs.frozen(slots=True)
class LocalMedia:
    media_id: str
    media_type: str | None
    media_length: int | None
    created_ts: int
    upload_name: str | None
    user_id: str
    #: None while an async upload waits for its content
    sha256: str | None
    unused_expires_at: int | None
    authenticated: bool
    quarantined_by: str | None

    @property
    def pending(self) -> bool:
        return self.sha256 is None


@attrs.frozen(slots=True)
class RemoteMedia:
    media_origin: str
    media_id: str
    media_type: str
    media_length: int
    created_ts: int
    upload_name: str | None
    sha256: str
    authenticated: bool
    quarantined_by: str | None


def _local(row: tuple[object, ...]) -> LocalMedia:
    return LocalMedia(
        media_id=str(row[0]), media_type=row[1], media_length=row[2],  # type: ignore[arg-type]
        created_ts=int(row[3]), upload_name=row[4], user_id=str(row[5]),  # type: ignore[arg-type,call-overload]
        sha256=row[6], unused_expires_at=row[7], authenticated=bool(row[8]),  # type: ignore[arg-type]
        quarantined_by=row[9],  # type: ignore[arg-type]
    )


def _remote(row: tuple[object, ...]) -> RemoteMedia:
    return RemoteMedia(
        media_origin=str(row[0]), media_id=str(row[1]), media_type=str(row[2]),
        media_length=int(row[3]), created_ts=int(row[4]),  # type: ignore[call-overload]
        upload_name=row[5], sha256=str(row[6]), authenticated=bool(row[7]),  # type: ignore[arg-type]
        quarantined_by=row[8],  # type: ignore[arg-type]
    )


def _unreferenced_txn(txn: Transaction, hashes: set[str]) -> list[str]:
    """Of these content hashes, those no row of either table refers to any more."""
    orphans = []
    for sha in sorted(hashes):
        if txn.select_one("SELECT 1 FROM local_media_repository WHERE sha256 = ?", (sha,)):
            continue
        if txn.select_one("SELECT 1 FROM remote_media_cache WHERE sha256 = ?", (sha,)):
            continue
        orphans.append(sha)
    return orphans


class MediaStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    # -- local media --

    async def create_pending_media(self, media_id: str, user_id: str, now_ms: int,
                                   unused_expires_at: int, authenticated: bool) -> None:
        """Reserve a media ID for an async upload (`POST /_matrix/media/v1/create`)."""
        await self.db.run_interaction(
            "create_pending_media", lambda txn: txn.insert("local_media_repository", {
                "media_id": media_id, "user_id": user_id, "created_ts": now_ms,
                "unused_expires_at": unused_expires_at,
                "authenticated": 1 if authenticated else 0,
            }))

    async def store_local_media(self, media_id: str, user_id: str, media_type: str,
                                upload_name: str | None, media_length: int, sha256: str,
                                now_ms: int, authenticated: bool) -> None:
        """Record a completed upload."""
        await self.db.run_interaction(
            "store_local_media", lambda txn: txn.insert("local_media_repository", {
                "media_id": media_id, "user_id": user_id, "media_type": media_type,
                "upload_name": upload_name, "media_length": media_length, "sha256": sha256,
                "created_ts": now_ms, "last_access_ts": now_ms,
                "authenticated": 1 if authenticated else 0,
            }))

    async def complete_pending_media(self, media_id: str, user_id: str, media_type: str,
                                     upload_name: str | None, media_length: int, sha256: str,
                                     now_ms: int) -> bool:
        """Fill a pending media ID with its content.

        Returns:
            False if the ID is not a pending upload of this user that is still unexpired
            (already uploaded, someone else's, or expired): nothing was written.
        """

        def _txn(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE local_media_repository SET media_type = ?, upload_name = ?,"
                " media_length = ?, sha256 = ?, unused_expires_at = NULL,"
                " last_access_ts = ? WHERE media_id = ? AND user_id = ? AND sha256 IS NULL"
                " AND unused_expires_at > ?",
                (media_type, upload_name, media_length, sha256, now_ms, media_id, user_id,
                 now_ms))
            return txn.rowcount == 1

        return await self.db.run_interaction("complete_pending_media", _txn)

    async def get_local_media(self, media_id: str) -> LocalMedia | None:
        rows = await self.db.execute(
            "get_local_media",
            f"SELECT {_LOCAL_COLUMNS} FROM local_media_repository WHERE media_id = ?",
            media_id)
        return _local(rows[0]) if rows else None

    async def count_pending_media(self, user_id: str, now_ms: int) -> tuple[int, int | None]:
        """How many unexpired pending uploads the user holds, and when the first expires."""
        rows = await self.db.execute(
            "count_pending_media",
            "SELECT COUNT(*), MIN(unused_expires_at) FROM local_media_repository"
            " WHERE user_id = ? AND sha256 IS NULL AND unused_expires_at > ?",
            user_id, now_ms)
        count, first = rows[0]
        return int(count), (int(first) if first is not None else None)  # type: ignore[call-overload]

    async def get_uploaded_bytes(self, user_id: str, since_ms: int) -> int:
        """The bytes the user uploaded since `since_ms` (for `media_upload_limits`)."""
        rows = await self.db.execute(
            "get_uploaded_bytes",
            "SELECT COALESCE(SUM(media_length), 0) FROM local_media_repository"
            " WHERE user_id = ? AND created_ts >= ? AND sha256 IS NOT NULL",
            user_id, since_ms)
        return int(rows[0][0])  # type: ignore[call-overload]

    async def touch_local_media(self, media_id: str, now_ms: int) -> None:
        await self.db.execute(
            "touch_local_media",
            "UPDATE local_media_repository SET last_access_ts = ? WHERE media_id = ?",
            now_ms, media_id)

    async def set_quarantined(self, server_name: str, media_id: str, local: bool,
                              by: str | None) -> None:
        """Set or clear (`by=None`) the quarantine flag of one media item."""
        if local:
            await self.db.execute(
                "quarantine_local_media",
                "UPDATE local_media_repository SET quarantined_by = ? WHERE media_id = ?",
                by, media_id)
        else:
            await self.db.execute(
                "quarantine_remote_media",
                "UPDATE remote_media_cache SET quarantined_by = ?"
                " WHERE media_origin = ? AND media_id = ?", by, server_name, media_id)

    # -- remote media --

    async def get_remote_media(self, origin: str, media_id: str) -> RemoteMedia | None:
        rows = await self.db.execute(
            "get_remote_media",
            f"SELECT {_REMOTE_COLUMNS} FROM remote_media_cache"
            " WHERE media_origin = ? AND media_id = ?", origin, media_id)
        return _remote(rows[0]) if rows else None

    async def store_remote_media(self, origin: str, media_id: str, media_type: str,
                                 upload_name: str | None, media_length: int, sha256: str,
                                 now_ms: int, authenticated: bool) -> bool:
        """Cache a fetched remote item; False if another fetch stored it first."""

        def _txn(txn: Transaction) -> bool:
            try:
                txn.insert("remote_media_cache", {
                    "media_origin": origin, "media_id": media_id, "media_type": media_type,
                    "upload_name": upload_name, "media_length": media_length,
                    "sha256": sha256, "created_ts": now_ms, "last_access_ts": now_ms,
                    "authenticated": 1 if authenticated else 0,
                })
            except IntegrityError:
                return False
            return True

        return await self.db.run_interaction("store_remote_media", _txn)

    async def touch_remote_media(self, origin: str, media_id: str, now_ms: int) -> None:
        await self.db.execute(
            "touch_remote_media",
            "UPDATE remote_media_cache SET last_access_ts = ?"
            " WHERE media_origin = ? AND media_id = ?", now_ms, origin, media_id)

    # -- retention --

    async def get_unreferenced(self, hashes: list[str]) -> list[str]:
        """Of these content hashes, those no local or remote row refers to."""
        return await self.db.run_interaction(
            "get_unreferenced_media", _unreferenced_txn, set(hashes))

    async def delete_expired_pending(self, now_ms: int) -> int:
        """Drop async-upload IDs whose content never came; returns how many."""

        def _txn(txn: Transaction) -> int:
            txn.execute("DELETE FROM local_media_repository WHERE sha256 IS NULL"
                        " AND unused_expires_at <= ?", (now_ms,))
            return txn.rowcount

        return await self.db.run_interaction("delete_expired_pending", _txn)

    async def delete_local_media_before(self, before_ms: int, limit: int = 500) -> list[str]:
        """Delete local media not accessed since `before_ms` (quarantined media is kept as
        evidence). Returns the content hashes no row refers to any more."""

        def _txn(txn: Transaction) -> list[str]:
            rows = txn.select_all(
                "SELECT media_id, sha256 FROM local_media_repository WHERE sha256 IS NOT NULL"
                " AND quarantined_by IS NULL AND COALESCE(last_access_ts, created_ts) < ?"
                " ORDER BY media_id LIMIT ?", (before_ms, limit))
            txn.executemany("DELETE FROM local_media_repository WHERE media_id = ?",
                            [(r[0],) for r in rows])
            return _unreferenced_txn(txn, {str(r[1]) for r in rows})

        return await self.db.run_interaction("delete_local_media_before", _txn)

    async def delete_remote_media_before(self, before_ms: int, limit: int = 500) -> list[str]:
        """Drop cached remote media not accessed since `before_ms`; returns orphaned hashes."""

        def _txn(txn: Transaction) -> list[str]:
            rows = txn.select_all(
                "SELECT media_origin, media_id, sha256 FROM remote_media_cache"
                " WHERE quarantined_by IS NULL AND last_access_ts < ?"
                " ORDER BY media_origin, media_id LIMIT ?", (before_ms, limit))
            txn.executemany(
                "DELETE FROM remote_media_cache WHERE media_origin = ? AND media_id = ?",
                [(r[0], r[1]) for r in rows])
            return _unreferenced_txn(txn, {str(r[2]) for r in rows})

        return await self.db.run_interaction("delete_remote_media_before", _txn)
