"""Thumbnails of media items: size, method, type and the content hash of each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from storage.database import DatabasePool, Transaction


@attrs.frozen(slots=True)
class ThumbnailRow:
    width: int
    height: int
    method: str
    content_type: str
    animated: bool
    length: int
    sha256: str


class MediaThumbnailStore:
    def __init__(self, db: DatabasePool) -> None:
        self.db = db

    async def get_thumbnails(self, server_name: str, media_id: str) -> list[ThumbnailRow]:
        rows = await self.db.execute(
            "get_media_thumbnails",
            "SELECT width, height, method, content_type, animated, length, sha256"
            " FROM media_thumbnails WHERE server_name = ? AND media_id = ?",
            server_name, media_id)
        return [_row(r) for r in rows]

    async def store_thumbnails(self, server_name: str, media_id: str,
                               thumbnails: Iterable[ThumbnailRow]) -> None:
        """Keep the thumbnails; a size generated twice (two racing requests) keeps one."""

        def _txn(txn: Transaction) -> None:
            for t in thumbnails:
                txn.upsert(
                    "media_thumbnails",
                    {"server_name": server_name, "media_id": media_id, "width": t.width,
                     "height": t.height, "method": t.method, "content_type": t.content_type,
                     "animated": int(t.animated)},
                    {"length": t.length, "sha256": t.sha256})

        await self.db.run_interaction("store_media_thumbnails", _txn)


def _row(r: tuple[Any, ...]) -> ThumbnailRow:
    return ThumbnailRow(width=int(r[0]), height=int(r[1]), method=str(r[2]),
                        content_type=str(r[3]), animated=bool(r[4]), length=int(r[5]),
                        sha256=str(r[6]))
