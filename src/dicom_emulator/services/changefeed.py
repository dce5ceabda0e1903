"""Change feed (azure-behaviour §6): v1 reads a sequence window, v2 a time window; latest entry."""

from __future__ import annotations

from datetime import datetime

from dicom_emulator.storage.changefeed_store import FeedEntry, SqlChangeFeedStore

__all__ = ["ChangeFeedService", "FeedEntry"]


class ChangeFeedService:
    def __init__(self, store: SqlChangeFeedStore) -> None:
        self.store = store

    async def by_sequence(self, offset: int, limit: int) -> list[FeedEntry]:
        """v1: entries with ``offset < sequence <= offset + limit`` (a window; gaps allowed)."""
        return await self.store.by_sequence(offset, limit)

    async def by_time(self, start: datetime | None, end: datetime | None, offset: int, limit: int) -> list[FeedEntry]:
        """v2: ``start <= timestamp < end`` by (timestamp, sequence), skipping ``offset``, at most ``limit``."""
        return await self.store.by_time(start, end, offset, limit)

    async def latest(self, *, by_time: bool) -> FeedEntry | None:
        """v1: the highest sequence; v2: the latest timestamp (ties by sequence); None when empty."""
        return await self.store.latest(by_time=by_time)
