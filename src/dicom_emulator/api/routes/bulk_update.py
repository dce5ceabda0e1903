"""``POST /v2/[partitions/{p}/]studies/$bulkUpdate`` (azure-behaviour §10.1, §15.1)."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from dicom_emulator.api.deps import ApiContext, PartitionContext
from dicom_emulator.errors import NotEmulatedError
from dicom_emulator.runtime import Runtime

# Matched case-insensitively by the STOW route (the C# client posts ``$bulkupdate``; Starlette paths are
# case-sensitive).
BULK_UPDATE = "$bulkupdate"


async def bulk_update(request: Request, api: ApiContext, runtime: Runtime, partition: PartitionContext) -> Response:
    if api.major == 1:
        return Response(status_code=404)  # v1 has no bulk update (azure-behaviour §1.3)
    raise NotEmulatedError("Bulk update ($bulkUpdate) is not emulated by dicom-emulator.")
