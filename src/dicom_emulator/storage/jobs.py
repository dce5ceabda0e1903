"""Jobs as rows: create, claim with a lease, heartbeat/progress, finish (architecture invariant 6).

Claiming is a conditional UPDATE on the row the runner selected (FOR UPDATE SKIP LOCKED on
PostgreSQL), so several processes can poll one database and each job runs in one place at a time.
A job whose heartbeat is older than the lease belongs to a dead runner and is claimed again.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import as_utc, utcnow
from dicom_emulator.storage.models import Job

NOT_STARTED = "notStarted"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELED})

# Job types (the ``type`` column): services queue them, the composition root registers a handler (jobs/) for each.
REINDEX = "reindex"  # index existing instances on newly added extended query tags (jobs/reindex.py)
EXPORT = "export"  # copy instances to Azure Blob Storage (services/export.py)
UPDATE = "update"  # bulk update of studies (services/bulk_update.py)


@dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    type: str
    status: str
    percent_complete: int
    payload: dict[str, Any]
    cursor: int | None
    resources: list[str]
    results: dict[str, Any] | None
    error: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime


def _record(row: Job) -> JobRecord:
    return JobRecord(
        job_id=row.job_id,
        type=row.type,
        status=row.status,
        percent_complete=row.percent_complete,
        payload=json.loads(row.payload or "{}"),
        cursor=row.cursor,
        resources=json.loads(row.resources or "[]"),
        results=json.loads(row.results) if row.results else None,
        error=row.error,
        attempts=row.attempts,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def new_job_id() -> str:
    """Operation ids are GUIDs written as 32 hex digits (azure-behaviour §8)."""
    return uuid.uuid4().hex


class JobFailedError(Exception):
    """A handler's job ended as ``failed`` with results to report (a bulk update with failed studies)."""

    def __init__(self, results: dict[str, Any]) -> None:
        super().__init__("the job completed with errors")
        self.results = results


class LostLeaseError(Exception):
    """Another runner took the job over (our heartbeat expired); stop working on it."""


class SqlJobStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @staticmethod
    def add(
        session: AsyncSession,
        job_type: str,
        payload: dict[str, Any],
        resources: list[str],
        *,
        job_id: str | None = None,
        results: dict[str, Any] | None = None,
    ) -> str:
        """Queue a job inside the caller's transaction; returns its id."""
        now = utcnow()
        job_id = job_id or new_job_id()
        session.add(
            Job(
                job_id=job_id,
                type=job_type,
                status=NOT_STARTED,
                percent_complete=0,
                payload=json.dumps(payload),
                resources=json.dumps(resources),
                results=json.dumps(results) if results is not None else None,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        return job_id

    async def get(self, job_id: str) -> JobRecord | None:
        async with self.sessions() as session:
            row = await session.get(Job, job_id)
            return _record(row) if row is not None else None

    async def recent(self, limit: int) -> list[JobRecord]:
        """The newest jobs first (the emulator's page lists them)."""
        async with self.sessions() as session:
            rows = await session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit))
            return [_record(row) for row in rows]

    async def active_of_type(self, job_type: str) -> JobRecord | None:
        async with self.sessions() as session:
            return await self.active_of_type_in(session, job_type)

    @staticmethod
    async def active_of_type_in(session: AsyncSession, job_type: str) -> JobRecord | None:
        """:meth:`active_of_type` inside the caller's transaction."""
        row = await session.scalar(
            select(Job).where(Job.type == job_type, Job.status.in_((NOT_STARTED, RUNNING))).limit(1)
        )
        return _record(row) if row is not None else None

    async def claim(self, owner: str, lease: timedelta) -> JobRecord | None:
        """Take the oldest runnable job: never started, or running with an expired heartbeat."""
        now = utcnow()
        stale = now - lease
        runnable = or_(Job.status == NOT_STARTED, (Job.status == RUNNING) & (Job.heartbeat < stale))
        async with self.sessions.begin() as session:
            stmt = select(Job.job_id).where(runnable).order_by(Job.created_at).limit(1)
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            job_id = await session.scalar(stmt)
            if job_id is None:
                return None
            result = await session.execute(
                update(Job)
                .where(Job.job_id == job_id, runnable)
                .values(status=RUNNING, owner=owner, heartbeat=now, updated_at=now, attempts=Job.attempts + 1)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = await session.get(Job, job_id, populate_existing=True)
            assert row is not None
            return _record(row)

    async def heartbeat(
        self,
        session: AsyncSession,
        job_id: str,
        owner: str,
        *,
        cursor: int | None = None,
        percent: int | None = None,
        results: dict[str, Any] | None = None,
    ) -> None:
        """Record progress (and the results so far) in the caller's transaction; raises LostLeaseError if the job is
        not ours."""
        now = utcnow()
        values: dict[str, Any] = {"heartbeat": now, "updated_at": now}
        if results is not None:
            values["results"] = json.dumps(results)
        if cursor is not None:
            values["cursor"] = cursor
        if percent is not None:
            values["percent_complete"] = percent
        result = await session.execute(
            update(Job).where(Job.job_id == job_id, Job.owner == owner, Job.status == RUNNING).values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LostLeaseError(job_id)

    async def finish(
        self,
        job_id: str,
        owner: str,
        status: str,
        *,
        error: str | None = None,
        results: dict[str, Any] | None = None,
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {"status": status, "updated_at": now, "heartbeat": now, "error": error}
        if status == SUCCEEDED:
            values["percent_complete"] = 100
        if results is not None:
            values["results"] = json.dumps(results)
        async with self.sessions.begin() as session:
            await session.execute(update(Job).where(Job.job_id == job_id, Job.owner == owner).values(**values))
