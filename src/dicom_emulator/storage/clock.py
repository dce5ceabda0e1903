"""The one clock of the index (UTC, timezone-aware), and UTC for the times read back."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A time read from the index as timezone-aware UTC: SQLite gives ``DateTime(timezone=True)`` columns back
    naive, and every stored time was written as UTC by :func:`utcnow`."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
