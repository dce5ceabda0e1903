"""``POST /v2/[partitions/{p}/]studies/$bulkUpdate`` (azure-behaviour §10.1, §15.1).

Reached through the STOW route ``POST /studies/{study}`` (the study segment matched case-insensitively: the C#
client posts ``$bulkupdate`` and Starlette paths are case-sensitive).
"""

from __future__ import annotations

import json

from fastapi import Request
from starlette.responses import Response

from dicom_emulator.api.deps import ApiContext, PartitionContext
from dicom_emulator.api.json_body import parse_json
from dicom_emulator.errors import BadRequestError
from dicom_emulator.runtime import Runtime
from dicom_emulator.services.bulk_update import ChangeDatasetError

BULK_UPDATE = "$bulkupdate"
JSON = "application/json; charset=utf-8"


async def bulk_update(request: Request, api: ApiContext, runtime: Runtime, partition: PartitionContext) -> Response:
    if api.major == 1:
        return Response(status_code=404)  # v1 has no bulk update (azure-behaviour §1.3)
    try:
        body = parse_json(await request.body())  # JSON nested too deep is a syntax error, not a 500
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("The syntax of the request body is invalid.") from None
    try:
        job_id = await runtime.bulk_update.start(partition.key, partition.name, body)
    except ChangeDatasetError as exc:
        # Disallowed or invalid tags: a DICOM JSON dataset of ErrorComments, not plain text (azure-behaviour §10.1).
        return Response(
            content=json.dumps(exc.dataset_json()).encode(), status_code=400, media_type="application/dicom+json"
        )
    href = f"{api.base_url}/operations/{job_id}"
    # No Location header on this one (azure-behaviour §8, §15.1).
    return Response(content=json.dumps({"id": job_id, "href": href}).encode(), status_code=202, media_type=JSON)
