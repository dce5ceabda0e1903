"""HTTP content negotiation: Accept parsing, WADO/rendered Accept rules, STOW Content-Type rules.

Pure functions over header strings; nothing here knows about requests, storage or services. Each rule
cites the reference (``docs/azure-behaviour.md``) and, where the reference is silent,
the archived ``microsoft/dicom-server`` code it was read from (``AcceptHeaderHandler``,
``MediaTypeHeaderValueExtensions.ToAcceptHeader``, ``AspNetCoreMultipartReader``,
``DicomInstanceEntryReaderForSinglePartRequest``, ``RetrieveRenderedService``).

Callers with several ``Accept`` header lines should join them with ``", "`` before calling.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from dicom_emulator.errors import BadRequestError, NotAcceptableError, UnsupportedMediaTypeError

# --- Messages (DicomCoreResource.resx / DicomApiResource.resx, branch `archived`) -------------------

NOT_ACCEPTABLE_MESSAGE = "The request headers are not acceptable"  # DicomCoreResource.NotAcceptableHeaders
MULTIPLE_ACCEPT_MESSAGE = (  # DicomCoreResource.MultipleAcceptHeadersNotSupported (azure-behaviour §3.6)
    "The request contains multiple accept headers, which is not supported."
)
# DicomCoreResource.UnsupportedContentType (= DicomApiResource.UnsupportedContentType)
UNSUPPORTED_CONTENT_TYPE_MESSAGE = "The specified content type '{0}' is not supported."
INVALID_MULTIPART_CONTENT_TYPE_MESSAGE = (  # DicomApiResource.InvalidMultipartContentType (azure-behaviour §2.2)
    "The content type '{0}' is either not multipart or is missing boundary."
)
START_PARAMETER_MESSAGE = (  # DicomApiResource.StartParameterIsNotSupported (azure-behaviour §2.2)
    "The start parameter in multipart/related request is not supported."
)

# --- Well-known media types and transfer syntaxes ---------------------------------------------------

APPLICATION_DICOM = "application/dicom"
APPLICATION_DICOM_JSON = "application/dicom+json"
APPLICATION_OCTET_STREAM = "application/octet-stream"
MULTIPART_RELATED = "multipart/related"
IMAGE_JPEG = "image/jpeg"
IMAGE_PNG = "image/png"
IMAGE_JP2 = "image/jp2"
ANY_MEDIA_TYPE = "*/*"

ORIGINAL_TS = "*"  # DicomTransferSyntaxUids.Original: "send the stored transfer syntax"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"

# --- Accept parsing (RFC 9110 §12.5.1, lenient where Azure is) --------------------------------------

# RFC 9110 tchar; '*' is a tchar, so "*/*" and "image/*" match.
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_MEDIA_TYPE_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# qvalue; slightly looser than RFC 9110 (any number of decimals), range-checked after parsing.
_QVALUE_RE = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)$")

DEFAULT_QUALITY = 1.0  # AcceptHeader.DefaultQuality


@dataclass(frozen=True)
class MediaRange:
    """One element of an ``Accept`` (or ``Content-Type``) header.

    ``media_type`` is lower-case ``type/subtype``; ``params`` has lower-case names and unquoted values
    (the first occurrence of a name wins, as ``GetParameter`` does); ``q`` is not in ``params``.
    """

    media_type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = DEFAULT_QUALITY


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split ``text`` on ``separator`` except inside quoted strings (backslash escapes honoured)."""
    pieces: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    for char in text:
        if in_quotes:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
            current.append(char)
        elif char == separator:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return pieces


def _unquote(raw: str) -> str | None:
    """Return the value of a parameter: a complete quoted-string unescaped, or the raw token.

    Unquoted values are accepted leniently (including ``/``), because OHIF and DICOMweb CP 1776 send
    ``type=application/octet-stream`` without quotes (``MediaTypeHeaderValueExtensions.ToAcceptHeader``).
    Returns None for a malformed value (unterminated quote, text after the closing quote, stray quote).
    """
    if not raw.startswith('"'):
        return None if '"' in raw else raw
    chars: list[str] = []
    escaped = False
    for index in range(1, len(raw)):
        char = raw[index]
        if escaped:
            chars.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return "".join(chars) if index == len(raw) - 1 else None
        else:
            chars.append(char)
    return None  # unterminated quoted-string


def _parse_media_type(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """Parse ``type/subtype *( ; name[=value] )`` into a lower-case type and ordered parameters."""
    pieces = _split_outside_quotes(text, ";")
    media_type = pieces[0].strip()
    if not _MEDIA_TYPE_RE.match(media_type):
        return None
    params: list[tuple[str, str]] = []
    for piece in pieces[1:]:
        piece = piece.strip()
        if not piece:
            continue  # tolerate "a/b;" and "a/b;;c=d"
        name, sep, raw_value = piece.partition("=")
        name = name.strip()
        if not _TOKEN_RE.match(name):
            return None
        value = _unquote(raw_value.strip()) if sep else ""
        if value is None:
            return None
        params.append((name.lower(), value))
    return media_type.lower(), params


def _parse_quality(value: str) -> float | None:
    if not _QVALUE_RE.match(value):
        return None
    quality = float(value)
    return quality if 0.0 <= quality <= 1.0 else None


def parse_accept(header: str | None) -> list[MediaRange]:
    """Parse an ``Accept`` header into media ranges, in header order.

    Invalid ranges (no ``type/subtype``, malformed parameter, bad quoting, unparsable or out-of-range
    ``q``) are skipped rather than failing the whole header, like ASP.NET's lenient ``TryParseList``
    used by ``GetTypedHeaders().Accept``. Commas inside quoted strings do not split ranges.
    """
    if not header:
        return []
    ranges: list[MediaRange] = []
    for element in _split_outside_quotes(header, ","):
        element = element.strip()
        if not element:
            continue
        parsed = _parse_media_type(element)
        if parsed is None:
            continue
        media_type, param_list = parsed
        params: dict[str, str] = {}
        quality: float | None = DEFAULT_QUALITY
        seen_q = False
        for name, value in param_list:
            if name == "q":
                if not seen_q:
                    seen_q = True
                    quality = _parse_quality(value)
                continue
            params.setdefault(name, value)
        if quality is None:
            continue
        ranges.append(MediaRange(media_type=media_type, params=params, q=quality))
    return ranges


# --- azure-behaviour §1.4 Accept filter ------------------------------------------------------------------------------

# AcceptContentFilterAttribute([application/dicom+json]) accepts these ranges (any case, any params);
# its unit tests list exactly */*, application/*, application/json and application/dicom+json.
_DICOM_JSON_MATCHES = frozenset({ANY_MEDIA_TYPE, "application/*", "application/json", APPLICATION_DICOM_JSON})


def require_dicom_json(accept: str | None) -> None:
    """azure-behaviour §1.4 Accept filter (STOW, metadata, QIDO, workitems): some range must match
    ``application/dicom+json``.

    ``q`` is ignored (Azure's filter ignores it, so ``q=0`` still matches). No header → 406 [test].
    The filter answers with a bare ``StatusCodeResult(406)``: no body (AcceptContentFilterAttribute).
    """
    if any(media_range.media_type in _DICOM_JSON_MATCHES for media_range in parse_accept(accept)):
        return
    raise NotAcceptableError("")


# --- azure-behaviour §3.2 WADO-RS retrieve negotiation ---------------------------------------------------------------


class RetrieveResource(enum.Enum):
    """The WADO-RS resource being retrieved; each has its own acceptable table (azure-behaviour §3.2)."""

    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"
    FRAMES = "frames"


@dataclass(frozen=True)
class RetrieveFormat:
    """The negotiated response: payload media type, transfer syntax (``*`` = as stored), multipart or not."""

    media_type: str
    transfer_syntax: str
    multipart: bool


@dataclass(frozen=True)
class _Descriptor:
    """One row of the azure-behaviour §3.2 table (``AcceptHeaderDescriptor``)."""

    media_type: str
    single_part: bool
    multipart: bool
    default_transfer_syntax: str
    transfer_syntaxes: frozenset[str]

    def accepts(self, accept: _AcceptHeader) -> bool:
        if accept.multipart and not self.multipart:
            return False
        if not accept.multipart and not self.single_part:
            return False
        if accept.media_type != self.media_type:
            return False
        return not accept.transfer_syntax or accept.transfer_syntax in self.transfer_syntaxes


_NON_FRAME_TS = frozenset({ORIGINAL_TS, EXPLICIT_VR_LITTLE_ENDIAN, JPEG_2000_LOSSLESS})
_FRAME_TS = frozenset({ORIGINAL_TS, EXPLICIT_VR_LITTLE_ENDIAN})


def _non_frame_descriptors(*, single_part: bool) -> tuple[_Descriptor, ...]:
    # Study/series: multipart only; instance: single part or multipart (azure-behaviour §3.2 table rows 1-4).
    return (
        _Descriptor(APPLICATION_DICOM, single_part, True, EXPLICIT_VR_LITTLE_ENDIAN, _NON_FRAME_TS),
        _Descriptor(ANY_MEDIA_TYPE, single_part, True, ORIGINAL_TS, _NON_FRAME_TS),
    )


_DESCRIPTORS: dict[RetrieveResource, tuple[_Descriptor, ...]] = {
    RetrieveResource.STUDY: _non_frame_descriptors(single_part=False),
    RetrieveResource.SERIES: _non_frame_descriptors(single_part=False),
    RetrieveResource.INSTANCE: _non_frame_descriptors(single_part=True),
    # Frames (azure-behaviour §3.2 table rows 5-7): octet-stream either way, image/jp2 multipart only, */* either way.
    RetrieveResource.FRAMES: (
        _Descriptor(APPLICATION_OCTET_STREAM, True, True, EXPLICIT_VR_LITTLE_ENDIAN, _FRAME_TS),
        _Descriptor(IMAGE_JP2, False, True, JPEG_2000_LOSSLESS, frozenset({JPEG_2000_LOSSLESS})),
        _Descriptor(ANY_MEDIA_TYPE, True, True, ORIGINAL_TS, _FRAME_TS),
    ),
}


@dataclass(frozen=True)
class _AcceptHeader:
    """A media range seen the way ``ToAcceptHeader`` sees it: multipart ranges use their ``type``."""

    media_type: str
    multipart: bool
    transfer_syntax: str  # as requested; "" when absent or empty
    q: float

    @classmethod
    def from_range(cls, media_range: MediaRange) -> _AcceptHeader:
        multipart = media_range.media_type == MULTIPART_RELATED
        # azure-behaviour §3.2: for multipart/related the (quoted or unquoted) `type` parameter is the payload type;
        # a multipart range without `type` has an empty media type and matches nothing.
        media_type = media_range.params.get("type", "").strip().lower() if multipart else media_range.media_type
        transfer_syntax = media_range.params.get("transfer-syntax", "").strip()
        return cls(media_type, multipart, transfer_syntax, media_range.q)


def negotiate_retrieve(accept: str | None, resource: RetrieveResource) -> RetrieveFormat:
    """Pick the response format for a study/series/instance/frames retrieve (azure-behaviour §3.2,
    ``AcceptHeaderHandler``).

    Ranges are stably sorted by ``q`` (descending). The first acceptable range wins, except that a later
    acceptable range of equal ``q`` that explicitly asks ``transfer-syntax=*`` replaces it (Azure prefers
    the original transfer syntax). ``*/*`` (bare or as multipart ``type``) answers multipart with
    ``application/dicom`` parts (``application/octet-stream`` for frames). As in Azure, ``q=0`` ranges are
    still considered (only ordered last). Nothing acceptable, or no header → 406.
    """
    headers = sorted(
        (_AcceptHeader.from_range(media_range) for media_range in parse_accept(accept)),
        key=lambda header: header.q,
        reverse=True,
    )
    descriptors = _DESCRIPTORS[resource]
    selected: RetrieveFormat | None = None
    selected_q = 0.0
    for header in headers:
        for descriptor in descriptors:
            if not descriptor.accepts(header):
                continue
            prefer = header.transfer_syntax == ORIGINAL_TS and header.q >= selected_q
            if selected is None or prefer:
                selected = _format_for(header, descriptor, resource)
                selected_q = header.q
    if selected is None:
        raise NotAcceptableError(NOT_ACCEPTABLE_MESSAGE)
    return selected


def _format_for(header: _AcceptHeader, descriptor: _Descriptor, resource: RetrieveResource) -> RetrieveFormat:
    transfer_syntax = header.transfer_syntax or descriptor.default_transfer_syntax
    if header.media_type == ANY_MEDIA_TYPE:
        # GetMediaTypesString / GetPayloadType: */* becomes the resource's default type, always multipart.
        media_type = APPLICATION_OCTET_STREAM if resource is RetrieveResource.FRAMES else APPLICATION_DICOM
        return RetrieveFormat(media_type, transfer_syntax, multipart=True)
    return RetrieveFormat(header.media_type, transfer_syntax, multipart=header.multipart)


# --- azure-behaviour §3.6 rendered -----------------------------------------------------------------------------------


def negotiate_rendered(accept: str | None) -> str:
    """Return ``image/jpeg`` or ``image/png`` for a rendered retrieve (azure-behaviour §3.6,
    ``GetValidRenderAcceptHeader``).

    No (parsable) range → ``image/jpeg``; more than one range → 406 (multiple accept headers); exactly one
    range → it must be ``image/jpeg`` or ``image/png`` (parameters and ``q`` ignored), else 406. As in
    Azure, a ``multipart/related`` range is judged by its ``type`` parameter.
    """
    ranges = parse_accept(accept)
    if not ranges:
        return IMAGE_JPEG
    if len(ranges) > 1:
        raise NotAcceptableError(MULTIPLE_ACCEPT_MESSAGE)
    media_type = _AcceptHeader.from_range(ranges[0]).media_type
    if media_type in (IMAGE_JPEG, IMAGE_PNG):
        return media_type
    raise NotAcceptableError(NOT_ACCEPTABLE_MESSAGE)


# --- azure-behaviour §2.2 STOW Content-Type --------------------------------------------------------------------------


@dataclass(frozen=True)
class StowContent:
    """How to read a STOW body: single ``application/dicom`` part, or multipart with this boundary.

    ``type_param`` is the multipart ``type`` parameter (unquoted), the default content type of the
    first part (RFC 2387 §3.1, ``AspNetCoreMultipartReader``).
    """

    multipart: bool
    boundary: str | None
    type_param: str | None


def parse_stow_content_type(content_type: str | None) -> StowContent:
    """Validate a STOW ``Content-Type`` (azure-behaviour §2.2).

    - ``application/dicom`` exactly (any case, no parameters) → single part; ``application/dicom`` with
      parameters → 415 (``DicomInstanceEntryReaderForSinglePartRequest``).
    - ``multipart/related`` needs a non-blank ``boundary`` (else 415 ``InvalidMultipartContentType``); a
      ``start`` parameter → 400; ``type`` is optional (the last one wins, as in ``AspNetCoreMultipartReader``).
    - Anything else, unparsable or absent → 415 ``The specified content type '…' is not supported.``
    """
    raw = content_type or ""
    parsed = _parse_media_type(raw) if raw.strip() else None
    if parsed is None:
        raise UnsupportedMediaTypeError(UNSUPPORTED_CONTENT_TYPE_MESSAGE.format(raw))
    media_type, params = parsed
    if media_type == APPLICATION_DICOM:
        if raw.strip().lower() != APPLICATION_DICOM:
            raise UnsupportedMediaTypeError(UNSUPPORTED_CONTENT_TYPE_MESSAGE.format(raw))
        return StowContent(multipart=False, boundary=None, type_param=None)
    if media_type != MULTIPART_RELATED:
        raise UnsupportedMediaTypeError(UNSUPPORTED_CONTENT_TYPE_MESSAGE.format(raw))
    boundary = next((value for name, value in params if name == "boundary"), "")
    if not boundary.strip():
        raise UnsupportedMediaTypeError(INVALID_MULTIPART_CONTENT_TYPE_MESSAGE.format(raw))
    type_param: str | None = None
    for name, value in params:
        if name == "type":
            type_param = value
        elif name == "start":
            # RFC 2387 §3.2 root selection is not supported by Azure.
            raise BadRequestError(START_PARAMETER_MESSAGE)
    return StowContent(multipart=True, boundary=boundary, type_param=type_param)
