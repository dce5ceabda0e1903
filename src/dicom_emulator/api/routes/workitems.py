"""UPS-RS: the six workitem routes (azure-behaviour §9.1), answered the way Azure's ``WorkitemController`` does.

Order of checks per route follows ASP.NET's filter pipeline in Azure: ``Content-Type`` (``[Consumes]``, 415 with
an empty body) before the body (model binding; a bad body is a plain-text 400 through the controller's
``QueryModelStateValidator``), before ``Accept`` (``AcceptContentFilter``, 406 with an empty body), before the UIDs
(plain-text 400), before the workitem service. Failures decided by the workitem service are JSON string literals
(``"The workitem instance is not found."``), with ``Warning: 299 {host}: "{message}"`` where Azure sets it.

Subscriptions (``/workitems/{uid}/subscribers/{aetitle}``, ``/subscribers/{aetitle}``, Watch/Event SOPs) are not
implemented by Azure: there are no such routes, so they answer 404 with an empty body here too.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydicom.dataset import Dataset
from starlette.responses import Response

from dicom_emulator.api.deps import (
    ApiContext,
    ApiDep,
    NewPartitionDep,
    PartitionContext,
    PartitionDep,
    RuntimeDep,
    accept_header,
    warning_header,
)
from dicom_emulator.api.errors import status_for
from dicom_emulator.api.json_body import parse_json, read_capped
from dicom_emulator.api.negotiation import APPLICATION_DICOM_JSON, require_dicom_json
from dicom_emulator.api.openapi import DICOM_JSON_BODY, extra, workitem_search_parameters
from dicom_emulator.dicom.identifiers import validate_uid
from dicom_emulator.dicom.json_model import json_to_dataset
from dicom_emulator.dicom.ups.search import parse_paging
from dicom_emulator.errors import BadRequestError, NotAcceptableError
from dicom_emulator.services.workitems import WorkitemFailure

router = APIRouter(tags=["UPS-RS"])

# Media type of the JSON string bodies (messages). Azure's ASP.NET JSON formatter writes them; the emulator
# labels them plain application/json.
MESSAGE_MEDIA_TYPE = "application/json"

# Body binding failures, as Azure's QueryModelStateValidator words ASP.NET model-state errors (the body parameter
# has an empty model name). Invalid JSON gets the generic syntax message (ASP.NET would echo System.Text.Json).
MSG_BODY_SYNTAX = "The syntax of the request body is invalid."
MSG_BODY_EMPTY = "The query parameter '' is invalid. A non-empty request body is required."
MSG_BODY_NO_DATASET = (
    "The query parameter '' is invalid. The field dicomDatasets must be a string or array type with a minimum "
    "length of '1'."
)

_WORKITEM_UID = "WorkitemInstanceUid"  # names Azure's UID validation prints
_TRANSACTION_UID = "TransactionUid"

# System.Text.Json's default encoder (Azure sets no other): HTML-sensitive characters and everything outside
# printable ASCII are written as \uXXXX (upper-case hex), so "can not transition to 'X'" reads \u0027X\u0027.
_JSON_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_JSON_HEX_ESCAPED = frozenset("<>&'+`")


def dotnet_json_string(text: str) -> str:
    """``text`` as a JSON string literal the way Azure's System.Text.Json writes it."""
    out = ['"']
    for char in text:
        if char in _JSON_SHORT_ESCAPES:
            out.append(_JSON_SHORT_ESCAPES[char])
        elif char in _JSON_HEX_ESCAPED or not " " <= char <= "~":
            out.extend(f"\\u{unit:04X}" for unit in _utf16_units(char))
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _utf16_units(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def message_response(
    status: int,
    message: str,
    *,
    api: ApiContext | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON string body; with ``api`` given and a non-blank message, also ``Warning: 299 {host}: "{message}"``."""
    all_headers = dict(headers or {})
    if api is not None and message.strip():
        all_headers["Warning"] = warning_header(api, message)
    return Response(
        content=dotnet_json_string(message).encode(),
        status_code=status,
        media_type=MESSAGE_MEDIA_TYPE,
        headers=all_headers,
    )


def _failure(exc: WorkitemFailure, api: ApiContext | None = None) -> Response:
    return message_response(status_for(exc), exc.message, api=api)


def _is_dicom_json(content_type: str | None) -> bool:
    """``[Consumes("application/dicom+json")]``: that type (any case), parameters such as charset allowed."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == APPLICATION_DICOM_JSON


async def _read_dataset(request: Request) -> Dataset | Response:
    """The first dataset of the JSON array body, or the 415 response. Bad bodies raise a plain-text 400."""
    if not _is_dicom_json(request.headers.get("content-type")):
        return Response(status_code=415)
    raw = await read_capped(request)
    if not raw.strip():
        raise BadRequestError(MSG_BODY_EMPTY)
    try:
        body: Any = parse_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(MSG_BODY_SYNTAX) from exc
    if not isinstance(body, list):
        raise BadRequestError(MSG_BODY_SYNTAX)
    if not body:
        raise BadRequestError(MSG_BODY_NO_DATASET)
    # Azure binds every item (IReadOnlyList<DicomDataset>) and uses the first.
    try:
        datasets = [json_to_dataset(item) for item in body]
    except RecursionError:
        # Sequences nested deeper than Python's recursion limit: not a dataset Azure would bind either.
        raise BadRequestError(MSG_BODY_SYNTAX) from None
    return datasets[0]


def _acceptable(request: Request) -> bool:
    """``AcceptContentFilter([application/dicom+json])`` (azure-behaviour §1.4); Azure answers 406 with no body."""
    try:
        require_dicom_json(accept_header(request))
    except NotAcceptableError:
        return False
    return True


def _first_query_key(request: Request) -> str | None:
    """The name of the first query parameter (``?1.2.3``): how Azure passes the workitem / transaction UID."""
    items = request.query_params.multi_items()
    return items[0][0] if items else None


def _optional_uid(value: str | None, name: str) -> str | None:
    # UidValidation.Validate(..., allowEmpty: true): absent or "" means none; anything else must be a UID.
    if value is None or value == "":
        return None
    return validate_uid(value, name)


def _workitem_url(partition: PartitionContext, uid: str) -> str:
    # Carries the partition when the request had one (azure-behaviour §14.4).
    return f"{partition.base_url}/workitems/{uid}"


@router.post("/workitems", openapi_extra=extra(body=DICOM_JSON_BODY))
async def create_workitem(request: Request, api: ApiDep, runtime: RuntimeDep, partition: NewPartitionDep) -> Response:
    """Create a workitem; its UID is the name of the first query parameter (``POST /workitems?1.2.3``)."""
    dataset = await _read_dataset(request)
    if isinstance(dataset, Response):
        return dataset
    if not _acceptable(request):
        return Response(status_code=406)
    uid = _optional_uid(_first_query_key(request), _WORKITEM_UID)
    try:
        record = await runtime.workitems.in_partition(partition.key).create(dataset, uid)
    except WorkitemFailure as exc:
        return _failure(exc)
    url = _workitem_url(partition, record.uid)
    return Response(status_code=201, headers={"Location": url, "Content-Location": url})


@router.get("/workitems", openapi_extra=extra(*workitem_search_parameters()))
async def search_workitems(request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep) -> Response:
    """Search workitems (azure-behaviour §9.6): 200 with a JSON array, 204 when nothing matched."""
    params = request.query_params.multi_items()
    parse_paging(params)  # model binding of limit/offset/fuzzymatching runs before the Accept filter
    if not _acceptable(request):
        return Response(status_code=406)
    query = runtime.workitems.in_partition(partition.key).parse_search(params)
    results = await runtime.workitems.in_partition(partition.key).search(query)
    if not results:
        return Response(status_code=204)
    return Response(content=json.dumps(results).encode(), media_type=APPLICATION_DICOM_JSON)


@router.get("/workitems/{uid}")
async def retrieve_workitem(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, uid: str
) -> Response:
    """Retrieve a workitem as a DICOM JSON object, without its Transaction UID."""
    if not _acceptable(request):
        return Response(status_code=406)
    workitem_uid = validate_uid(uid, _WORKITEM_UID)
    try:
        record = await runtime.workitems.in_partition(partition.key).get(workitem_uid)
    except WorkitemFailure as exc:
        return _failure(exc)
    return Response(content=json.dumps(record.to_json()).encode(), media_type=APPLICATION_DICOM_JSON)


@router.post("/workitems/{uid}", openapi_extra=extra(body=DICOM_JSON_BODY))
async def update_workitem(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, uid: str
) -> Response:
    """Update a workitem; the Transaction UID is the name of the first query parameter (``?{transactionUid}``)."""
    dataset = await _read_dataset(request)
    if isinstance(dataset, Response):
        return dataset
    workitem_uid = validate_uid(uid, _WORKITEM_UID)
    transaction_uid = _optional_uid(_first_query_key(request), _TRANSACTION_UID)
    try:
        record = await runtime.workitems.in_partition(partition.key).update(workitem_uid, dataset, transaction_uid)
    except WorkitemFailure as exc:
        return _failure(exc, api)
    return message_response(200, "", headers={"Content-Location": _workitem_url(partition, record.uid)})


@router.put("/workitems/{uid}/state", openapi_extra=extra(body=DICOM_JSON_BODY))
async def change_workitem_state(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, uid: str
) -> Response:
    """Change the state of a workitem (claim, complete, cancel); every message is echoed in a Warning header."""
    dataset = await _read_dataset(request)
    if isinstance(dataset, Response):
        return dataset
    workitem_uid = validate_uid(uid, _WORKITEM_UID)
    try:
        change = await runtime.workitems.in_partition(partition.key).change_state(workitem_uid, dataset)
    except WorkitemFailure as exc:
        return _failure(exc, api)
    return message_response(200, change.warning or "", api=api)


@router.post("/workitems/{uid}/cancelrequest", openapi_extra=extra(body=DICOM_JSON_BODY))
async def cancel_workitem(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, uid: str
) -> Response:
    """Request the cancellation of a workitem: 202; a Warning header only on 409 (already canceled)."""
    dataset = await _read_dataset(request)
    if isinstance(dataset, Response):
        return dataset
    workitem_uid = validate_uid(uid, _WORKITEM_UID)
    try:
        result = await runtime.workitems.in_partition(partition.key).cancel(workitem_uid, dataset)
    except WorkitemFailure as exc:
        return _failure(exc, api if status_for(exc) == 409 else None)
    return message_response(202, result.message)
