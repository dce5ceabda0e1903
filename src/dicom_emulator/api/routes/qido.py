"""QIDO-RS: the six search routes (azure-behaviour §4)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from dicom_emulator import json_text
from dicom_emulator.api.deps import RouteContext, RouteDep, accept_header
from dicom_emulator.api.negotiation import require_dicom_json
from dicom_emulator.api.openapi import extra, qido_parameters
from dicom_emulator.dicom.identifiers import validate_uid
from dicom_emulator.dicom.tags import QueryResource

router = APIRouter(tags=["QIDO-RS"])


async def _search(
    request: Request,
    context: RouteContext,
    resource: QueryResource,
    study: str | None = None,
    series: str | None = None,
) -> Response:
    require_dicom_json(accept_header(request))
    study = validate_uid(study, "StudyInstanceUid") if study is not None else None
    series = validate_uid(series, "SeriesInstanceUid") if series is not None else None
    params = request.query_params.multi_items()
    search, results = await context.runtime.search.run(
        params,
        resource,
        api_major=context.api.major,
        partition_key=context.partition.key,
        study_uid=study,
        series_uid=series,
    )
    # Filters on extended query tags that have indexing errors are named in this header (azure-behaviour §4.7).
    headers = {"erroneous-dicom-attributes": ",".join(search.erroneous_keys)} if search.erroneous_keys else None
    if not results:
        return Response(status_code=204, headers=headers)
    return Response(content=json_text.dump_bytes(results), media_type="application/dicom+json", headers=headers)


@router.get("/studies", openapi_extra=extra(*qido_parameters(QueryResource.ALL_STUDIES)))
async def search_studies(request: Request, context: RouteDep) -> Response:
    """Search all studies."""
    return await _search(request, context, QueryResource.ALL_STUDIES)


@router.get("/series", openapi_extra=extra(*qido_parameters(QueryResource.ALL_SERIES)))
async def search_series(request: Request, context: RouteDep) -> Response:
    """Search all series."""
    return await _search(request, context, QueryResource.ALL_SERIES)


@router.get("/instances", openapi_extra=extra(*qido_parameters(QueryResource.ALL_INSTANCES)))
async def search_instances(request: Request, context: RouteDep) -> Response:
    """Search all instances."""
    return await _search(request, context, QueryResource.ALL_INSTANCES)


@router.get("/studies/{study}/series", openapi_extra=extra(*qido_parameters(QueryResource.STUDY_SERIES)))
async def search_study_series(request: Request, context: RouteDep, study: str) -> Response:
    """Search the series of a study."""
    return await _search(request, context, QueryResource.STUDY_SERIES, study)


@router.get("/studies/{study}/instances", openapi_extra=extra(*qido_parameters(QueryResource.STUDY_INSTANCES)))
async def search_study_instances(request: Request, context: RouteDep, study: str) -> Response:
    """Search the instances of a study."""
    return await _search(request, context, QueryResource.STUDY_INSTANCES, study)


@router.get(
    "/studies/{study}/series/{series}/instances",
    openapi_extra=extra(*qido_parameters(QueryResource.SERIES_INSTANCES)),
)
async def search_series_instances(request: Request, context: RouteDep, study: str, series: str) -> Response:
    """Search the instances of a series."""
    return await _search(request, context, QueryResource.SERIES_INSTANCES, study, series)
