"""``POST /{v}/[partitions/{p}/]export`` (azure-behaviour §10.2, §15.5): 202 with the operation reference."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from dicom_emulator.api.deps import ApiDep, PartitionDep, RuntimeDep
from dicom_emulator.api.json_body import parse_json
from dicom_emulator.api.openapi import EXPORT_BODY, extra
from dicom_emulator.errors import BadRequestError

router = APIRouter(tags=["Export"])

JSON = "application/json; charset=utf-8"


@router.post("/export", openapi_extra=extra(body=EXPORT_BODY))
async def export(request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep) -> Response:
    """Export instances of this partition to an Azure Blob Storage container."""
    try:
        body = parse_json(await request.body())  # JSON nested too deep is a syntax error, not a 500
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("The syntax of the request body is invalid.") from None
    job_id = await runtime.export.start(partition.key, body)
    # Operation URLs are never partitioned (azure-behaviour §14.4).
    href = f"{api.base_url}/operations/{job_id}"
    return Response(
        content=json.dumps({"id": job_id, "href": href}).encode(),
        status_code=202,
        media_type=JSON,
        headers={"Location": href},
    )
