"""Comparison forms of stored and queried values, shared by indexing and matching.

The ``normalize_*`` helpers are used both when an instance is indexed and when a query value is parsed, so
that storage can compare the two with plain equality / lexicographic ordering (azure-behaviour §4.4).
"""

from __future__ import annotations

import re
import unicodedata

from dicom_emulator.dicom.query.dotnet import format_dt, format_tm, parse_da, parse_dt, parse_tm, split_offset

_PN_WORD_SEPARATORS = re.compile(r"[\^=\s]+")


def normalize_string(value: str, vr: str) -> str:
    """Comparison form of a string value (azure-behaviour §4.4): trailing spaces and NULs are not significant, matching
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
    parsed = parse_da(value.rstrip(" \0"))
    return None if parsed is None else parsed.strftime("%Y%m%d")


def normalize_datetime(value: str) -> str | None:
    """A stored DT value as 'YYYYMMDDHHMMSS.ffffff', missing components completed with their minimum values, or
    ``None`` when invalid. A UTC offset suffix (&ZZXX) is applied, giving UTC (as Azure's indexing does on a
    UTC host)."""
    text = value.rstrip(" \0")
    parsed = parse_dt(text)
    if parsed is not None:
        return format_dt(parsed.low)
    with_offset = split_offset(text)
    if with_offset is None:
        return None
    try:
        return format_dt(with_offset[0].low - with_offset[1])
    except OverflowError:
        return None


def normalize_time(value: str) -> str | None:
    """A stored TM value as 'HHMMSS.ffffff', missing components completed with zeros, or ``None`` when invalid."""
    parsed = parse_tm(value.rstrip(" \0"))
    return None if parsed is None else format_tm(parsed.low)
