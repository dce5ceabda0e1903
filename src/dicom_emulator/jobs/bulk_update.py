"""The ``update`` job: runs a bulk update queued by ``POST /v2/studies/$bulkUpdate`` (services/bulk_update.py)."""

from __future__ import annotations

from typing import Any

from dicom_emulator.services.bulk_update import BulkUpdateService
from dicom_emulator.storage.jobs import JobRecord


class BulkUpdateHandler:
    def __init__(self, service: BulkUpdateService) -> None:
        self.service = service

    async def run(self, job: JobRecord, owner: str) -> dict[str, Any] | None:
        return await self.service.run(job, owner)
