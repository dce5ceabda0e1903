"""Azure routes the emulator does not emulate: each answers what Azure answers when the feature is
off (data partitions), or 501 naming what is missing (bulk update, export). Listed in the README."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from dicom_emulator.api.deps import ApiContext, ApiDep
from dicom_emulator.errors import BadRequestError, NotEmulatedError

router = APIRouter(tags=["Not emulated"])

# Azure's answer to a partition route while the data partitions feature is off (azure-behaviour §10.3).
PARTITIONS_DISABLED = "Data partitions feature is disabled."


BULK_UPDATE = "$bulkupdate"


def bulk_update(api: ApiContext) -> Response:
    """``POST /studies/$bulkUpdate``, matched case-insensitively by the STOW route (the C# client posts
    ``$bulkupdate``; Starlette paths are case-sensitive)."""
    if api.major == 1:
        return Response(status_code=404)  # v1 has no bulk update (azure-behaviour §1.3)
    raise NotEmulatedError("Bulk update ($bulkUpdate) is not emulated by dicom-emulator.")


@router.post("/{version}/export", include_in_schema=False)
async def export(api: ApiDep) -> Response:
    """Export to Azure Blob Storage."""
    raise NotEmulatedError("Export is not emulated by dicom-emulator.")


@router.get("/{version}/partitions", include_in_schema=False)
async def partitions(api: ApiDep) -> Response:
    """Partition list: the emulator runs with data partitions disabled."""
    raise BadRequestError(PARTITIONS_DISABLED)


@router.api_route(
    "/{version}/partitions/{partition}/{rest:path}",
    methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
    include_in_schema=False,
)
async def partition_routes(api: ApiDep, partition: str, rest: str) -> Response:
    """Partition-aware routes answer as Azure does with the feature off."""
    raise BadRequestError(PARTITIONS_DISABLED)
