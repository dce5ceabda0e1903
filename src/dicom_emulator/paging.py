"""Binding of the non-DICOM query parameters (limit, offset, flags, times) with Azure's messages.

ASP.NET model binding names are case-insensitive and its errors read
``The query parameter '{Name}' is invalid. {error}`` (azure-behaviour §4.2, §6.1, §7.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from dicom_emulator.dicom.query import MSG_INVALID_QUERY_STRING_VALUE, MSG_RANGE, MSG_VALUE_NOT_VALID_FOR
from dicom_emulator.errors import QueryValidationError

LONG_MAX_TEXT = "9.223372036854776E+18"


def _values(params: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in params if k.strip().lower() == name.lower()]


def _invalid(name: str, error: str) -> QueryValidationError:
    return QueryValidationError(MSG_INVALID_QUERY_STRING_VALUE.format(name, error))


def bind_int(params: Sequence[tuple[str, str]], name: str, *, default: int, low: int, high: int | None = None) -> int:
    """An integer parameter within ``low..high`` (``high`` None = long.MaxValue)."""
    values = _values(params, name)
    if not values:
        return default
    raw = ",".join(values)
    try:
        value = int(values[-1].strip()) if len(values) == 1 else int("x")
    except ValueError:
        raise _invalid(name, MSG_VALUE_NOT_VALID_FOR.format(raw, name)) from None
    if value > 2**63 - 1:
        raise _invalid(name, MSG_VALUE_NOT_VALID_FOR.format(raw, name))
    if value < low or (high is not None and value > high):
        raise _invalid(name, MSG_RANGE.format(name, low, LONG_MAX_TEXT if high is None else high))
    return value


def bind_bool(params: Sequence[tuple[str, str]], name: str, *, default: bool) -> bool:
    values = _values(params, name)
    if not values:
        return default
    if len(values) == 1 and values[0].strip().lower() in ("true", "false"):
        return values[0].strip().lower() == "true"
    raise _invalid(name, MSG_VALUE_NOT_VALID_FOR.format(",".join(values), name))


MSG_TIME_ZONE = "Date and time value must specify a time zone."


def bind_datetime(params: Sequence[tuple[str, str]], name: str) -> datetime | None:
    """An ISO-8601 date-time that must carry a zone (azure-behaviour §6.1); returned in UTC."""
    values = _values(params, name)
    if not values:
        return None
    raw = values[-1].strip()
    try:
        # A '+' in a query string arrives as a space once decoded.
        parsed = datetime.fromisoformat(raw.replace(" ", "+").replace("z", "Z"))
    except ValueError:
        raise _invalid(name, MSG_VALUE_NOT_VALID_FOR.format(raw, name)) from None
    if parsed.tzinfo is None:
        raise _invalid(name, MSG_TIME_ZONE)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+14:00 is before year 1 in UTC: .NET cannot build that DateTimeOffset either,
        # so model binding fails with its usual message (not a 500).
        raise _invalid(name, MSG_VALUE_NOT_VALID_FOR.format(raw, name)) from None


def dotnet_round_trip(value: datetime) -> str:
    """.NET's "O" format of a DateTimeOffset in UTC: 7 fractional digits and ``+00:00``."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"
