"""Value parsers per VR (``BaseQueryParser.ValueParsers``): one filter value to one condition.

Shared by QIDO (:mod:`.qido`), UPS-RS search (``dicom.ups``) and DIMSE C-FIND (``dicom.matching``). ``loose``
enables two PS3.4 matching kinds Azure does not support (azure-behaviour §4.4 "Not supported"): wildcard matching
(PS3.4 C.2.2.2.4) and list-of-UID matching (PS3.4 C.2.2.2.2). DIMSE date ranges, which cover each value's whole
unit, have their own parser, :func:`dimse_datetime_range`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime

from dicom_emulator.dicom.identifiers import is_valid_uid, uid_error_message
from dicom_emulator.dicom.query.attributes import tag_name
from dicom_emulator.dicom.query.conditions import Condition, DateRange, FuzzyName, SingleValue, UidList, Wildcard
from dicom_emulator.dicom.query.dotnet import (
    Instant,
    format_dt,
    format_tm,
    parse_da,
    parse_double,
    parse_dt,
    parse_integer,
    parse_tm,
    split_offset,
    trim,
    url_encode,
)
from dicom_emulator.dicom.query.messages import (
    MSG_DATETIME_WITH_OFFSET,
    MSG_FUZZY_UNSUPPORTED_CHAR,
    MSG_INVALID_DATE,
    MSG_INVALID_DATE_RANGE,
    MSG_INVALID_DATETIME,
    MSG_INVALID_DATETIME_RANGE,
    MSG_INVALID_DOUBLE,
    MSG_INVALID_LONG,
    MSG_INVALID_RANGE_VALUES,
    MSG_INVALID_TIME,
    MSG_INVALID_TIME_RANGE,
)
from dicom_emulator.dicom.query.normalize import normalize_string, person_name_words
from dicom_emulator.dicom.tags import QueryTag
from dicom_emulator.errors import QueryValidationError

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
    low, high = trim(parts[0]), trim(parts[1])
    if not low and not high:
        raise QueryValidationError(MSG_INVALID_RANGE_VALUES)
    return low, high


def _parse_date_value(query_tag: QueryTag, value: str) -> DateRange:
    name = tag_name(query_tag)

    def parse(text: str) -> date:
        parsed = parse_da(text)
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


def _parse_datetime_query(text: str, name: str) -> Instant:
    """BaseQueryParser.ParseDateTime: on failure the message shows the URL-encoded value, and says 'offset' when
    the encoded value parses with a UTC offset (a '+' arrives as a space and is encoded back to '+')."""
    parsed = parse_dt(text)
    if parsed is not None:
        return parsed
    encoded = url_encode(text)
    if split_offset(encoded) is not None:
        raise QueryValidationError(MSG_DATETIME_WITH_OFFSET.format(encoded, name))
    raise QueryValidationError(MSG_INVALID_DATETIME.format(encoded, name))


def _parse_instant_value(
    query_tag: QueryTag,
    value: str,
    parse: Callable[[str, str], Instant],
    fmt: Callable[[datetime], str],
    range_message: str,
) -> DateRange:
    """A DT or TM query value as Azure reads it: every value is one instant with missing parts at their
    minimum (DateTime / TimeSpan). A single value matches exactly (DT '2020' finds a stored '2020' or
    '20200101000000', not '20200601'), and a range ends at its upper value's first instant ('2019-2020'
    stops at 2020-01-01T00:00); '2020-2020' is valid and '202006-2020' is not."""
    name = tag_name(query_tag)
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
    return _parse_instant_value(query_tag, value, _parse_datetime_query, format_dt, MSG_INVALID_DATETIME_RANGE)


def _parse_time_query(text: str, name: str) -> Instant:
    """BaseQueryParser.ParseTime via fo-dicom DicomTime: a backslash makes several values, all of which must be
    valid; the first is used."""
    parsed = [parse_tm(part) for part in text.split("\\")]
    if any(p is None for p in parsed):
        raise QueryValidationError(MSG_INVALID_TIME.format(text, name))
    first = parsed[0]
    assert first is not None
    return first


def _parse_time_value(query_tag: QueryTag, value: str) -> DateRange:
    return _parse_instant_value(query_tag, value, _parse_time_query, format_tm, MSG_INVALID_TIME_RANGE)


def dimse_datetime_range(query_tag: QueryTag, value: str) -> DateRange:
    """A DIMSE (C-FIND) DA/DT value or range: PS3.4 C.2.2.2.5 matches a value over its whole unit, so
    '20240116' is the whole day and '2024-2025' ends on 2025-12-31, unlike Azure's QIDO parser above."""
    name = tag_name(query_tag)
    bounds = _split_range(value) or (value, value)
    low = _parse_datetime_query(bounds[0], name) if bounds[0] else None
    high = _parse_datetime_query(bounds[1], name) if bounds[1] else None
    if low is not None and high is not None and low.low > high.high:
        raise QueryValidationError(MSG_INVALID_DATETIME_RANGE.format(value, bounds[0], bounds[1]))
    return DateRange(
        query_tag,
        None if low is None else format_dt(low.low),
        None if high is None else format_dt(high.high),
    )


def _parse_uid_list(query_tag: QueryTag, value: str) -> UidList:
    """PS3.4 C.2.2.2.2 (PS3.18 8.3.4.1 also allows ','): every item must be a valid UID."""
    uids: list[str] = []
    for item in re.split(r"[,\\]", value):
        uid = trim(item)
        if not is_valid_uid(uid):
            raise QueryValidationError(uid_error_message(tag_name(query_tag)))
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
                MSG_FUZZY_UNSUPPORTED_CHAR.format(tag_name(query_tag), value, _FUZZY_UNSUPPORTED_CHAR)
            )
        return FuzzyName(query_tag, person_name_words(value))
    return SingleValue(query_tag, normalize_string(value, vr))


def parse_value(query_tag: QueryTag, value: str, fuzzy: bool, loose: bool) -> Condition | None:
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
        number = parse_integer(value, 64)
        if number is None:
            raise QueryValidationError(MSG_INVALID_LONG.format(value, tag_name(query_tag)))
        return SingleValue(query_tag, number)
    if vr in _DOUBLE_VRS:
        real = parse_double(value)
        if real is None:
            raise QueryValidationError(MSG_INVALID_DOUBLE.format(value, tag_name(query_tag)))
        return SingleValue(query_tag, real)
    return None
