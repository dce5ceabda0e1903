"""WADO-RS: study, series and instance retrieval and metadata (azure-behaviour §3.1–azure-behaviour §3.5,
azure-behaviour §3.7)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from dicom_emulator.api.deps import ApiDep, PartitionDep, RuntimeDep, accept_header
from dicom_emulator.api.multipart import new_boundary, write_multipart
from dicom_emulator.api.negotiation import RetrieveResource, negotiate_retrieve, require_dicom_json
from dicom_emulator.dicom.identifiers import validate_uid
from dicom_emulator.errors import NotAcceptableError
from dicom_emulator.runtime import Runtime
from dicom_emulator.services.records import InstanceRecord

router = APIRouter(tags=["WADO-RS"])

# azure-behaviour §15.4: true iff the first value is "true" (any case); honoured by these six routes only.
REQUEST_ORIGINAL = "msdicom-request-original"


def _wants_original(request: Request) -> bool:
    values = request.headers.getlist(REQUEST_ORIGINAL)
    return bool(values) and values[0].strip().lower() == "true"


MULTIPLE_INSTANCES_MESSAGE = (
    "Accept transfer syntax '{ts}' is not supported when multiple instances are matched. Matching instances "
    "can be retrieved with their original transfer syntax by specifying 'transfer-syntax=*' in the Accept header."
)


async def _instance_body(runtime: Runtime, record: InstanceRecord, ts: str) -> tuple[str, AsyncIterator[bytes]]:
    """The bytes of one instance in transfer syntax ``ts`` ('*' = as stored), and the syntax sent.

    Transcoding (size limit, then codecs; 406 on failure) is done before this returns, frame by frame into
    a spool file, so memory stays bounded and a failure is still a clean 406 (services/pixels.py).
    """
    stored_ts = record.transfer_syntax or ""
    if ts in ("*", stored_ts):
        return stored_ts, runtime.retrieve.read(record)
    return ts, await runtime.pixels.transcoded_instance(record, ts)


async def _retrieve(
    request: Request,
    runtime: Runtime,
    partition_key: int,
    resource: RetrieveResource,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> Response:
    study = validate_uid(study, "StudyInstanceUid")
    series = validate_uid(series, "SeriesInstanceUid") if series is not None else None
    instance = validate_uid(instance, "SopInstanceUid") if instance is not None else None
    fmt = negotiate_retrieve(accept_header(request), resource)
    records = await runtime.retrieve.instances(partition_key, study, series, instance)
    if _wants_original(request):
        records = [r.original() for r in records]
    if fmt.transfer_syntax != "*" and len(records) > 1:
        raise NotAcceptableError(MULTIPLE_INSTANCES_MESSAGE.format(ts=fmt.transfer_syntax))
    if not fmt.multipart:
        ts, body = await _instance_body(runtime, records[0], fmt.transfer_syntax)
        return StreamingResponse(body, media_type=f"application/dicom; transfer-syntax={ts}")
    if fmt.transfer_syntax != "*":
        # Transcode before the status line goes out, so a failure is still a clean 406.
        first = [await _instance_body(runtime, records[0], fmt.transfer_syntax)]
    else:
        first = []

    async def parts() -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        for ts, body in first:
            yield f"application/dicom; transfer-syntax={ts}", body
        for record in records[len(first) :]:
            ts, body = await _instance_body(runtime, record, fmt.transfer_syntax)
            yield f"application/dicom; transfer-syntax={ts}", body

    boundary = new_boundary()
    # Azure's outer header has no type parameter (azure-behaviour §3.3).
    return StreamingResponse(write_multipart(parts(), boundary), media_type=f"multipart/related; boundary={boundary}")


async def _metadata(
    request: Request,
    runtime: Runtime,
    partition_key: int,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> Response:
    require_dicom_json(accept_header(request))
    study = validate_uid(study, "StudyInstanceUid")
    series = validate_uid(series, "SeriesInstanceUid") if series is not None else None
    instance = validate_uid(instance, "SopInstanceUid") if instance is not None else None
    result = await runtime.retrieve.metadata(partition_key, study, series, instance, original=_wants_original(request))
    # Unquoted ETag compared literally (case-insensitive) with If-None-Match (azure-behaviour §3.5).
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip().lower() == result.etag.lower():
        return Response(status_code=304)
    return Response(content=result.body, media_type="application/dicom+json", headers={"ETag": result.etag})


@router.get("/studies/{study}")
async def retrieve_study(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str
) -> Response:
    """Retrieve all instances of a study."""
    return await _retrieve(request, runtime, partition.key, RetrieveResource.STUDY, study)


@router.get("/studies/{study}/metadata")
async def retrieve_study_metadata(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str
) -> Response:
    """Metadata of every instance of a study."""
    return await _metadata(request, runtime, partition.key, study)


@router.get("/studies/{study}/series/{series}")
async def retrieve_series(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str, series: str
) -> Response:
    """Retrieve all instances of a series."""
    return await _retrieve(request, runtime, partition.key, RetrieveResource.SERIES, study, series)


@router.get("/studies/{study}/series/{series}/metadata")
async def retrieve_series_metadata(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str, series: str
) -> Response:
    """Metadata of every instance of a series."""
    return await _metadata(request, runtime, partition.key, study, series)


@router.get("/studies/{study}/series/{series}/instances/{instance}")
async def retrieve_instance(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str, series: str, instance: str
) -> Response:
    """Retrieve one instance."""
    return await _retrieve(request, runtime, partition.key, RetrieveResource.INSTANCE, study, series, instance)


@router.get("/studies/{study}/series/{series}/instances/{instance}/metadata")
async def retrieve_instance_metadata(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str, series: str, instance: str
) -> Response:
    """Metadata of one instance."""
    return await _metadata(request, runtime, partition.key, study, series, instance)
