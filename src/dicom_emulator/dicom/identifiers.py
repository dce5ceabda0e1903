"""DICOM UID validation (azure-behaviour §1.4) and instance identifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dicom_emulator.errors import InvalidUidError

# Azure's UidValidation: after trimming trailing spaces, at most 64 characters of digits and dots
# ending in a digit. Letters, '-' and GUIDs are rejected (the docs' "alphanumeric and -" is wrong).
_UID_RE = re.compile(r"^[0-9.]*[0-9]$")
MAX_UID_LENGTH = 64


def is_valid_uid(value: str | None) -> bool:
    """Return True when ``value`` is a UID Azure accepts (trailing spaces and NULs tolerated)."""
    if value is None:
        return False
    trimmed = value.rstrip(" \0")
    return 0 < len(trimmed) <= MAX_UID_LENGTH and _UID_RE.match(trimmed) is not None


def uid_error_message(name: str) -> str:
    """Azure's message for an invalid UID named ``name`` (e.g. ``StudyInstanceUid``)."""
    return (
        f"Dicom element '{name}' failed validation for VR 'UI': DICOM Identifier is invalid. "
        "Value length should not exceed the maximum length of 64 characters. "
        "Value should contain characters in '0'-'9' and '.'. "
        "Each component must start with non-zero number."
    )


def validate_uid(value: str | None, name: str) -> str:
    """Return the trimmed UID or raise :class:`InvalidUidError` before it reaches a path or a query."""
    if not is_valid_uid(value):
        raise InvalidUidError(uid_error_message(name))
    assert value is not None
    return value.rstrip(" \0")


@dataclass(frozen=True, slots=True)
class InstanceIdentifier:
    """The three UIDs that address one instance."""

    study_uid: str
    series_uid: str
    sop_uid: str
