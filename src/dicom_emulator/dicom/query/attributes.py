"""Attribute ids of query parameters (``DicomTagParser``): a keyword or 8 hex digits, and the name messages use.

Keywords are case-sensitive and from the public dictionary only (repeating groups resolve to their first group,
as in fo-dicom's dictionary); hex ids may name any private tag but only public tags the dictionary knows.
"""

from __future__ import annotations

import re

from pydicom import datadict

from dicom_emulator.dicom.query.messages import MSG_SEQUENCE_NOT_SUPPORTED
from dicom_emulator.dicom.tags import QueryTag
from dicom_emulator.errors import QueryValidationError


def _build_keywords() -> dict[str, int]:
    keywords = {kw: tag for kw, tag in datadict.keyword_dict.items() if kw}
    # Repeating-group entries (e.g. OverlayData 60xx,3000) resolve to their first group, as fo-dicom's dictionary.
    # datadict imports RepeatersDictionary from the private pydicom._dicom_dict without re-exporting it.
    for mask, entry in datadict.RepeatersDictionary.items():  # type: ignore[attr-defined]
        keyword = entry[4]
        if keyword and keyword not in keywords:
            keywords[keyword] = int(mask.replace("x", "0"), 16)
    return keywords


_KEYWORDS = _build_keywords()
_HEX_HALF_RE = re.compile(r"^\s*[0-9A-Fa-f]{1,4}\s*$")


def _is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


def _dictionary_entry(tag: int) -> tuple[str, ...] | None:
    try:
        return tuple(datadict.get_entry(tag))
    except KeyError:
        return None


def parse_attribute_id(text: str) -> int | None:
    """Tag for a keyword or 'ggggeeee' (hex case-insensitive), or ``None`` when unknown. A dotted path raises the
    sequence error whatever its parts are (DicomTagParser.TryParse without multiple-tag support)."""
    if not text.strip():
        return None
    if "." in text:
        raise QueryValidationError(MSG_SEQUENCE_NOT_SUPPORTED.format(text))
    tag = _KEYWORDS.get(text)
    if tag is not None:
        return tag
    # ushort.TryParse(HexNumber) on each half of an 8-character string (surrounding whitespace tolerated).
    if len(text) != 8 or not (_HEX_HALF_RE.match(text[:4]) and _HEX_HALF_RE.match(text[4:])):
        return None
    tag = (int(text[:4].strip(), 16) << 16) | int(text[4:].strip(), 16)
    # Private tags (odd group) are always accepted; public ones must be in the dictionary.
    if _is_private(tag) or _dictionary_entry(tag) is not None:
        return tag
    return None


def tag_name(query_tag: QueryTag) -> str:
    """QueryTag.GetName(): the dictionary keyword, or the 8-hex path for tags the dictionary does not know."""
    entry = None if _is_private(query_tag.tag) else _dictionary_entry(query_tag.tag)
    if entry is not None and len(entry) > 4 and entry[4]:
        return entry[4]
    return query_tag.hex
