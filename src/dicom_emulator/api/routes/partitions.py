"""``GET /{v}/partitions`` (azure-behaviour §14.3); not partition-aware itself."""

from __future__ import annotations

import json

from fastapi import APIRouter
from starlette.responses import Response

from dicom_emulator.api.deps import ApiDep, RuntimeDep
from dicom_emulator.paging import dotnet_round_trip

router = APIRouter(tags=["Partitions"])

JSON = "application/json; charset=utf-8"


@router.get("/{version}/partitions")
async def list_partitions(api: ApiDep, runtime: RuntimeDep) -> Response:
    """Every data partition, ``Microsoft.Default`` first; 400 when the feature is off."""
    records = await runtime.partitions.list()
    body = [
        {"partitionKey": r.key, "partitionName": r.name, "createdDate": dotnet_round_trip(r.created_date)}
        for r in records
    ]
    return Response(content=json.dumps(body).encode(), media_type=JSON)
