"""The SQL of the reindex job (azure-behaviour §7.5): existing instances indexed on newly added extended query tags.

Values come from the metadata JSON stored with each instance, written like the values of a new instance
(``tags_store.write_value``, "latest wins" at study and series level); a value that fails extraction becomes a
reindex error on its tag. :meth:`SqlReindexStore.index_batch` runs in the caller's transaction so the job can
commit a batch's values and errors together with its cursor (``jobs.reindex``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import utcnow
from dicom_emulator.dicom.extended_tags import IndexedValue, extract_value
from dicom_emulator.storage.models import ExtendedQueryTag, ExtendedQueryTagError, Instance, Job
from dicom_emulator.storage.tags_store import QUERY_DISABLED, STATUS_READY, TagRecord, write_value


class SqlReindexStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def record_upper_bound(self, job_id: str, payload: dict[str, Any]) -> int:
        """The highest watermark now, recorded in the job's payload as ``max_watermark`` in the same transaction."""
        async with self.sessions.begin() as session:
            upper = await session.scalar(select(func.coalesce(func.max(Instance.watermark), 0))) or 0
            payload = {**payload, "max_watermark": upper}
            await session.execute(update(Job).where(Job.job_id == job_id).values(payload=json.dumps(payload)))
        return int(upper)

    async def progress_counts(self, upper: int, cursor: int) -> tuple[int, int]:
        """(instances up to ``upper``, instances up to ``cursor``): the job's total and what it has done."""
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).where(Instance.watermark <= upper)) or 0
            done = await session.scalar(select(func.count()).where(Instance.watermark <= cursor)) or 0
        return total, done

    async def index_batch(
        self, session: AsyncSession, tags: Sequence[TagRecord], *, after: int, limit: int
    ) -> list[int]:
        """Index the next ``limit`` instances after watermark ``after`` on ``tags`` in the caller's transaction;
        returns their watermarks, in order."""
        rows = (
            (
                await session.execute(
                    select(Instance).where(Instance.watermark > after).order_by(Instance.watermark).limit(limit)
                )
            )
            .scalars()
            .all()
        )
        for instance in rows:
            await self._index(session, tags, instance)
        return [r.watermark for r in rows]

    @staticmethod
    async def _index(session: AsyncSession, tags: Sequence[TagRecord], instance: Instance) -> None:
        metadata = json.loads(instance.metadata_json)
        for tag in tags:
            value = extract_value(metadata, tag.definition)
            if isinstance(value, IndexedValue):
                await write_value(
                    session,
                    tag,
                    value,
                    study_key=instance.study_key,
                    series_key=instance.series_key,
                    watermark=instance.watermark,
                )
            elif isinstance(value, str):
                session.add(
                    ExtendedQueryTagError(
                        tag_key=tag.tag_key,
                        partition_key=instance.partition_key,
                        study_uid=instance.study_uid,
                        series_uid=instance.series_uid,
                        sop_uid=instance.sop_uid,
                        watermark=instance.watermark,
                        error_message=value,
                        created_at=utcnow(),
                    )
                )
                await session.execute(
                    update(ExtendedQueryTag)
                    .where(ExtendedQueryTag.tag_key == tag.tag_key)
                    .values(error_count=ExtendedQueryTag.error_count + 1)
                )

    async def complete(self, tags: Sequence[TagRecord]) -> None:
        """Tags become ready; one that failed to index anything becomes query-disabled (azure-behaviour §7.5)."""
        async with self.sessions.begin() as session:
            for tag in tags:
                errors = await session.scalar(
                    select(func.count())
                    .select_from(ExtendedQueryTagError)
                    .where(ExtendedQueryTagError.tag_key == tag.tag_key)
                )
                values: dict[str, Any] = {"status": STATUS_READY, "operation_id": None, "error_count": errors}
                if errors:
                    values["query_status"] = QUERY_DISABLED
                await session.execute(
                    update(ExtendedQueryTag).where(ExtendedQueryTag.tag_key == tag.tag_key).values(**values)
                )
