"""STOW-RS: POST (store) and PUT (upsert) on /studies[/{study}] (azure-behaviour §2)."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from dicom_emulator.api.deps import (
    ApiDep,
    NewRouteDep,
    PartitionDep,
    RouteContext,
    RuntimeDep,
    accept_header,
    resolve_partition,
    warning_header,
)
from dicom_emulator.api.multipart import SpooledPart, read_multipart, spool_body
from dicom_emulator.api.negotiation import parse_stow_content_type, require_dicom_json
from dicom_emulator.api.openapi import BULK_UPDATE_BODY, STOW_BODY, STOW_HEADERS, extra
from dicom_emulator.api.routes.bulk_update import BULK_UPDATE, bulk_update
from dicom_emulator.api.stow_response import build_store_response, store_status
from dicom_emulator.clock import utcnow
from dicom_emulator.dicom.identifiers import validate_uid
from dicom_emulator.errors import BadRequestError, UnsupportedMediaTypeError
from dicom_emulator.services.store import StoreRequest

router = APIRouter(tags=["STOW-RS"])

DICOM_JSON = "application/dicom+json"
MULTIPLE_VALUES_WARNING = "One or more indexed Dicom tag(s) have multiple values, only first value is indexed."
EXPIRY_TIME = "msdicom-expiry-time-milliseconds"
EXPIRY_OPTION = "msdicom-expiry-option"
EXPIRY_LEVEL = "msdicom-expiry-level"
# Emulator wording (Azure's answer is not recorded): past year 9999, the last date .NET and Python represent.
EXPIRY_TOO_LATE = f"The value of header '{EXPIRY_TIME}' is too large: the expiry time must be before the year 10000."


def _expires_at(request: Request) -> datetime | None:
    """When the study expires, from the ``msdicom-expiry-*`` headers (Azure managed service, §2.2).

    Azure documents only valid values; the emulator answers anything else with 400 naming the header.
    """
    raw = request.headers.get(EXPIRY_TIME)
    option = request.headers.get(EXPIRY_OPTION)
    level = request.headers.get(EXPIRY_LEVEL)
    if raw is None:
        if option is not None or level is not None:
            raise BadRequestError(f"The header '{EXPIRY_TIME}' is required when expiry headers are specified.")
        return None
    try:
        millis = int(raw.strip())
    except ValueError:
        millis = 0
    if millis <= 0:
        raise BadRequestError(f"The value of header '{EXPIRY_TIME}' must be an integer greater than 0.")
    if option is not None and option.strip().lower() != "relativetonow":
        raise BadRequestError(f"The value of header '{EXPIRY_OPTION}' must be 'RelativeToNow'.")
    if level is not None and level.strip().lower() != "study":
        raise BadRequestError(f"The value of header '{EXPIRY_LEVEL}' must be 'Study'.")
    try:
        return utcnow() + timedelta(milliseconds=millis)
    except OverflowError:
        raise BadRequestError(EXPIRY_TOO_LATE) from None


async def _spool(request: Request, runtime: RuntimeDep) -> list[SpooledPart]:
    """Spool every part to disk first: a bad later part (415) must reject before anything is stored."""
    content = parse_stow_content_type(request.headers.get("content-type"))
    max_size = runtime.settings.max_part_size
    if not content.multipart:
        return [await spool_body(request.stream(), spool=runtime.spool_files, max_size=max_size)]
    assert content.boundary is not None
    parts: list[SpooledPart] = []
    try:
        async for part in read_multipart(
            request.stream(),
            content.boundary,
            spool=runtime.spool_files,
            max_part_size=max_size,
            default_type=content.type_param,
        ):
            parts.append(part)
            # Each part must be exactly application/dicom; anything else fails the whole request (azure-behaviour §2.2).
            if (part.content_type or "").strip().lower() != "application/dicom":
                raise UnsupportedMediaTypeError(
                    f"The specified content type '{part.content_type or ''}' is not supported."
                )
    except BaseException:
        for part in parts:
            part.path.unlink(missing_ok=True)
        raise
    return parts


async def _store(request: Request, context: RouteContext, study: str | None, *, replace: bool) -> Response:
    api, runtime, partition = context.api, context.runtime, context.partition
    require_dicom_json(accept_header(request))
    route_study = validate_uid(study, "StudyInstanceUid") if study is not None else None
    expires_at = _expires_at(request)
    parts = await _spool(request, runtime)
    if not parts:
        return Response(status_code=204)
    store_request = StoreRequest(
        api_major=api.major,
        route_study_uid=route_study,
        replace=replace,
        expires_at=expires_at,
        partition_key=partition.key,
    )
    try:
        outcomes = await runtime.store.store_many([part.path for part in parts], store_request)
    except BaseException:
        # store_many consumes every file it was given, failing or not; this only covers its never starting.
        for part in parts:
            part.path.unlink(missing_ok=True)
        raise
    body = build_store_response(outcomes, api_major=api.major, base_url=partition.base_url, route_study_uid=route_study)
    headers = {}
    if any(o.multiple_values_warning for o in outcomes if o.stored):
        headers["Warning"] = warning_header(api, MULTIPLE_VALUES_WARNING)
    # Exactly application/dicom+json: dicomweb-client ignores bodies with any other value (azure-behaviour §11).
    return Response(
        # Strings, integers and lists only (no NaN or huge integers, where orjson and json differ); compact, as Azure.
        content=orjson.dumps(body),
        status_code=store_status(outcomes, api.major),
        media_type=DICOM_JSON,
        headers=headers,
    )


@router.post("/studies", openapi_extra=extra(*STOW_HEADERS, body=STOW_BODY))
async def store_instances(request: Request, context: NewRouteDep) -> Response:
    """Store instances (STOW-RS)."""
    return await _store(request, context, None, replace=False)


# Declared for the schema's sake (a body of its own); any other casing reaches the bulk update through the next route.
@router.post("/studies/$bulkUpdate", openapi_extra=extra(body=BULK_UPDATE_BODY))
async def bulk_update_studies(request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep) -> Response:
    """Bulk update of patient and study attributes (v2 only; azure-behaviour §10.1)."""
    return await bulk_update(request, api, runtime, partition)


@router.post("/studies/{study}", openapi_extra=extra(*STOW_HEADERS, body=STOW_BODY))
async def store_study_instances(request: Request, api: ApiDep, runtime: RuntimeDep, study: str) -> Response:
    """Store instances of one study (STOW-RS)."""
    # Resolved here, not as a dependency: STOW creates an unknown partition, bulk update does not (§14.1).
    if study.lower() == BULK_UPDATE:
        return await bulk_update(request, api, runtime, await resolve_partition(request, api, runtime, create=False))
    partition = await resolve_partition(request, api, runtime, create=True)
    return await _store(request, RouteContext(api, runtime, partition), study, replace=False)


@router.put("/studies", openapi_extra=extra(*STOW_HEADERS, body=STOW_BODY))
async def upsert_instances(request: Request, context: NewRouteDep) -> Response:
    """Store instances, replacing existing ones (Azure upsert)."""
    return await _store(request, context, None, replace=True)


@router.put("/studies/{study}", openapi_extra=extra(*STOW_HEADERS, body=STOW_BODY))
async def upsert_study_instances(request: Request, context: NewRouteDep, study: str) -> Response:
    """Store instances of one study, replacing existing ones (Azure upsert)."""
    return await _store(request, context, study, replace=True)
