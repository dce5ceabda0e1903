"""Operations (azure-behaviour §8): the status JSON of a job row."""

from __future__ import annotations

import re
from typing import Any

from dicom_emulator.errors import NotFoundError
from dicom_emulator.paging import dotnet_round_trip
from dicom_emulator.storage.jobs import EXPORT, FINISHED, SUCCEEDED, JobRecord, SqlJobStore

_GUID = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")


def operation_json(job: JobRecord, *, api_major: int) -> dict[str, Any]:
    status = job.status
    if status == SUCCEEDED and api_major == 1:
        status = "completed"  # v1 rewrites succeeded (azure-behaviour §1.3)
    body: dict[str, Any] = {
        "operationId": job.job_id,
        "type": job.type,
        "createdTime": dotnet_round_trip(job.created_at).replace("+00:00", "Z"),
        "lastUpdatedTime": dotnet_round_trip(job.updated_at).replace("+00:00", "Z"),
        "status": status,
    }
    # Export reports no progress percentage (azure-behaviour §15.2: null, omitted).
    if job.type != EXPORT:
        body["percentComplete"] = 100 if job.status == SUCCEEDED else job.percent_complete
    if job.resources:
        body["resources"] = job.resources
    if job.results is not None:
        body["results"] = job.results
    if job.error:
        # Not in Azure's documented shape; emulator-only detail for failed jobs.
        body["errors"] = [job.error]
    return body


class OperationService:
    def __init__(self, jobs: SqlJobStore) -> None:
        self.jobs = jobs

    async def get(self, operation_id: str) -> JobRecord:
        if not _GUID.match(operation_id):
            raise NotFoundError("")
        job = await self.jobs.get(operation_id.replace("-", "").lower())
        if job is None:
            raise NotFoundError("")
        return job

    async def recent(self, limit: int = 20) -> list[JobRecord]:
        """Emulator-only: the newest operations (Azure has no operation list)."""
        return await self.jobs.recent(limit)

    @staticmethod
    def is_finished(job: JobRecord) -> bool:
        return job.status in FINISHED
