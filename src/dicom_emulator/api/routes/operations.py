"""GET /{v}/operations/{id} (azure-behaviour §8); not partition-aware."""

from __future__ import annotations

import json

from fastapi import APIRouter
from starlette.responses import Response

from dicom_emulator.api.deps import ApiDep, RuntimeDep
from dicom_emulator.services.operations import operation_json

router = APIRouter(tags=["Operations"])

JSON = "application/json; charset=utf-8"


@router.get("/{version}/operations/{operation_id}")
async def get_operation(api: ApiDep, runtime: RuntimeDep, operation_id: str) -> Response:
    """Operation status: 202 + Location while running, 200 once finished; 404 when unknown."""
    job = await runtime.operations.get(operation_id)
    body = json.dumps(operation_json(job, api_major=api.major)).encode()
    if runtime.operations.is_finished(job):
        return Response(content=body, media_type=JSON)
    return Response(
        content=body,
        status_code=202,
        media_type=JSON,
        headers={"Location": f"{api.base_url}/operations/{job.job_id}"},
    )
