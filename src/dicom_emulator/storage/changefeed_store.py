"""Change-feed reads in SQL (azure-behaviour §6): sequence and time windows, states computed on read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import as_utc
from dicom_emulator.storage.models import DEFAULT_PARTITION_NAME, ChangeFeedEntry, Instance, Partition

_LONG_MAX = 2**63 - 1
STATE_CURRENT = "Current"
STATE_REPLACED = "Replaced"
STATE_DELETED = "Deleted"


@dataclass(frozen=True, slots=True)
class FeedEntry:
    sequence: int
    partition_name: str
    study_uid: str
    series_uid: str
    sop_uid: str
    action: str
    timestamp: datetime
    state: str
    metadata_json: str | None


class SqlChangeFeedStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    def _select(self) -> Any:
        # The instance row with the same identity tells the state: none → Deleted; another version →
        # Replaced; this version → Current (azure-behaviour §6.4). Its metadata is the current version's.
        joined = and_(
            Instance.partition_key == ChangeFeedEntry.partition_key,
            Instance.study_uid == ChangeFeedEntry.study_uid,
            Instance.series_uid == ChangeFeedEntry.series_uid,
            Instance.sop_uid == ChangeFeedEntry.sop_uid,
        )
        return (
            select(ChangeFeedEntry, Instance.watermark, Instance.metadata_json, Partition.partition_name)
            .outerjoin(Instance, joined)
            .outerjoin(Partition, Partition.partition_key == ChangeFeedEntry.partition_key)
        )

    async def _run(self, stmt: Any) -> list[FeedEntry]:
        async with self.sessions() as session:
            rows = (await session.execute(stmt)).all()
        entries = []
        for entry, watermark, metadata, partition in rows:
            if watermark is None:
                state = STATE_DELETED
            elif watermark != entry.watermark:
                state = STATE_REPLACED
            else:
                state = STATE_CURRENT
            entries.append(
                FeedEntry(
                    sequence=entry.sequence,
                    partition_name=partition or DEFAULT_PARTITION_NAME,
                    study_uid=entry.study_uid,
                    series_uid=entry.series_uid,
                    sop_uid=entry.sop_uid,
                    action=entry.action,
                    timestamp=as_utc(entry.timestamp),
                    state=state,
                    metadata_json=metadata if state != STATE_DELETED else None,
                )
            )
        return entries

    async def by_sequence(self, offset: int, limit: int) -> list[FeedEntry]:
        """v1: entries with ``offset < sequence <= offset + limit`` (a window; gaps allowed)."""
        # offset is any long (up to 2^63-1): offset + limit must not overflow the database's BIGINT.
        upper = min(offset + limit, _LONG_MAX)
        stmt = (
            self._select()
            .where(ChangeFeedEntry.sequence > offset, ChangeFeedEntry.sequence <= upper)
            .order_by(ChangeFeedEntry.sequence)
        )
        return await self._run(stmt)

    async def by_time(self, start: datetime | None, end: datetime | None, offset: int, limit: int) -> list[FeedEntry]:
        """v2: ``start <= timestamp < end`` ordered by (timestamp, sequence), skip ``offset``, take ``limit``."""
        stmt = self._select()
        if start is not None:
            stmt = stmt.where(ChangeFeedEntry.timestamp >= start)
        if end is not None:
            stmt = stmt.where(ChangeFeedEntry.timestamp < end)
        stmt = stmt.order_by(ChangeFeedEntry.timestamp, ChangeFeedEntry.sequence).offset(offset).limit(limit)
        return await self._run(stmt)

    async def latest(self, *, by_time: bool) -> FeedEntry | None:
        """v1: highest sequence; v2: latest timestamp, ties broken by sequence."""
        order = (
            (ChangeFeedEntry.timestamp.desc(), ChangeFeedEntry.sequence.desc())
            if by_time
            else (ChangeFeedEntry.sequence.desc(),)
        )
        entries = await self._run(self._select().order_by(*order).limit(1))
        return entries[0] if entries else None
