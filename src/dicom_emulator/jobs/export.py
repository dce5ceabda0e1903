"""The ``export`` job: runs an export operation queued by ``POST /export`` (services/export.py)."""

from __future__ import annotations

from typing import Any

from dicom_emulator.services.export import ExportService
from dicom_emulator.storage.jobs import JobRecord


class ExportHandler:
    def __init__(self, service: ExportService) -> None:
        self.service = service

    async def run(self, job: JobRecord, owner: str) -> dict[str, Any] | None:
        return await self.service.run(job, owner)
