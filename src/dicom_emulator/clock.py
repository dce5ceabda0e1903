"""The one clock of the emulator (UTC, timezone-aware).

A shared leaf module: every layer may import it (the index stamps rows with it, STOW computes expiry times
from it, the job and workitem code reads it), and it imports nothing of the project.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A time read from the index as timezone-aware UTC: SQLite gives ``DateTime(timezone=True)`` columns back
    naive, and every stored time was written as UTC by :func:`utcnow`."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
