"""Writing and parsing the DICOM JSON text the index stores (metadata of every instance), on the hot paths.

orjson parses and writes it several times faster than the json module. Texts stored by earlier versions were
written by the json module, which also writes NaN and Infinity and integers of any size; orjson refuses both,
so such a text falls back to the json module and parses exactly as before (and :func:`dumps` falls back the
same way for an integer orjson cannot write).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(text: str | bytes) -> Any:
    """The value of a JSON text written by :func:`json.dumps` (NaN, Infinity and big integers included)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def dumps(value: Any) -> str:
    """``value`` as compact JSON text: orjson (the store path writes one text per instance), else the json module.

    The json module takes what orjson refuses (integers beyond 64 bits). Callers pass no float NaN or Infinity
    (orjson would write null; the DICOM JSON model writes them as strings, dicom/json_model.py). Both write the
    same values; only the spelling of some floats differs (``1e16`` against ``1e+16``), and orjson writes
    non-ASCII characters as UTF-8 rather than ``\\u`` escapes: every JSON reader reads them alike.
    """
    return dump_bytes(value).decode()


def dump_bytes(value: Any) -> bytes:
    """:func:`dumps` as UTF-8 bytes, for a response body."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()
