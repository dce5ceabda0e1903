"""QIDO-RS query-string parsing and the value normalization shared by indexing and matching.

Pure module: no database and no HTTP. :func:`parse_qido` turns the decoded query-string pairs of one
QIDO request into a :class:`ParsedQuery` of typed, already-normalized conditions, or raises
:class:`~dicom_emulator.errors.QueryValidationError` carrying Azure's exact message (reference §4.2-§4.4).
The ``normalize_*`` helpers are used both when an instance is indexed and when a query value is parsed,
so that storage can compare the two with plain equality / lexicographic ordering.

Where the reference is silent about a message or an order of checks, the archived microsoft/dicom-server
is the authority: ``Api/Extensions/QueryOptionsExtensions.cs`` (query-string to filters),
``Api/Models/QueryOptions.cs`` + ``PaginationOptions.cs`` + ``Features/Filters/QueryModelStateValidatorAttribute.cs``
(reserved parameters), ``Core/Features/Query/QueryParser.cs`` and ``BaseQueryParser.cs`` (filters and values),
``Core/Features/Common/DicomTagParser.cs`` (attribute ids), and the strings in ``DicomCoreResource.resx`` /
``DicomApiResource.resx``.

Checks run in Azure's order: reserved-parameter binding errors (model state) first, then repeated filter
keys, then each filter in query-string order, then the route-UID checks, then ``includefield``.

``loose=True`` enables two PS3.4 matching kinds Azure does not support (reference §4.4 "Not supported"):
wildcard matching (PS3.4 C.2.2.2.4) and list-of-UID matching (PS3.4 C.2.2.2.2).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydicom import datadict

from dicom_emulator.dicom.identifiers import is_valid_uid, uid_error_message
from dicom_emulator.dicom.tags import CORE_QUERY_TAGS, SERIES_INSTANCE_UID, STUDY_INSTANCE_UID, QueryResource, QueryTag
from dicom_emulator.errors import QueryValidationError

# ---------------------------------------------------------------------------------------------------------------
# Messages. Reference §4.2-§4.4 quotes the first words of most of them; the full text is Azure's resource string
# (DicomCoreResource.resx unless noted). Placeholders are filled exactly as Azure fills them.
# ---------------------------------------------------------------------------------------------------------------

# QueryModelStateValidatorAttribute + DicomCoreResource.InvalidQueryStringValue: "{parameter} {model-state error}".
MSG_INVALID_QUERY_STRING_VALUE = "The query parameter '{0}' is invalid. {1}"
# ASP.NET Core RangeAttribute default message (PaginationOptions: [Range(1, 200)] Limit, [Range(0, long.MaxValue)]
# Offset; the latter is the double overload, so the maximum prints as a double).
MSG_RANGE = "The field {0} must be between {1} and {2}."
_OFFSET_MAX_TEXT = "9.223372036854776E+18"
# ASP.NET Core model-binding defaults: AttemptedValueIsInvalid (conversion failed) and ValueMustNotBeNull (blank
# value for a non-nullable type). The attempted value is all values of the parameter joined with ','.
MSG_VALUE_NOT_VALID_FOR = "The value '{0}' is not valid for {1}."
MSG_VALUE_INVALID = "The value '{0}' is invalid."

MSG_DUPLICATE_ATTRIBUTE_ID = (  # DicomApiResource.DuplicateAttributeId: the same key sent twice
    "Invalid QIDO-RS query. Duplicate AttributeId '{0}'. Each attribute is only allowed to be specified once."
)
# .NET Dictionary.Add: two keys that differ only by surrounding whitespace collide after Trim() (an ArgumentException,
# which the service maps to 400 with its message; reference §1.4).
MSG_DUPLICATE_KEY = "An item with the same key has already been added. Key: {0}"
MSG_DUPLICATE_ATTRIBUTE = (  # keyword + hex of the same attribute
    "Invalid query: attribute '{0}' has been specified more than once using different ID formats. "
    "Each attribute is only allowed to be specified once."
)
MSG_UNKNOWN_QUERY_PARAMETER = (
    "Invalid query: unknown query parameter '{0}'. If the parameter is an attribute keyword, check the casing as "
    "they are case-sensitive. The conformance statement has a list of supported query parameters, attributes and "
    "the levels."
)
MSG_NOT_QUERYABLE = (  # DicomCoreResource.UnsupportedSearchParameter (note Azure's double space)
    "Invalid query: AttributeId {0} is not queryable.  If the parameter is an attribute keyword, check the casing "
    "as they are case-sensitive. The conformance statement has a list of supported query parameters, attributes "
    "and the levels."
)
MSG_QUERY_DISABLED = "Query is disabled on specified attribute '{0}'."
MSG_EMPTY_VALUE = "Invalid query: AttributeId '{0}' has empty string value that is not supported."
MSG_DISALLOWED_STUDY_UID = (  # trailing space is in Azure's string
    "Invalid query: cannot specify attribute 'StudyInstanceUID' for the given resource. "
)
MSG_DISALLOWED_SERIES_UID = "Invalid query: cannot specify attribute 'SeriesInstanceUID' for the given resource."
MSG_INCLUDE_ALL_WITH_OTHERS = "Invalid query: cannot specify included fields in addition to 'all'."
MSG_INCLUDE_FIELD_UNKNOWN = "Invalid query: IncludeField has unknown attribute '{0}'."
# ElementValidationException(SequenceDisallowed): DicomElementValidationFailed + SequentialDicomTagsNotSupported.
MSG_SEQUENCE_NOT_SUPPORTED = (
    "Dicom element '{0}' failed validation for VR 'SQ': Sequential dicom tags are currently not supported."
)
MSG_FUZZY_UNSUPPORTED_CHAR = (
    "Invalid query: specified tag '{0}' value '{1}' contains unsupported character '{2}'. Character is not "
    "supported with Fuzzy match, try exact match or removing the invalid character. "
)
MSG_INVALID_RANGE_VALUES = (
    "Invalid query: specified range is invalid.\n"
    "Both parts in the range cannot be empty.\n"
    "For details on valid range queries, please refer to Search Matching section in Conformance Statement "
    "(https://github.com/microsoft/dicom-server/blob/main/docs/resources/conformance-statement.md#search-matching)."
)
MSG_INVALID_DATE = (
    "Invalid query: specified Date value '{0}' is invalid for attribute '{1}'. "
    "Date should be valid and formatted as yyyyMMdd."
)
MSG_INVALID_DATE_RANGE = (
    "Invalid query: specified date range '{0}' is invalid.\n"
    "The first part date {1} should be lesser than or equal to the second part date {2}."
)
MSG_INVALID_DATETIME = (
    "Invalid query: specified DateTime value '{0}' is invalid for attribute '{1}'. "
    "DateTime should be valid and formatted as yyyyMMddHHmmss.FFFFFF where yyyy is mandatory."
)
MSG_DATETIME_WITH_OFFSET = (
    "Invalid query: specified DateTime value '{0}' for attribute {1} contains offset which is not supported."
)
MSG_INVALID_DATETIME_RANGE = (
    "Invalid query: specified date range '{0}' is invalid.\n"
    "The first part DateTime {1} should be lesser than or equal to the second part DateTime {2}."
)
MSG_INVALID_TIME = (
    "Invalid query: specified Time value '{0}' is invalid for parameter '{1}'. "
    "Time should be valid and formatted as HHmmss.FFFFFF where HH is mandatory."
)
MSG_INVALID_TIME_RANGE = (
    "Invalid query: specified date range '{0}' is invalid.\n"
    "The first part time {1} should be lesser than or equal to the second part time {2}."
)
MSG_INVALID_LONG = "Invalid query: specified value '{0}' extended query tag with path '{1}' is not a valid long value."
MSG_INVALID_DOUBLE = (
    "Invalid query: specified value '{0}' extended query tag with path '{1}' is not a valid double value."
)

# ---------------------------------------------------------------------------------------------------------------
# Public model
# ---------------------------------------------------------------------------------------------------------------

DEFAULT_LIMIT = 100  # QueryLimit.DefaultQueryResultCount (reference §4.2, §10.5)
MAX_LIMIT = 200  # QueryLimit.MaxQueryResultCount
INCLUDE_FIELD_ALL = "all"


@dataclass(frozen=True)
class SingleValue:
    """Exact match (PS3.4 C.2.2.2.1). Strings are normalized with :func:`normalize_string`; SL/SS/UL/US give an
    ``int`` and FL/FD a ``float``."""

    tag: QueryTag
    value: str | int | float


@dataclass(frozen=True)
class DateRange:
    """Inclusive range on DA ('YYYYMMDD'), DT ('YYYYMMDDHHMMSS.ffffff') or TM ('HHMMSS.ffffff') (PS3.4 C.2.2.2.5).

    ``None`` is an open end. Like Azure, both ends are completed with minimum values, so a stored value
    normalized with :func:`normalize_date` / :func:`normalize_datetime` / :func:`normalize_time` matches when
    ``low <= stored <= high`` as strings. A single (non-range) value matches exactly: DT '2020' is
    20200101000000.000000..20200101000000.000000 (Azure's DateTime equality), not the whole year.
    """

    tag: QueryTag
    low: str | None
    high: str | None


@dataclass(frozen=True)
class FuzzyName:
    """PN fuzzy match (``fuzzymatching=true``, reference §4.4): every word must be a prefix of some word of the
    stored name (see :func:`person_name_words`). Words are normalized and may contain any character except '"';
    an empty tuple (a value made only of separators, e.g. '^') matches nothing."""

    tag: QueryTag
    words: tuple[str, ...]


@dataclass(frozen=True)
class Wildcard:
    """Wildcard match (``loose`` only, PS3.4 C.2.2.2.4): '*' is any sequence of characters (also none), '?' any
    single character; every other character is literal. Normalized with :func:`normalize_string`; a pattern of
    only '*' is universal matching."""

    tag: QueryTag
    pattern: str


@dataclass(frozen=True)
class UidList:
    """List-of-UID match (``loose`` only, PS3.4 C.2.2.2.2): the stored UID equals any of ``uids``."""

    tag: QueryTag
    uids: tuple[str, ...]


Condition = SingleValue | DateRange | FuzzyName | Wildcard | UidList


@dataclass(frozen=True)
class ParsedQuery:
    """A validated QIDO request (reference §4.2-§4.4). Route UIDs are not part of ``conditions``."""

    resource: QueryResource
    conditions: tuple[Condition, ...]
    limit: int
    offset: int
    fuzzy: bool
    include_all: bool
    include_tags: tuple[int, ...]
    filter_keys: dict[int, str]


# ---------------------------------------------------------------------------------------------------------------
# Normalization (used at index time and at query time)
# ---------------------------------------------------------------------------------------------------------------

_PN_WORD_SEPARATORS = re.compile(r"[\^=\s]+")


def normalize_string(value: str, vr: str) -> str:
    """Comparison form of a string value (reference §4.4): trailing spaces and NULs are not significant, matching
    is case-insensitive, and for PN also accent-insensitive (NFKD, combining marks dropped)."""
    text = value.rstrip(" \0")
    if vr == "PN":
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.upper()


def person_name_words(value: str) -> tuple[str, ...]:
    """Normalized words of a PN for fuzzy matching: split on component ('^') and group ('=') separators and on
    whitespace (PS3.5 6.2.1), empty words dropped."""
    return tuple(w for w in _PN_WORD_SEPARATORS.split(normalize_string(value, "PN")) if w)


def normalize_date(value: str) -> str | None:
    """A stored DA value as 'YYYYMMDD' (PS3.5 Table 6.2-1), or ``None`` when it is not a valid date."""
    parsed = _parse_da(value.rstrip(" \0"))
    return None if parsed is None else parsed.strftime("%Y%m%d")


def normalize_datetime(value: str) -> str | None:
    """A stored DT value as 'YYYYMMDDHHMMSS.ffffff', missing components completed with their minimum values, or
    ``None`` when invalid. A UTC offset suffix (&ZZXX) is applied, giving UTC (as Azure's indexing does on a
    UTC host)."""
    text = value.rstrip(" \0")
    parsed = _parse_dt(text)
    if parsed is not None:
        return _format_dt(parsed.low)
    with_offset = _split_offset(text)
    if with_offset is None:
        return None
    try:
        return _format_dt(with_offset[0].low - with_offset[1])
    except OverflowError:
        return None


def normalize_time(value: str) -> str | None:
    """A stored TM value as 'HHMMSS.ffffff', missing components completed with zeros, or ``None`` when invalid."""
    parsed = _parse_tm_single(value.rstrip(" \0"))
    return None if parsed is None else _format_tm(parsed.low)


# ---------------------------------------------------------------------------------------------------------------
# Attribute ids (DicomTagParser): keyword (case-sensitive, public dictionary only) or 8 hex digits
# ---------------------------------------------------------------------------------------------------------------


def _build_keywords() -> dict[str, int]:
    keywords = {kw: tag for kw, tag in datadict.keyword_dict.items() if kw}
    # Repeating-group entries (e.g. OverlayData 60xx,3000) resolve to their first group, as fo-dicom's dictionary.
    for mask, entry in datadict.RepeatersDictionary.items():
        keyword = entry[4]
        if keyword and keyword not in keywords:
            keywords[keyword] = int(mask.replace("x", "0"), 16)
    return keywords


_KEYWORDS = _build_keywords()
_HEX_HALF_RE = re.compile(r"^\s*[0-9A-Fa-f]{1,4}\s*$")


def _is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


def _dictionary_entry(tag: int) -> tuple[str, ...] | None:
    try:
        return tuple(datadict.get_entry(tag))
    except KeyError:
        return None


def _parse_attribute_id(text: str) -> int | None:
    """Tag for a keyword or 'ggggeeee' (hex case-insensitive), or ``None`` when unknown. A dotted path raises the
    sequence error whatever its parts are (DicomTagParser.TryParse without multiple-tag support)."""
    if not text.strip():
        return None
    if "." in text:
        raise QueryValidationError(MSG_SEQUENCE_NOT_SUPPORTED.format(text))
    tag = _KEYWORDS.get(text)
    if tag is not None:
        return tag
    # ushort.TryParse(HexNumber) on each half of an 8-character string (surrounding whitespace tolerated).
    if len(text) != 8 or not (_HEX_HALF_RE.match(text[:4]) and _HEX_HALF_RE.match(text[4:])):
        return None
    tag = (int(text[:4].strip(), 16) << 16) | int(text[4:].strip(), 16)
    # Private tags (odd group) are always accepted; public ones must be in the dictionary.
    if _is_private(tag) or _dictionary_entry(tag) is not None:
        return tag
    return None


def _tag_name(query_tag: QueryTag) -> str:
    """QueryTag.GetName(): the dictionary keyword, or the 8-hex path for tags the dictionary does not know."""
    entry = None if _is_private(query_tag.tag) else _dictionary_entry(query_tag.tag)
    if entry is not None and len(entry) > 4 and entry[4]:
        return entry[4]
    return query_tag.hex


# ---------------------------------------------------------------------------------------------------------------
# .NET-compatible primitives
# ---------------------------------------------------------------------------------------------------------------

_DOTNET_WHITESPACE = frozenset("\t\n\x0b\x0c\r\x85")


def _is_dotnet_space(c: str) -> bool:
    return c in _DOTNET_WHITESPACE or unicodedata.category(c) in ("Zs", "Zl", "Zp")


def _trim(text: str) -> str:
    """String.Trim(): strip .NET white space from both ends."""
    start, end = 0, len(text)
    while start < end and _is_dotnet_space(text[start]):
        start += 1
    while end > start and _is_dotnet_space(text[end - 1]):
        end -= 1
    return text[start:end]


def _fold_key(key: str) -> str:
    """StringComparer.OrdinalIgnoreCase key: per-character upper-case."""
    return "".join(u if len(u := c.upper()) == 1 else c for c in key)


_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!*()")


def _url_encode(text: str) -> str:
    """WebUtility.UrlEncode: space to '+', unreserved kept, the rest %XX (upper-case hex of UTF-8)."""
    out: list[str] = []
    for c in text:
        if c in _URL_SAFE:
            out.append(c)
        elif c == " ":
            out.append("+")
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
    return "".join(out)


_INTEGER_RE = re.compile(r"^\s*([+-]?)([0-9]+)\s*$")
_HEX_RE = re.compile(r"^(?:0[xX])?([0-9A-Fa-f]+)$")


def _parse_integer(text: str, bits: int) -> int | None:
    """Int32/Int64.Parse with NumberStyles.Integer (ASCII digits, optional sign, surrounding white space)."""
    match = _INTEGER_RE.match(text)
    if match is None:
        return None
    value = int(match.group(2)) * (-1 if match.group(1) == "-" else 1)
    return value if -(1 << (bits - 1)) <= value < (1 << (bits - 1)) else None


def _convert_integer(text: str, bits: int) -> int | None:
    """Int32Converter/Int64Converter.ConvertFrom (model binding): trimmed; '#', '0x' or '&h' prefix means hex
    read as the two's-complement bit pattern."""
    text = _trim(text)
    hex_digits: str | None = None
    if text.startswith("#"):
        hex_digits = text[1:]
    elif text[:2].lower() in ("0x", "&h"):
        hex_digits = text[2:]
    if hex_digits is None:
        return _parse_integer(text, bits)
    match = _HEX_RE.match(hex_digits)
    if match is None:
        return None
    value = int(match.group(1), 16)
    if value >= 1 << bits:
        return None
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _convert_bool(text: str) -> bool | None:
    """Boolean.TryParse: 'true'/'false' in any case, surrounding white space and NULs ignored."""
    folded = _trim(text.strip("\0")).strip("\0").lower()
    return {"true": True, "false": False}.get(folded)


_DOUBLE_RE = re.compile(r"^([+-]?)((?:[0-9][0-9,]*)?(?:\.[0-9]*)?)(?:[eE]([+-]?[0-9]+))?$")
_DOUBLE_SPECIALS = {"nan": float("nan"), "infinity": float("inf"), "∞": float("inf")}


def _parse_double(text: str) -> float | None:
    """Double.TryParse (NumberStyles.Float | AllowThousands, invariant symbols): ASCII digits, optional sign,
    ',' group separators in the integral part, '.' decimal point, exponent, 'NaN'/'Infinity'."""
    text = _trim(text)
    special = text.lstrip("+-").lower()
    if special in _DOUBLE_SPECIALS:
        value = _DOUBLE_SPECIALS[special]
        return -value if text.startswith("-") else value
    match = _DOUBLE_RE.match(text)
    if match is None or not any(c.isdigit() for c in match.group(2)):
        return None
    mantissa = match.group(2).replace(",", "")
    exponent = match.group(3) or "0"
    return float(f"{match.group(1)}{mantissa or '0'}e{exponent}")


# ---------------------------------------------------------------------------------------------------------------
# Date / time parsing (PS3.5 Table 6.2-1; Azure's .NET formats in BaseQueryParser and fo-dicom's DicomTime)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Instant:
    """A parsed DT/TM: the value completed with minimum values and with maximum values of its precision."""

    low: datetime
    high: datetime


_DA_RE = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})$")
# yyyy[MM[dd[HH[mm[ss[.FFFFFF]]]]]]; a '.' with no digit is tolerated like .NET's optional 'F' fraction.
_DT_BODY = r"([0-9]{4})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:\.([0-9]{0,6}))?)?)?)?)?)?"
_DT_RE = re.compile(f"^{_DT_BODY}$")
_DT_WITH_OFFSET_RE = re.compile(r"^(?P<dt>[0-9.]+)(?P<sign>[+-])(?P<offset>.*)$")
# fo-dicom 5 DicomTime formats: HH, HHmm, HHmmss, HHmmss[.]f{1,6}, HH.mm[.ss[.f{1,6}]], HH:mm[:ss[(:|.)f{1,6}]].
_TM_RES = (
    re.compile(r"^([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:\.?([0-9]{1,6}))?)?)?$"),
    re.compile(r"^([0-9]{2})\.([0-9]{2})(?:\.([0-9]{2})(?:\.([0-9]{1,6}))?)?$"),
    re.compile(r"^([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[:.]([0-9]{1,6}))?)?$"),
)


def _parse_da(text: str) -> date | None:
    match = _DA_RE.match(text)
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _split_offset(text: str) -> tuple[_Instant, timedelta] | None:
    """A DT followed by a UTC offset, parsed like .NET 'zzz': sign, then 1-2 hour digits taken greedily, an
    optional ':', then exactly 2 minute digits (< 60). Returns the DT and the signed offset."""
    match = _DT_WITH_OFFSET_RE.match(text)
    if match is None:
        return None
    parsed = _parse_dt(match.group("dt"))
    rest = match.group("offset")
    hours = re.match(r"[0-9]{1,2}", rest)
    if parsed is None or hours is None:
        return None
    rest = rest[hours.end() :]
    rest = rest[1:] if rest.startswith(":") else rest
    if re.fullmatch(r"[0-9]{2}", rest) is None or int(rest) >= 60:
        return None
    offset = timedelta(hours=int(hours.group()), minutes=int(rest))
    return parsed, (offset if match.group("sign") == "+" else -offset)


def _fraction_bounds(digits: str | None) -> tuple[int, int]:
    """Microseconds completed with zeros and with nines for a fraction of ``digits`` precision."""
    if digits is None or digits == "":
        return 0, 999_999
    return int(digits.ljust(6, "0")), int(digits.ljust(6, "9"))


def _parse_dt(text: str) -> _Instant | None:
    match = _DT_RE.match(text)
    if match is None:
        return None
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction_s = match.groups()
    try:
        year = int(year_s)
        month = int(month_s) if month_s else 1
        day = int(day_s) if day_s else 1
        hour = int(hour_s) if hour_s else 0
        minute = int(minute_s) if minute_s else 0
        second = int(second_s) if second_s else 0
        micro_low, micro_high = _fraction_bounds(fraction_s)
        low = datetime(year, month, day, hour, minute, second, micro_low)
        high = datetime(
            year,
            month if month_s else 12,
            day if day_s else calendar.monthrange(year, month if month_s else 12)[1],
            hour if hour_s else 23,
            minute if minute_s else 59,
            second if second_s else 59,
            micro_high,
        )
    except ValueError:
        return None
    return _Instant(low, high)


def _parse_tm_single(text: str) -> _Instant | None:
    for pattern in _TM_RES:
        match = pattern.match(text)
        if match is not None:
            break
    else:
        return None
    hour_s, minute_s, second_s, fraction_s = match.groups()
    hour = int(hour_s)
    minute = int(minute_s) if minute_s else 0
    second = int(second_s) if second_s else 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    micro_low, micro_high = _fraction_bounds(fraction_s)
    low = datetime(1, 1, 1, hour, minute, second, micro_low)
    high = datetime(
        1,
        1,
        1,
        hour,
        minute if minute_s else 59,
        second if second_s else 59,
        micro_high,
    )
    return _Instant(low, high)


def _format_dt(value: datetime) -> str:
    return f"{value.year:04d}{value:%m%d%H%M%S}.{value.microsecond:06d}"


def _format_tm(value: datetime) -> str:
    return f"{value:%H%M%S}.{value.microsecond:06d}"


# ---------------------------------------------------------------------------------------------------------------
# Value parsers per VR (BaseQueryParser.ValueParsers)
# ---------------------------------------------------------------------------------------------------------------

_RANGE_VRS = frozenset({"DA", "DT", "TM"})  # QueryLimit.ValidRangeQueryTags
# Azure's string VRs, plus the other text VRs (never reachable through Azure-valid extended query tags).
_STRING_VRS = frozenset({"UI", "LO", "SH", "PN", "CS", "AE", "AS", "DS", "IS", "LT", "ST", "UT", "UC", "UR"})
_LONG_VRS = frozenset({"SL", "SS", "UL", "US"})
_DOUBLE_VRS = frozenset({"FL", "FD"})
# PS3.4 C.2.2.2.4: wildcards apply to every VR except dates/times, binary numbers, OB/OW/UN, AT, DS, IS, AS and UI.
_WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_FUZZY_UNSUPPORTED_CHAR = '"'


def _split_range(value: str) -> tuple[str, str] | None:
    """PS3.4 C.2.2.2.5 range 'a-b' / 'a-' / '-b': exactly one '-' (String.Split('-').Length == 2), parts trimmed."""
    parts = value.split("-")
    if len(parts) != 2:
        return None
    low, high = _trim(parts[0]), _trim(parts[1])
    if not low and not high:
        raise QueryValidationError(MSG_INVALID_RANGE_VALUES)
    return low, high


def _parse_date_value(query_tag: QueryTag, value: str) -> DateRange:
    name = _tag_name(query_tag)

    def parse(text: str) -> date:
        parsed = _parse_da(text)
        if parsed is None:
            raise QueryValidationError(MSG_INVALID_DATE.format(text, name))
        return parsed

    bounds = _split_range(value)
    if bounds is None:
        single = parse(value).strftime("%Y%m%d")
        return DateRange(query_tag, single, single)
    low = parse(bounds[0]) if bounds[0] else None
    high = parse(bounds[1]) if bounds[1] else None
    if low is not None and high is not None and low > high:
        raise QueryValidationError(MSG_INVALID_DATE_RANGE.format(value, bounds[0], bounds[1]))
    return DateRange(
        query_tag,
        None if low is None else low.strftime("%Y%m%d"),
        None if high is None else high.strftime("%Y%m%d"),
    )


def _parse_datetime_query(text: str, name: str) -> _Instant:
    """BaseQueryParser.ParseDateTime: on failure the message shows the URL-encoded value, and says 'offset' when
    the encoded value parses with a UTC offset (a '+' arrives as a space and is encoded back to '+')."""
    parsed = _parse_dt(text)
    if parsed is not None:
        return parsed
    encoded = _url_encode(text)
    if _split_offset(encoded) is not None:
        raise QueryValidationError(MSG_DATETIME_WITH_OFFSET.format(encoded, name))
    raise QueryValidationError(MSG_INVALID_DATETIME.format(encoded, name))


def _parse_instant_value(
    query_tag: QueryTag,
    value: str,
    parse: Callable[[str, str], _Instant],
    fmt: Callable[[datetime], str],
    range_message: str,
) -> DateRange:
    """A DT or TM query value as Azure reads it: every value is one instant with missing parts at their
    minimum (DateTime / TimeSpan). A single value matches exactly (DT '2020' finds a stored '2020' or
    '20200101000000', not '20200601'), and a range ends at its upper value's first instant ('2019-2020'
    stops at 2020-01-01T00:00); '2020-2020' is valid and '202006-2020' is not."""
    name = _tag_name(query_tag)
    bounds = _split_range(value)
    if bounds is None:
        single = fmt(parse(value, name).low)
        return DateRange(query_tag, single, single)
    low = parse(bounds[0], name) if bounds[0] else None
    high = parse(bounds[1], name) if bounds[1] else None
    if low is not None and high is not None and low.low > high.low:
        raise QueryValidationError(range_message.format(value, bounds[0], bounds[1]))
    return DateRange(query_tag, None if low is None else fmt(low.low), None if high is None else fmt(high.low))


def _parse_datetime_value(query_tag: QueryTag, value: str) -> DateRange:
    return _parse_instant_value(query_tag, value, _parse_datetime_query, _format_dt, MSG_INVALID_DATETIME_RANGE)


def _parse_time_query(text: str, name: str) -> _Instant:
    """BaseQueryParser.ParseTime via fo-dicom DicomTime: a backslash makes several values, all of which must be
    valid; the first is used."""
    parsed = [_parse_tm_single(part) for part in text.split("\\")]
    if any(p is None for p in parsed):
        raise QueryValidationError(MSG_INVALID_TIME.format(text, name))
    first = parsed[0]
    assert first is not None
    return first


def _parse_time_value(query_tag: QueryTag, value: str) -> DateRange:
    return _parse_instant_value(query_tag, value, _parse_time_query, _format_tm, MSG_INVALID_TIME_RANGE)


def dimse_datetime_range(query_tag: QueryTag, value: str) -> DateRange:
    """A DIMSE (C-FIND) DA/DT value or range: PS3.4 C.2.2.2.5 matches a value over its whole unit, so
    '20240116' is the whole day and '2024-2025' ends on 2025-12-31, unlike Azure's QIDO parser above."""
    name = _tag_name(query_tag)
    bounds = _split_range(value) or (value, value)
    low = _parse_datetime_query(bounds[0], name) if bounds[0] else None
    high = _parse_datetime_query(bounds[1], name) if bounds[1] else None
    if low is not None and high is not None and low.low > high.high:
        raise QueryValidationError(MSG_INVALID_DATETIME_RANGE.format(value, bounds[0], bounds[1]))
    return DateRange(
        query_tag,
        None if low is None else _format_dt(low.low),
        None if high is None else _format_dt(high.high),
    )


def _parse_uid_list(query_tag: QueryTag, value: str) -> UidList:
    """PS3.4 C.2.2.2.2 (PS3.18 8.3.4.1 also allows ','): every item must be a valid UID."""
    uids: list[str] = []
    for item in re.split(r"[,\\]", value):
        uid = _trim(item)
        if not is_valid_uid(uid):
            raise QueryValidationError(uid_error_message(_tag_name(query_tag)))
        uids.append(normalize_string(uid, "UI"))
    return UidList(query_tag, tuple(dict.fromkeys(uids)))


def _parse_string_value(query_tag: QueryTag, value: str, fuzzy: bool, loose: bool) -> Condition:
    vr = query_tag.vr
    if loose:
        if vr == "UI" and ("," in value or "\\" in value):
            return _parse_uid_list(query_tag, value)
        if vr in _WILDCARD_VRS and ("*" in value or "?" in value):
            return Wildcard(query_tag, normalize_string(value, vr))
    if fuzzy and vr == "PN":  # QueryLimit.IsValidFuzzyMatchingQueryTag
        if _FUZZY_UNSUPPORTED_CHAR in value:
            raise QueryValidationError(
                MSG_FUZZY_UNSUPPORTED_CHAR.format(_tag_name(query_tag), value, _FUZZY_UNSUPPORTED_CHAR)
            )
        return FuzzyName(query_tag, person_name_words(value))
    return SingleValue(query_tag, normalize_string(value, vr))


def _parse_value(query_tag: QueryTag, value: str, fuzzy: bool, loose: bool) -> Condition | None:
    """The condition for ``value`` (already trimmed and non-empty), or ``None`` when the VR has no parser."""
    vr = query_tag.vr
    if vr == "DA":
        return _parse_date_value(query_tag, value)
    if vr == "DT":
        return _parse_datetime_value(query_tag, value)
    if vr == "TM":
        return _parse_time_value(query_tag, value)
    if vr in _STRING_VRS:
        return _parse_string_value(query_tag, value, fuzzy, loose)
    if vr in _LONG_VRS:
        number = _parse_integer(value, 64)
        if number is None:
            raise QueryValidationError(MSG_INVALID_LONG.format(value, _tag_name(query_tag)))
        return SingleValue(query_tag, number)
    if vr in _DOUBLE_VRS:
        real = _parse_double(value)
        if real is None:
            raise QueryValidationError(MSG_INVALID_DOUBLE.format(value, _tag_name(query_tag)))
        return SingleValue(query_tag, real)
    return None


# ---------------------------------------------------------------------------------------------------------------
# Reserved parameters (QueryOptions model binding + validation)
# ---------------------------------------------------------------------------------------------------------------

_RESERVED = {"FUZZYMATCHING": "FuzzyMatching", "INCLUDEFIELD": "IncludeField", "LIMIT": "Limit", "OFFSET": "Offset"}


def _bind(
    name: str,
    values: list[str] | None,
    convert: Callable[[str], object | None],
    errors: dict[str, str],
) -> object | None:
    """ASP.NET Core simple-type binding of the first value; records the model-state error under ``name``."""
    if values is None:
        return None
    attempted = ",".join(values)
    first = values[0]
    if not _trim(first):
        errors[name] = MSG_VALUE_INVALID.format(attempted)
        return None
    result = convert(first)
    if result is None:
        errors[name] = MSG_VALUE_NOT_VALID_FOR.format(attempted, name)
    return result


def _group_parameters(params: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Request.Query: keys grouped case-insensitively, first spelling kept, in order of first appearance."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for key, value in params:
        folded = _fold_key(key)
        if folded not in groups:
            groups[folded] = (key, [])
        groups[folded][1].append(value)
    return list(groups.values())


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def parse_qido(
    params: Sequence[tuple[str, str]],
    resource: QueryResource,
    *,
    loose: bool = False,
    extended_tags: Sequence[QueryTag] = (),
    disabled_extended_tags: Collection[int] = (),
    route_has_study: bool = False,
    route_has_series: bool = False,
) -> ParsedQuery:
    """Validate the decoded query-string pairs of a QIDO request to ``resource`` (reference §4.2-§4.4).

    ``extended_tags`` are the *ready* extended query tags (reference §7.5); ``disabled_extended_tags`` holds the
    tags among them whose query status is disabled. Raises :class:`QueryValidationError` with Azure's message.
    """
    groups = _group_parameters(params)

    # 1. Reserved parameters (names case-insensitive, reference §4.2). All are bound and validated, then the first
    #    model-state error in key order (FuzzyMatching, Limit, Offset) is reported.
    reserved: dict[str, list[str]] = {}
    filters: list[tuple[str, list[str]]] = []
    for key, values in groups:
        attribute_id = _trim(key)
        canonical = _RESERVED.get(_fold_key(attribute_id))
        if canonical is None:
            filters.append((attribute_id, values))
        else:
            reserved.setdefault(canonical, []).extend(values)

    errors: dict[str, str] = {}
    fuzzy_value = _bind("FuzzyMatching", reserved.get("FuzzyMatching"), _convert_bool, errors)
    limit_value = _bind("Limit", reserved.get("Limit"), lambda s: _convert_integer(s, 32), errors)
    offset_value = _bind("Offset", reserved.get("Offset"), lambda s: _convert_integer(s, 64), errors)
    if isinstance(limit_value, int) and not 1 <= limit_value <= MAX_LIMIT:
        errors["Limit"] = MSG_RANGE.format("Limit", 1, MAX_LIMIT)
    if isinstance(offset_value, int) and offset_value < 0:
        errors["Offset"] = MSG_RANGE.format("Offset", 0, _OFFSET_MAX_TEXT)
    for name in ("FuzzyMatching", "Limit", "Offset"):
        if name in errors:
            raise QueryValidationError(MSG_INVALID_QUERY_STRING_VALUE.format(name, errors[name]))
    fuzzy = bool(fuzzy_value)
    limit = limit_value if isinstance(limit_value, int) else DEFAULT_LIMIT
    offset = offset_value if isinstance(offset_value, int) else 0

    # 2. Filters: a key sent twice is rejected before any value is parsed (QueryOptionsExtensions).
    filter_values: dict[str, str] = {}
    for attribute_id, values in filters:
        if len(values) > 1:
            raise QueryValidationError(MSG_DUPLICATE_ATTRIBUTE_ID.format(attribute_id))
        if attribute_id in filter_values:
            raise QueryValidationError(MSG_DUPLICATE_KEY.format(attribute_id))
        filter_values[attribute_id] = _trim(values[0])

    # 3. Each filter in order (QueryParser.ParseFilterCondition). Only tags of the levels this resource filters on
    #    are candidates (reference §4.3); core tags win over extended ones.
    levels = resource.filter_levels
    candidates: dict[int, QueryTag] = {}
    for query_tag in (*CORE_QUERY_TAGS, *extended_tags):
        if query_tag.level in levels:
            candidates.setdefault(query_tag.tag, query_tag)
    extended_ids = {t.tag for t in extended_tags} - {t.tag for t in CORE_QUERY_TAGS}
    disabled = set(disabled_extended_tags) & extended_ids

    conditions: dict[int, Condition] = {}
    filter_keys: dict[int, str] = {}
    for attribute_id, value in filter_values.items():
        tag = _parse_attribute_id(attribute_id)
        if tag is None:
            raise QueryValidationError(MSG_UNKNOWN_QUERY_PARAMETER.format(attribute_id))
        query_tag = candidates.get(tag)
        if query_tag is None:
            raise QueryValidationError(MSG_NOT_QUERYABLE.format(attribute_id))
        if tag in disabled:
            raise QueryValidationError(MSG_QUERY_DISABLED.format(attribute_id))
        if not value:
            raise QueryValidationError(MSG_EMPTY_VALUE.format(attribute_id))
        condition = _parse_value(query_tag, value, fuzzy, loose)
        if condition is None:
            raise QueryValidationError(MSG_UNKNOWN_QUERY_PARAMETER.format(attribute_id))
        if tag in conditions:
            raise QueryValidationError(MSG_DUPLICATE_ATTRIBUTE.format(attribute_id))
        conditions[tag] = condition
        filter_keys[tag] = attribute_id

    # 4. Route UIDs are added as filters after the query ones (QueryParser.AddInstanceUidFilter/AddSeriesUidFilter).
    #    With the levels of §4.3 a UID already in the route is rejected as "not queryable" above; this is the
    #    remaining guard.
    if route_has_study and STUDY_INSTANCE_UID in conditions:
        raise QueryValidationError(MSG_DISALLOWED_STUDY_UID)
    if route_has_series and SERIES_INSTANCE_UID in conditions:
        raise QueryValidationError(MSG_DISALLOWED_SERIES_UID)

    # 5. includefield: comma-separated and/or repeated (AggregateCsvModelBinder, entries trimmed).
    fields = [_trim(part) for value in reserved.get("IncludeField", []) for part in value.split(",")]
    include_all = False
    include_tags: list[int] = []
    if any(f.lower() == INCLUDE_FIELD_ALL for f in fields):
        if len(fields) > 1:
            raise QueryValidationError(MSG_INCLUDE_ALL_WITH_OTHERS)
        include_all = True
    else:
        for field in fields:
            tag = _parse_attribute_id(field)
            if tag is None:
                raise QueryValidationError(MSG_INCLUDE_FIELD_UNKNOWN.format(field))
            if tag not in include_tags:
                include_tags.append(tag)

    return ParsedQuery(
        resource=resource,
        conditions=tuple(conditions.values()),
        limit=limit,
        offset=offset,
        fuzzy=fuzzy,
        include_all=include_all,
        include_tags=tuple(include_tags),
        filter_keys=filter_keys,
    )
