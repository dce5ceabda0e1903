"""In-process job runner: claims job rows, runs their handler, survives restarts and peers.

Several emulator processes may run one each against one PostgreSQL: claims are exclusive, progress
is written with a heartbeat, and a job whose runner died is reclaimed after the lease and resumes
from its cursor. A job that keeps failing that way is marked failed after ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol

from dicom_emulator.storage.jobs import FAILED, SUCCEEDED, JobFailedError, JobRecord, LostLeaseError, SqlJobStore

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # claims of one job (first run + resumes) before it is failed visibly


class JobHandler(Protocol):
    async def run(self, job: JobRecord, owner: str) -> dict[str, Any] | None:
        """Do the job's work, heartbeating through the job store; return results (or None)."""


class JobRunner:
    def __init__(
        self,
        jobs: SqlJobStore,
        handlers: dict[str, JobHandler],
        *,
        poll_interval: float,
        lease: timedelta,
        periodic: list[tuple[float, Callable[[], Awaitable[None]]]] | None = None,
        services: list[Callable[[], Coroutine[Any, Any, None]]] | None = None,
    ) -> None:
        self.jobs = jobs
        self.handlers = handlers
        self.poll_interval = poll_interval
        self.lease = lease
        self.periodic = periodic or []
        # Long-running loops started and stopped with the runner (the event dispatcher).
        self.services = services or []
        # Unique per process start, so a restarted process does not mistake its old claims for its own.
        self.owner = uuid.uuid4().hex
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._loop(), name="job-runner"))
        for interval, work in self.periodic:
            self._tasks.append(asyncio.create_task(self._every(interval, work), name=f"periodic-{work}"))
        for service in self.services:
            self._tasks.append(asyncio.create_task(service(), name=f"service-{service}"))

    def wake(self) -> None:
        """Poll now (a job was just queued by this process)."""
        self._wake.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _loop(self) -> None:
        while True:
            try:
                job = await self.jobs.claim(self.owner, self.lease)
            except Exception:
                logger.exception("claiming a job failed")
                job = None
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                continue
            await self._run(job)

    async def _run(self, job: JobRecord) -> None:
        handler = self.handlers.get(job.type)
        if handler is None:
            await self.jobs.finish(job.job_id, self.owner, FAILED, error=f"No handler for job type '{job.type}'.")
            return
        if job.attempts > MAX_ATTEMPTS:
            await self.jobs.finish(
                job.job_id, self.owner, FAILED, error=f"The job was interrupted {MAX_ATTEMPTS} times; giving up."
            )
            return
        logger.info("running %s job %s (attempt %d, cursor %s)", job.type, job.job_id, job.attempts, job.cursor)
        try:
            results = await handler.run(job, self.owner)
        except LostLeaseError:
            logger.warning("job %s was taken over by another runner", job.job_id)
            return
        except asyncio.CancelledError:
            # Shutdown: leave the row running; its lease expires and a runner resumes it.
            raise
        except JobFailedError as exc:
            await self.jobs.finish(job.job_id, self.owner, FAILED, results=exc.results)
            return
        except Exception as exc:
            logger.exception("job %s failed", job.job_id)
            await self.jobs.finish(job.job_id, self.owner, FAILED, error=str(exc))
            return
        await self.jobs.finish(job.job_id, self.owner, SUCCEEDED, results=results)
        logger.info("job %s succeeded", job.job_id)

    async def _every(self, interval: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await work()
            except Exception:
                logger.exception("periodic task failed")
