"""Reindex: index existing instances on newly added extended query tags, in batches (reference §7.5).

Values come from the metadata JSON stored with each instance, in watermark order, so study and
series values end as the latest instance's ("latest wins"). Each batch commits its values, errors and
the job's cursor together; an interrupted job resumes after the last committed batch.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import utcnow
from dicom_emulator.dicom.extended_tags import IndexedValue, extract_value
from dicom_emulator.storage.jobs import JobRecord, SqlJobStore
from dicom_emulator.storage.models import ExtendedQueryTag, ExtendedQueryTagError, Instance, Job
from dicom_emulator.storage.tags_store import (
    QUERY_DISABLED,
    STATUS_ADDING,
    STATUS_READY,
    TagRecord,
    _record,
    write_value,
)

BATCH_SIZE = 100  # instances per transaction


class ReindexHandler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jobs: SqlJobStore,
        *,
        batch_size: int = BATCH_SIZE,
        pause: float = 0.0,
    ) -> None:
        self.sessions = sessions
        self.jobs = jobs
        self.batch_size = batch_size
        self.pause = pause

    async def _tags(self, keys: list[int]) -> list[TagRecord]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(ExtendedQueryTag).where(
                    ExtendedQueryTag.tag_key.in_(keys), ExtendedQueryTag.status == STATUS_ADDING
                )
            )
            return [_record(r) for r in rows.scalars().all()]

    async def _upper_bound(self, job: JobRecord) -> int:
        """The highest watermark when the job first ran; later stores index themselves at store time."""
        if "max_watermark" in job.payload:
            return int(job.payload["max_watermark"])
        async with self.sessions.begin() as session:
            upper = await session.scalar(select(func.coalesce(func.max(Instance.watermark), 0))) or 0
            payload = {**job.payload, "max_watermark": upper}
            await session.execute(update(Job).where(Job.job_id == job.job_id).values(payload=json.dumps(payload)))
        return int(upper)

    async def run(self, job: JobRecord, owner: str) -> dict[str, Any] | None:
        tags = await self._tags(list(job.payload.get("tag_keys", [])))
        upper = await self._upper_bound(job)
        cursor = job.cursor or 0
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).where(Instance.watermark <= upper)) or 0
            done = await session.scalar(select(func.count()).where(Instance.watermark <= cursor)) or 0
        while tags:
            async with self.sessions.begin() as session:
                rows = (
                    (
                        await session.execute(
                            select(Instance)
                            .where(Instance.watermark > cursor)
                            .order_by(Instance.watermark)
                            .limit(self.batch_size)
                        )
                    )
                    .scalars()
                    .all()
                )
                for instance in rows:
                    await self._index(session, tags, instance)
                if rows:
                    cursor = rows[-1].watermark
                    done += sum(1 for r in rows if r.watermark <= upper)
                percent = min(99, int(done * 100 / total)) if total else 99
                await self.jobs.heartbeat(session, job.job_id, owner, cursor=cursor, percent=percent)
            # Past the upper bound we keep going until no rows are left: instances committed while
            # the tag was being added may have missed it at store time (idempotent either way).
            if len(rows) < self.batch_size:
                break
            if self.pause:
                await asyncio.sleep(self.pause)
        await self._complete(tags)
        return None

    @staticmethod
    async def _index(session: AsyncSession, tags: list[TagRecord], instance: Instance) -> None:
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

    async def _complete(self, tags: list[TagRecord]) -> None:
        """Tags become ready; one that failed to index anything becomes query-disabled (§7.5)."""
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
