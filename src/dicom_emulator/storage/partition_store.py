"""Data partitions as rows (azure-behaviour §10.3, §14): list, look up, create on first use.

The default partition (``Microsoft.Default``, key 1) is inserted at start-up; every row of the index carries its
partition key. Partitions are never updated or deleted (azure-behaviour §14.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import as_utc, utcnow
from dicom_emulator.storage.models import DEFAULT_PARTITION_KEY, Partition


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    key: int
    name: str
    created_date: datetime


def _record(row: Partition) -> PartitionRecord:
    return PartitionRecord(key=row.partition_key, name=row.partition_name, created_date=as_utc(row.created_date))


class SqlPartitionStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def list(self) -> list[PartitionRecord]:
        async with self.sessions() as session:
            rows = (await session.execute(select(Partition).order_by(Partition.partition_key))).scalars().all()
        return [_record(r) for r in rows]

    async def get(self, name: str) -> PartitionRecord | None:
        async with self.sessions() as session:
            row = (await session.execute(select(Partition).where(Partition.partition_name == name))).scalar()
        return _record(row) if row is not None else None

    async def get_or_create(self, name: str) -> PartitionRecord:
        """The partition called ``name``, created if missing; safe against concurrent creators in other processes.

        The key is the next free one (the default partition was inserted with an explicit key 1, so a database
        sequence would hand out 1 again on PostgreSQL). ``ON CONFLICT DO NOTHING`` absorbs both races: another
        process created the same name (then it is read back) or took the same key (then try the next one).
        """
        for _ in range(20):
            existing = await self.get(name)
            if existing is not None:
                return existing
            async with self.sessions.begin() as session:
                next_key = (await session.scalar(select(func.max(Partition.partition_key))) or 0) + 1
                dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
                await session.execute(
                    dialect.insert(Partition)
                    .values(
                        partition_key=max(next_key, DEFAULT_PARTITION_KEY + 1),
                        partition_name=name,
                        created_date=utcnow(),
                    )
                    .on_conflict_do_nothing()
                )
        raise RuntimeError(f"could not create partition {name!r}")

    async def has_non_default(self) -> bool:
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(Partition).where(Partition.partition_key != DEFAULT_PARTITION_KEY)
            )
        return bool(count)
