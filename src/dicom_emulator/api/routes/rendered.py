"""WADO-RS rendered resources (azure-behaviour §3.6) and the emulator-only DICOMweb thumbnails.

Rendered (Azure): ``…/instances/{instance}/rendered`` (frame 1) and ``…/frames/{frame}/rendered``, JPEG
or PNG, ``quality`` 1..100. Order of checks (archived ``RetrieveController``/``RetrieveRenderedHandler``/
``RetrieveRenderedService``): model binding of ``frame`` and ``quality`` (400), UIDs (400), frame value
(400), quality range (400), Accept (406), existence (404), file size (406), frame number (404),
rendering (406). Unknown query parameters are ignored, as Azure does; with ``--loose`` a PS3.18
``window=center,width[,function]`` parameter overrides the dataset's VOI (emulator extension).

Thumbnails (PS3.18 §9.5.1, ``/thumbnail`` at study, series and instance level) are not an Azure
resource (Azure answers 404): they exist only with ``--loose``, and answer an empty 404 otherwise, like
any unknown route. ``viewport=vw,vh`` (either may be empty to keep the aspect ratio) sets the size,
default 128×128; images come from an in-process cache filled on first request.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from starlette.responses import Response

from dicom_emulator.api.deps import ApiDep, PartitionDep, RuntimeDep, accept_header
from dicom_emulator.api.negotiation import IMAGE_JPEG, IMAGE_PNG, negotiate_rendered, parse_accept
from dicom_emulator.api.openapi import QUALITY, VIEWPORT, WINDOW, extra
from dicom_emulator.api.routes.frames import INVALID_FRAMES_MESSAGE, INVALID_PARAMETER_MESSAGE
from dicom_emulator.dicom.identifiers import validate_uid
from dicom_emulator.dicom.rendering import Viewport, Window
from dicom_emulator.errors import BadRequestError, NotAcceptableError
from dicom_emulator.runtime import Runtime

router = APIRouter(tags=["WADO-RS rendered"])

# DicomCoreResource.InvalidImageQuality (RetrieveRenderedService).
INVALID_QUALITY_MESSAGE = "Image quality must be between 1 and 100 inclusive"
# ASP.NET Core model binding messages (ModelBindingMessageProvider: AttemptedValueIsInvalid,
# ValueMustNotBeNull), wrapped by QueryModelStateValidator in InvalidQueryStringValue.
ATTEMPTED_VALUE_INVALID = "The value '{value}' is not valid for {name}."
VALUE_MUST_NOT_BE_NULL = "The value '{value}' is invalid."
NOT_ACCEPTABLE_MESSAGE = "The request headers are not acceptable"
# Emulator-only messages (window and viewport are not Azure parameters).
INVALID_WINDOW_MESSAGE = (
    "The query parameter 'window' is invalid. Expected 'center,width' or 'center,width,function' with numbers, "
    "width > 0 and function one of linear, linear-exact, sigmoid."
)
INVALID_VIEWPORT_MESSAGE = (
    "The query parameter 'viewport' is invalid. Expected 'vw,vh' with whole numbers from 1 to {max}; one of "
    "them may be empty."
)
DEFAULT_QUALITY = 100
DEFAULT_THUMBNAIL_SIZE = 128
MAX_VIEWPORT = 4096

# Int32Converter (BaseNumberConverter): trimmed, optional sign, decimal digits, or 0x / &h hex.
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_HEX_RE = re.compile(r"^\s*(?:0x|&h)([0-9a-f]+)\s*$", re.IGNORECASE)
_WINDOW_FUNCTIONS = {"linear": "LINEAR", "linear-exact": "LINEAR_EXACT", "sigmoid": "SIGMOID"}


def _query_value(request: Request, name: str) -> str | None:
    """ASP.NET reads query keys case-insensitively and joins repeated values with ','."""
    values = [value for key, value in request.query_params.multi_items() if key.lower() == name]
    return ",".join(values) if values else None


def bind_int(raw: str | None, name: str, default: int) -> int:
    """Bind an ``int`` action parameter as ASP.NET Core's SimpleTypeModelBinder does (400 on failure)."""
    if raw is None:
        return default
    if raw.strip() == "":
        error = VALUE_MUST_NOT_BE_NULL.format(value=raw)
    else:
        hex_match = _HEX_RE.match(raw)
        number = int(hex_match[1], 16) if hex_match else int(raw) if _INT_RE.match(raw) else None
        if number is not None and -(2**31) <= number < 2**31:
            return number
        error = ATTEMPTED_VALUE_INVALID.format(value=raw, name=name)
    raise BadRequestError(INVALID_PARAMETER_MESSAGE.format(name=name, error=error))


def parse_window(raw: str | None) -> Window | None:
    """PS3.18 §8.3.5.1.4 ``window=center,width[,function]`` (emulator extension)."""
    if raw is None:
        return None
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) not in (2, 3):
        raise BadRequestError(INVALID_WINDOW_MESSAGE)
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError as exc:
        raise BadRequestError(INVALID_WINDOW_MESSAGE) from exc
    function = _WINDOW_FUNCTIONS.get(parts[2].lower() if len(parts) == 3 else "linear")
    if function is None or not width > 0 or center != center or width == float("inf"):
        raise BadRequestError(INVALID_WINDOW_MESSAGE)
    return Window(center, max(width, 1.0) if function == "LINEAR" else width, function)


def parse_viewport(raw: str | None) -> Viewport:
    """PS3.18 §8.3.5.1.3 ``viewport=vw,vh``; an empty side keeps the aspect ratio. Default 128×128."""
    if raw is None:
        return Viewport(DEFAULT_THUMBNAIL_SIZE, DEFAULT_THUMBNAIL_SIZE)
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) != 2:
        raise BadRequestError(INVALID_VIEWPORT_MESSAGE.format(max=MAX_VIEWPORT))
    sizes: list[int | None] = []
    for part in parts:
        if part == "":
            sizes.append(None)
            continue
        if not part.isdigit() or not 1 <= int(part) <= MAX_VIEWPORT:
            raise BadRequestError(INVALID_VIEWPORT_MESSAGE.format(max=MAX_VIEWPORT))
        sizes.append(int(part))
    if sizes == [None, None]:
        raise BadRequestError(INVALID_VIEWPORT_MESSAGE.format(max=MAX_VIEWPORT))
    return Viewport(sizes[0], sizes[1])


def negotiate_thumbnail(accept: str | None) -> str:
    """Lenient choice for the emulator-only thumbnail: highest-q of jpeg/png/image/*/*/*; none → jpeg."""
    ranges = parse_accept(accept)
    if not ranges:
        return IMAGE_JPEG
    best: tuple[float, str] | None = None
    for media_range in ranges:
        if media_range.q <= 0:
            continue
        chosen = {IMAGE_JPEG: IMAGE_JPEG, IMAGE_PNG: IMAGE_PNG, "image/*": IMAGE_JPEG, "*/*": IMAGE_JPEG}.get(
            media_range.media_type
        )
        if chosen is not None and (best is None or media_range.q > best[0]):
            best = (media_range.q, chosen)
    if best is None:
        raise NotAcceptableError(NOT_ACCEPTABLE_MESSAGE)
    return best[1]


async def _rendered(
    request: Request,
    runtime: Runtime,
    partition_key: int,
    study: str,
    series: str,
    instance: str,
    frame_raw: str | None,
) -> Response:
    frame = bind_int(frame_raw, "frame", 1) if frame_raw is not None else 1
    quality = bind_int(_query_value(request, "quality"), "quality", DEFAULT_QUALITY)
    study = validate_uid(study, "StudyInstanceUid")
    series = validate_uid(series, "SeriesInstanceUid")
    instance = validate_uid(instance, "SopInstanceUid")
    if frame < 1:
        raise BadRequestError(INVALID_FRAMES_MESSAGE)
    if not 1 <= quality <= 100:
        raise BadRequestError(INVALID_QUALITY_MESSAGE)
    media_type = negotiate_rendered(accept_header(request))
    window = parse_window(_query_value(request, "window")) if runtime.settings.loose else None
    image = await runtime.pixels.rendered(
        partition_key, study, series, instance, frame, media_type, quality=quality, window=window
    )
    return Response(content=image, media_type=media_type)


@router.get("/studies/{study}/series/{series}/instances/{instance}/rendered", openapi_extra=extra(QUALITY, WINDOW))
async def retrieve_rendered_instance(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str, series: str, instance: str
) -> Response:
    """Frame 1 of an instance as ``image/jpeg`` (default) or ``image/png``."""
    return await _rendered(request, runtime, partition.key, study, series, instance, None)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered",
    openapi_extra=extra(QUALITY, WINDOW),
)
async def retrieve_rendered_frame(
    request: Request,
    api: ApiDep,
    runtime: RuntimeDep,
    partition: PartitionDep,
    study: str,
    series: str,
    instance: str,
    frame: str,
) -> Response:
    """One frame (1-based) of an instance as ``image/jpeg`` (default) or ``image/png``."""
    return await _rendered(request, runtime, partition.key, study, series, instance, frame)


async def _thumbnail(
    request: Request,
    runtime: Runtime,
    partition_key: int,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> Response:
    if not runtime.settings.loose:
        return Response(status_code=404)  # not an Azure route: the same empty 404 as any unknown route
    quality = bind_int(_query_value(request, "quality"), "quality", DEFAULT_QUALITY)
    study = validate_uid(study, "StudyInstanceUid")
    series = validate_uid(series, "SeriesInstanceUid") if series is not None else None
    instance = validate_uid(instance, "SopInstanceUid") if instance is not None else None
    if not 1 <= quality <= 100:
        raise BadRequestError(INVALID_QUALITY_MESSAGE)
    viewport = parse_viewport(_query_value(request, "viewport"))
    window = parse_window(_query_value(request, "window"))
    media_type = negotiate_thumbnail(accept_header(request))
    image = await runtime.pixels.thumbnail(
        partition_key, study, series, instance, media_type, viewport=viewport, quality=quality, window=window
    )
    return Response(content=image, media_type=media_type)


@router.get("/studies/{study}/thumbnail", openapi_extra=extra(QUALITY, VIEWPORT, WINDOW))
async def study_thumbnail(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str
) -> Response:
    """Emulator-only (``--loose``): thumbnail of a representative instance of the study."""
    return await _thumbnail(request, runtime, partition.key, study)


@router.get("/studies/{study}/series/{series}/thumbnail", openapi_extra=extra(QUALITY, VIEWPORT, WINDOW))
async def series_thumbnail(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str, series: str
) -> Response:
    """Emulator-only (``--loose``): thumbnail of a representative instance of the series."""
    return await _thumbnail(request, runtime, partition.key, study, series)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/thumbnail",
    openapi_extra=extra(QUALITY, VIEWPORT, WINDOW),
)
async def instance_thumbnail(
    request: Request, api: ApiDep, runtime: RuntimeDep, partition: PartitionDep, study: str, series: str, instance: str
) -> Response:
    """Emulator-only (``--loose``): thumbnail of frame 1 of an instance."""
    return await _thumbnail(request, runtime, partition.key, study, series, instance)
