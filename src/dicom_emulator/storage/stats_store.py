"""Row counts of a store, for ``dicom-emulator stats`` (read-only)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.storage.models import (
    ChangeFeedEntry,
    ExtendedQueryTag,
    Instance,
    Job,
    Partition,
    PerformedProcedureStep,
    Series,
    Study,
    Workitem,
)

# Label -> table, in the order the command prints them.
COUNTED = {
    "partitions": Partition,
    "studies": Study,
    "series": Series,
    "instances": Instance,
    "change feed entries": ChangeFeedEntry,
    "extended query tags": ExtendedQueryTag,
    "operations": Job,
    "workitems": Workitem,
    "performed procedure steps": PerformedProcedureStep,
}


async def store_counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """How many rows each kind of record has, in one read transaction."""
    counts: dict[str, int] = {}
    async with sessions() as session:
        for label, model in COUNTED.items():
            counts[label] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
    return counts
