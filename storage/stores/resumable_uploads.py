"""Resumable (tus) uploads in progress: length, offset reached, metadata and expiry."""

from __future__ import annotations

from typing import Any

import attrs

from storage.database import DatabasePool, Transaction

_COLUMNS = ("upload_id, user_id, upload_length, upload_offset, filename, content_type, "
            "created_ms, expires_ms, content_uri")


@attrs.frozen(slots=True)
class ResumableUploadRow:
    upload_id: str
    user_id: str
    upload_length: int
    upload_offset: int
    filename: str | None
    content_type: str | None
    created_ms: int
    expires_ms: int
    content_uri: str | None


def _row(r: tuple[Any, ...]) -> ResumableUploadRow:
    return ResumableUploadRow(
        upload_id=str(r[0]), user_id=str(r[1]), upload_length=int(r[2]),
        upload_offset=int(r[3]), filename=r[4], content_type=r[5],
        created_ms=int(r[6]), expires_ms=int(r[7]), content_uri=r[8],
    )


class ResumableUploadStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def create_upload(self, row: ResumableUploadRow) -> None:
        await self.db.run_interaction(
            "create_resumable_upload",
            lambda txn: txn.insert("resumable_uploads", attrs.asdict(row)))

    async def get_upload(self, upload_id: str) -> ResumableUploadRow | None:
        rows = await self.db.execute(
            "get_resumable_upload",
            f"SELECT {_COLUMNS} FROM resumable_uploads WHERE upload_id = ?", upload_id)
        return _row(rows[0]) if rows else None

    async def advance_offset(self, upload_id: str, old_offset: int, new_offset: int,
                             expires_ms: int) -> bool:
        """Move the offset from `old_offset`; False if it is no longer there (a racing
        request moved it first)."""

        def _txn(txn: Transaction) -> bool:
            txn.execute(
                "UPDATE resumable_uploads SET upload_offset = ?, expires_ms = ?"
                " WHERE upload_id = ? AND upload_offset = ?",
                (new_offset, expires_ms, upload_id, old_offset))
            return txn.rowcount == 1

        return await self.db.run_interaction("advance_resumable_upload", _txn)

    async def set_content_uri(self, upload_id: str, content_uri: str) -> None:
        await self.db.execute(
            "complete_resumable_upload",
            "UPDATE resumable_uploads SET content_uri = ? WHERE upload_id = ?",
            content_uri, upload_id)

    async def delete_upload(self, upload_id: str) -> None:
        await self.db.execute("delete_resumable_upload",
                              "DELETE FROM resumable_uploads WHERE upload_id = ?", upload_id)

    async def delete_expired(self, now_ms: int) -> list[str]:
        """Drop the uploads past their expiry; returns their IDs (to remove the files)."""

        def _txn(txn: Transaction) -> list[str]:
            ids = [str(r[0]) for r in txn.select_all(
                "SELECT upload_id FROM resumable_uploads WHERE expires_ms <= ?", (now_ms,))]
            txn.execute("DELETE FROM resumable_uploads WHERE expires_ms <= ?", (now_ms,))
            return ids

        return await self.db.run_interaction("delete_expired_resumable_uploads", _txn)
