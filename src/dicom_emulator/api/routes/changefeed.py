"""Change feed routes (azure-behaviour §6); not partition-aware."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from dicom_emulator.api.deps import ApiDep, RuntimeDep
from dicom_emulator.api.openapi import INCLUDE_METADATA, changefeed_parameters, extra
from dicom_emulator.errors import BadRequestError
from dicom_emulator.paging import bind_bool, bind_datetime, bind_int, dotnet_round_trip
from dicom_emulator.services.changefeed import FeedEntry

router = APIRouter(tags=["Change feed"])

JSON = "application/json; charset=utf-8"


def _entry_json(entry: FeedEntry, include_metadata: bool) -> str:
    # camelCase like Azure's serializer; action/state keep their enum names (azure-behaviour §6.3).
    body = {
        "sequence": entry.sequence,
        "partitionName": entry.partition_name,
        "studyInstanceUid": entry.study_uid,
        "seriesInstanceUid": entry.series_uid,
        "sopInstanceUid": entry.sop_uid,
        "action": entry.action,
        "timestamp": dotnet_round_trip(entry.timestamp),
        "state": entry.state,
    }
    text = json.dumps(body)
    if include_metadata and entry.metadata_json is not None:
        # Splice the stored JSON text in without re-parsing it.
        text = text[:-1] + ', "metadata": ' + entry.metadata_json + "}"
    return text


@router.get("/{version}/changefeed", openapi_extra=extra(*changefeed_parameters()))
async def get_change_feed(request: Request, api: ApiDep, runtime: RuntimeDep) -> Response:
    """Read the change feed (v1: sequence window; v2: time window)."""
    params = request.query_params.multi_items()
    include_metadata = bind_bool(params, "includeMetadata", default=True)
    if api.major == 1:
        offset = bind_int(params, "offset", default=0, low=0)
        limit = bind_int(params, "limit", default=10, low=1, high=100)
        entries = await runtime.changefeed.by_sequence(offset, limit)
    else:
        start = bind_datetime(params, "startTime")
        end = bind_datetime(params, "endTime")
        offset = bind_int(params, "offset", default=0, low=0)
        limit = bind_int(params, "limit", default=100, low=1, high=200)
        if start is not None and end is not None and end <= start:
            raise BadRequestError(
                f"The start time '{dotnet_round_trip(start)}' must occur strictly before the end time "
                f"'{dotnet_round_trip(end)}'."
            )
        entries = await runtime.changefeed.by_time(start, end, offset, limit)
    body = "[" + ",".join(_entry_json(e, include_metadata) for e in entries) + "]"
    return Response(content=body.encode(), media_type=JSON)


@router.get("/{version}/changefeed/latest", openapi_extra=extra(INCLUDE_METADATA))
async def get_change_feed_latest(request: Request, api: ApiDep, runtime: RuntimeDep) -> Response:
    """The latest change-feed entry; 204 when the feed is empty."""
    include_metadata = bind_bool(request.query_params.multi_items(), "includeMetadata", default=True)
    entry = await runtime.changefeed.latest(by_time=api.major >= 2)
    if entry is None:
        return Response(status_code=204)
    return Response(content=_entry_json(entry, include_metadata).encode(), media_type=JSON)
