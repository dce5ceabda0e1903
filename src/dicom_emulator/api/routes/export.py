"""``POST /{v}/[partitions/{p}/]export`` (azure-behaviour §10.2, §15.5)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from dicom_emulator.api.deps import ApiDep, PartitionDep
from dicom_emulator.errors import NotEmulatedError

router = APIRouter(tags=["Export"])


@router.post("/export")
async def export(api: ApiDep, partition: PartitionDep) -> Response:
    """Export instances to Azure Blob Storage."""
    raise NotEmulatedError("Export is not emulated by dicom-emulator.")
