""".NET-compatible parsing primitives: how Azure's C# code reads strings, numbers, dates and times.

Azure binds query strings with ASP.NET Core and parses values with .NET's ``String.Trim``, ``Int32/Int64``
converters, ``Double.TryParse``, ``DateTime`` formats (``BaseQueryParser``) and fo-dicom's ``DicomTime``. The
functions here reproduce those behaviours (white space set, hex prefixes, group separators, 'zzz' offsets...) so
the emulator accepts and rejects exactly the values Azure does. Pure module: standard library only.

Dates and times parse to an :class:`Instant`: the value completed with minimum values (``low``) and with the
maximum values of its precision (``high``), PS3.5 Table 6.2-1.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_DOTNET_WHITESPACE = frozenset("\t\n\x0b\x0c\r\x85")


def _is_dotnet_space(c: str) -> bool:
    return c in _DOTNET_WHITESPACE or unicodedata.category(c) in ("Zs", "Zl", "Zp")


def trim(text: str) -> str:
    """String.Trim(): strip .NET white space from both ends."""
    start, end = 0, len(text)
    while start < end and _is_dotnet_space(text[start]):
        start += 1
    while end > start and _is_dotnet_space(text[end - 1]):
        end -= 1
    return text[start:end]


def fold_key(key: str) -> str:
    """StringComparer.OrdinalIgnoreCase key: per-character upper-case."""
    return "".join(u if len(u := c.upper()) == 1 else c for c in key)


_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!*()")


def url_encode(text: str) -> str:
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


def parse_integer(text: str, bits: int) -> int | None:
    """Int32/Int64.Parse with NumberStyles.Integer (ASCII digits, optional sign, surrounding white space)."""
    match = _INTEGER_RE.match(text)
    if match is None:
        return None
    value = int(match.group(2)) * (-1 if match.group(1) == "-" else 1)
    return value if -(1 << (bits - 1)) <= value < (1 << (bits - 1)) else None


def convert_integer(text: str, bits: int) -> int | None:
    """Int32Converter/Int64Converter.ConvertFrom (model binding): trimmed; '#', '0x' or '&h' prefix means hex
    read as the two's-complement bit pattern."""
    text = trim(text)
    hex_digits: str | None = None
    if text.startswith("#"):
        hex_digits = text[1:]
    elif text[:2].lower() in ("0x", "&h"):
        hex_digits = text[2:]
    if hex_digits is None:
        return parse_integer(text, bits)
    match = _HEX_RE.match(hex_digits)
    if match is None:
        return None
    value = int(match.group(1), 16)
    if value >= 1 << bits:
        return None
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def convert_bool(text: str) -> bool | None:
    """Boolean.TryParse: 'true'/'false' in any case, surrounding white space and NULs ignored."""
    folded = trim(text.strip("\0")).strip("\0").lower()
    return {"true": True, "false": False}.get(folded)


_DOUBLE_RE = re.compile(r"^([+-]?)((?:[0-9][0-9,]*)?(?:\.[0-9]*)?)(?:[eE]([+-]?[0-9]+))?$")
_DOUBLE_SPECIALS = {"nan": float("nan"), "infinity": float("inf"), "∞": float("inf")}


def parse_double(text: str) -> float | None:
    """Double.TryParse (NumberStyles.Float | AllowThousands, invariant symbols): ASCII digits, optional sign,
    ',' group separators in the integral part, '.' decimal point, exponent, 'NaN'/'Infinity'."""
    text = trim(text)
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
class Instant:
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


def parse_da(text: str) -> date | None:
    match = _DA_RE.match(text)
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def split_offset(text: str) -> tuple[Instant, timedelta] | None:
    """A DT followed by a UTC offset, parsed like .NET 'zzz': sign, then 1-2 hour digits taken greedily, an
    optional ':', then exactly 2 minute digits (< 60). Returns the DT and the signed offset."""
    match = _DT_WITH_OFFSET_RE.match(text)
    if match is None:
        return None
    parsed = parse_dt(match.group("dt"))
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


def parse_dt(text: str) -> Instant | None:
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
    return Instant(low, high)


def parse_tm(text: str) -> Instant | None:
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
    return Instant(low, high)


def format_dt(value: datetime) -> str:
    return f"{value.year:04d}{value:%m%d%H%M%S}.{value.microsecond:06d}"


def format_tm(value: datetime) -> str:
    return f"{value:%H%M%S}.{value.microsecond:06d}"
