"""The one clock of the emulator (UTC, timezone-aware).

A shared leaf module: every layer may import it (the index stamps rows with it, STOW computes expiry times
from it, the job and workitem code reads it), and it imports nothing of the project.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
