"""DELETE at study, series and instance level (azure-behaviour §5)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from dicom_emulator.api.deps import ApiDep, PartitionDep, RuntimeDep
from dicom_emulator.dicom.identifiers import validate_uid

router = APIRouter(tags=["DELETE"])


@router.delete("/studies/{study}")
async def delete_study(api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str) -> Response:
    """Delete a study."""
    await runtime.delete.delete(partition.key, validate_uid(study, "StudyInstanceUid"))
    return Response(status_code=204)


@router.delete("/studies/{study}/series/{series}")
async def delete_series(api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str, series: str) -> Response:
    """Delete a series."""
    await runtime.delete.delete(
        partition.key, validate_uid(study, "StudyInstanceUid"), validate_uid(series, "SeriesInstanceUid")
    )
    return Response(status_code=204)


@router.delete("/studies/{study}/series/{series}/instances/{instance}")
async def delete_instance(
    api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str, series: str, instance: str
) -> Response:
    """Delete an instance."""
    await runtime.delete.delete(
        partition.key,
        validate_uid(study, "StudyInstanceUid"),
        validate_uid(series, "SeriesInstanceUid"),
        validate_uid(instance, "SopInstanceUid"),
    )
    return Response(status_code=204)
