"""Reindex: index existing instances on newly added extended query tags, in batches (azure-behaviour §7.5).

Values come from the metadata JSON stored with each instance, in watermark order, so study and
series values end as the latest instance's ("latest wins"). Each batch commits its values, errors and
the job's cursor together; an interrupted job resumes after the last committed batch. The SQL is in
``storage.reindex_store``; this handler drives the batches, the progress and the job's lease.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dicom_emulator.storage.jobs import JobRecord, SqlJobStore
from dicom_emulator.storage.reindex_store import SqlReindexStore
from dicom_emulator.storage.tags_store import SqlTagStore

BATCH_SIZE = 100  # instances per transaction


class ReindexHandler:
    def __init__(
        self,
        tags: SqlTagStore,
        reindex: SqlReindexStore,
        jobs: SqlJobStore,
        *,
        batch_size: int = BATCH_SIZE,
        pause: float = 0.0,
    ) -> None:
        self.tags = tags
        self.reindex = reindex
        self.jobs = jobs
        self.batch_size = batch_size
        self.pause = pause

    async def _upper_bound(self, job: JobRecord) -> int:
        """The highest watermark when the job first ran; later stores index themselves at store time."""
        if "max_watermark" in job.payload:
            return int(job.payload["max_watermark"])
        return await self.reindex.record_upper_bound(job.job_id, job.payload)

    async def run(self, job: JobRecord, owner: str) -> dict[str, Any] | None:
        tags = await self.tags.adding(list(job.payload.get("tag_keys", [])))
        upper = await self._upper_bound(job)
        cursor = job.cursor or 0
        total, done = await self.reindex.progress_counts(upper, cursor)
        while tags:
            async with self.reindex.sessions.begin() as session:
                watermarks = await self.reindex.index_batch(session, tags, after=cursor, limit=self.batch_size)
                if watermarks:
                    cursor = watermarks[-1]
                    done += sum(1 for w in watermarks if w <= upper)
                percent = min(99, int(done * 100 / total)) if total else 99
                await self.jobs.heartbeat(session, job.job_id, owner, cursor=cursor, percent=percent)
            # Past the upper bound we keep going until no rows are left: instances committed while
            # the tag was being added may have missed it at store time (idempotent either way).
            if len(watermarks) < self.batch_size:
                break
            if self.pause:
                await asyncio.sleep(self.pause)
        await self.reindex.complete(tags)
        return None
