"""Extended query tag routes (azure-behaviour §7); not partition-aware."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from dicom_emulator.api.deps import ApiContext, ApiDep, RuntimeDep
from dicom_emulator.api.json_body import parse_json, read_capped
from dicom_emulator.api.openapi import EXTENDED_QUERY_TAG_UPDATE_BODY, EXTENDED_QUERY_TAGS_BODY, extra, paging
from dicom_emulator.errors import BadRequestError
from dicom_emulator.paging import bind_int, dotnet_round_trip
from dicom_emulator.services.extended_query_tags import ExistingReindexError
from dicom_emulator.services.records import TagRecord

router = APIRouter(tags=["Extended query tags"])

JSON = "application/json; charset=utf-8"


async def _json_body(request: Request) -> Any:
    try:
        return parse_json(await read_capped(request))
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("The syntax of the request body is invalid.") from None


def _tag_json(tag: TagRecord, api: ApiContext) -> dict[str, Any]:
    body: dict[str, Any] = {"path": tag.path, "vr": tag.vr}
    if tag.private_creator is not None:
        body["privateCreator"] = tag.private_creator
    body.update({"level": tag.level, "status": tag.status, "queryStatus": tag.query_status})
    if tag.error_count > 0:
        body["errors"] = {"count": tag.error_count, "href": f"{api.base_url}/extendedquerytags/{tag.path}/errors"}
    if tag.operation_id is not None:
        body["operation"] = {"id": tag.operation_id, "href": f"{api.base_url}/operations/{tag.operation_id}"}
    return body


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=json.dumps(body).encode(), status_code=status, media_type=JSON, headers=headers)


@router.post("/{version}/extendedquerytags", openapi_extra=extra(body=EXTENDED_QUERY_TAGS_BODY))
async def add_tags(request: Request, api: ApiDep, runtime: RuntimeDep) -> Response:
    """Add extended query tags; answers 202 with the reindex operation reference."""
    body = await _json_body(request)
    try:
        job_id = await runtime.extended_query_tags.add(body, base_url=api.base_url)
    except ExistingReindexError as exc:
        href = f"{api.base_url}/operations/{exc.operation_id}"
        return Response(exc.message, status_code=409, media_type="text/plain", headers={"Location": href})
    href = f"{api.base_url}/operations/{job_id}"
    return _json({"id": job_id, "href": href}, status=202, headers={"Location": href})


@router.get("/{version}/extendedquerytags", openapi_extra=extra(*paging(200)))
async def list_tags(request: Request, api: ApiDep, runtime: RuntimeDep) -> Response:
    """List extended query tags (limit 1..200, offset)."""
    params = request.query_params.multi_items()
    limit = bind_int(params, "limit", default=100, low=1, high=200)
    offset = bind_int(params, "offset", default=0, low=0)
    tags = await runtime.extended_query_tags.list_tags(limit, offset)
    return _json([_tag_json(t, api) for t in tags])


@router.get("/{version}/extendedquerytags/{path}")
async def get_tag(api: ApiDep, runtime: RuntimeDep, path: str) -> Response:
    """One extended query tag."""
    return _json(_tag_json(await runtime.extended_query_tags.get(path), api))


@router.patch("/{version}/extendedquerytags/{path}", openapi_extra=extra(body=EXTENDED_QUERY_TAG_UPDATE_BODY))
async def update_tag(request: Request, api: ApiDep, runtime: RuntimeDep, path: str) -> Response:
    """Enable or disable querying on a tag."""
    body = await _json_body(request)
    return _json(_tag_json(await runtime.extended_query_tags.update(path, body), api))


@router.delete("/{version}/extendedquerytags/{path}")
async def delete_tag(api: ApiDep, runtime: RuntimeDep, path: str) -> Response:
    """Remove a tag with its index values and errors."""
    await runtime.extended_query_tags.delete(path)
    return Response(status_code=204)


@router.get("/{version}/extendedquerytags/{path}/errors", openapi_extra=extra(*paging(200)))
async def tag_errors(request: Request, api: ApiDep, runtime: RuntimeDep, path: str) -> Response:
    """Instances whose value failed to index for the tag."""
    params = request.query_params.multi_items()
    limit = bind_int(params, "limit", default=100, low=1, high=200)
    offset = bind_int(params, "offset", default=0, low=0)
    errors = await runtime.extended_query_tags.errors(path, limit, offset)
    # createdTime carries no zone suffix in Azure's output (azure-behaviour §7.4).
    return _json(
        [
            {
                "studyInstanceUid": e.study_uid,
                "seriesInstanceUid": e.series_uid,
                "sopInstanceUid": e.sop_uid,
                "createdTime": dotnet_round_trip(e.created_at).removesuffix("+00:00"),
                "errorMessage": e.error_message,
            }
            for e in errors
        ]
    )
