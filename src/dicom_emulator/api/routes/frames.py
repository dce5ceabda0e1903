"""WADO-RS frames: ``…/instances/{instance}/frames/{frames}`` (azure-behaviour §3.1–azure-behaviour §3.4).

Order of checks (azure-behaviour §3.1, archived ``RetrieveController``/``RetrieveResourceService``): the
``frames`` list is parsed by ASP.NET model binding before the action runs (400), then UIDs (400), frame
values (400), Accept (406), one frame for single-part Accept (400), existence (404), and in the service
the size limit when transcoding (406), frame numbers (404) and transcoding (406).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from dicom_emulator.api.deps import ApiDep, PartitionDep, RuntimeDep, accept_header
from dicom_emulator.api.multipart import new_boundary, write_multipart
from dicom_emulator.api.negotiation import RetrieveResource, negotiate_retrieve
from dicom_emulator.dicom.identifiers import validate_uid
from dicom_emulator.errors import BadRequestError

router = APIRouter(tags=["WADO-RS frames"])

# DicomApiResource.InvalidParse inside DicomCoreResource.InvalidQueryStringValue (QueryModelStateValidator).
INVALID_PARAMETER_MESSAGE = "The query parameter '{name}' is invalid. {error}"
INVALID_PARSE_MESSAGE = "Unable to parse value '{value}' as Int32."
# DicomCoreResource.InvalidFramesValue (RetrieveRequestValidator.ValidateFrames).
INVALID_FRAMES_MESSAGE = (
    "The specified frames value is not valid. At least one frame must be present, and all requested frames must "
    "have value greater than 0."
)
# DicomCoreResource.SinglePartSupportedForSingleFrame.
SINGLE_PART_MESSAGE = "The accept header is supported for single frame retrieval, use multi-part accept header instead."

# .NET int.TryParse(s, NumberStyles.Any, InvariantCulture) as IntArrayModelBinder uses it: white space,
# a leading or trailing sign or parentheses, a decimal point with only zeros after it, an exponent.
_NET_NUMBER = re.compile(
    r"^\s*(?P<open>\()?\s*(?P<lead>[+-])?\s*(?P<int>\d*)(?:\.(?P<frac>\d*))?"
    r"(?:[eE](?P<exp>[+-]?\d+))?\s*(?P<trail>[+-])?\s*(?P<close>\))?\s*$"
)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def parse_int32_any(text: str) -> int | None:
    """``int.TryParse(text, NumberStyles.Any, CultureInfo.InvariantCulture)``, or None when it fails."""
    match = _NET_NUMBER.match(text)
    if match is None or not (match["int"] or match["frac"]):
        return None
    if bool(match["open"]) != bool(match["close"]) or (match["lead"] and match["trail"]):
        return None
    try:
        value = Decimal(f"{match['int'] or '0'}.{match['frac'] or '0'}")
        if match["exp"]:
            value = value.scaleb(int(match["exp"]))
    except (InvalidOperation, ValueError):
        return None
    if value != value.to_integral_value():
        return None
    number = int(value)
    if match["open"] or "-" in (match["lead"], match["trail"]):
        number = -number
    return number if _INT32_MIN <= number <= _INT32_MAX else None


def parse_frame_list(raw: str) -> list[int]:
    """``CsvModelBinder<int>``: split on ',', trim entries, parse each; 400 naming the first bad value."""
    numbers = []
    for entry in raw.split(","):
        entry = entry.strip()
        number = parse_int32_any(entry)
        if number is None:
            error = INVALID_PARSE_MESSAGE.format(value=entry)
            raise BadRequestError(INVALID_PARAMETER_MESSAGE.format(name="frames", error=error))
        numbers.append(number)
    return numbers


def validate_frame_numbers(numbers: list[int]) -> None:
    """At least one frame, all 1-based (azure-behaviour §3.4)."""
    if not numbers or any(n < 1 for n in numbers):
        raise BadRequestError(INVALID_FRAMES_MESSAGE)


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}")
async def retrieve_frames(
    request: Request,
    api: ApiDep,
    runtime: RuntimeDep,
    partition: PartitionDep,
    study: str,
    series: str,
    instance: str,
    frames: str,
) -> Response:
    """Retrieve frames (1-based, comma-separated; ``%2C`` is decoded with the path) in the requested order."""
    numbers = parse_frame_list(frames)
    study = validate_uid(study, "StudyInstanceUid")
    series = validate_uid(series, "SeriesInstanceUid")
    instance = validate_uid(instance, "SopInstanceUid")
    validate_frame_numbers(numbers)
    fmt = negotiate_retrieve(accept_header(request), RetrieveResource.FRAMES)
    if not fmt.multipart and len(numbers) > 1:
        raise BadRequestError(SINGLE_PART_MESSAGE)
    result = await runtime.pixels.frames(partition.key, study, series, instance, numbers, fmt.transfer_syntax)
    content_type = f"{fmt.media_type}; transfer-syntax={result.transfer_syntax}"
    if not fmt.multipart:
        return StreamingResponse(result.parts[0], media_type=content_type)

    async def parts() -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        for body in result.parts:
            yield content_type, body

    boundary = new_boundary()
    # Azure's outer header has no type parameter (azure-behaviour §3.3).
    return StreamingResponse(write_multipart(parts(), boundary), media_type=f"multipart/related; boundary={boundary}")
