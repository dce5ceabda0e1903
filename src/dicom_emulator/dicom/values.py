"""The value of a pydicom element as one value: multi-valued or not, and its first value.

pydicom gives a multi-valued element (VM > 1, PS3.5 §6.4) a ``MultiValue`` and a single-valued one the value
itself; readers that only use the first value (frame geometry, windows, index columns) treat both alike.
"""

from __future__ import annotations

from typing import Any


def is_multi_value(value: Any) -> bool:
    """Whether an element value holds several values (a ``MultiValue``, or a list or tuple assigned directly)."""
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def first_of(value: Any) -> Any:
    """The first value of an element value; ``None`` when there is none (``None``, ``""`` or no values)."""
    if is_multi_value(value):
        value = value[0] if len(value) else None
    return None if value is None or value == "" else value
