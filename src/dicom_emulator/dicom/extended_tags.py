"""Extended query tags (azure-behaviour §7): request validation and value extraction, pure.

Values are read from the bulk-data-stripped DICOM JSON kept for every instance, so reindexing never
re-reads files. They are normalized like the core index columns (dicom/query/normalize.py) so one set of
matching clauses serves both.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom import datadict
from pydicom.tag import Tag

from dicom_emulator.dicom.query import (
    normalize_date,
    normalize_datetime,
    normalize_string,
    normalize_time,
    person_name_words,
)
from dicom_emulator.dicom.tags import CORE_QUERY_TAGS_BY_TAG, Level, QueryTag
from dicom_emulator.dicom.validation import validate_value
from dicom_emulator.errors import BadRequestError

MAX_EXTENDED_QUERY_TAGS = 128  # azure-behaviour §7.2, §10.5
SUPPORTED_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "FD", "FL", "IS", "LO", "PN", "SH", "SL", "SS", "TM", "UI", "UL", "US"}
)
INTEGER_VRS = frozenset({"SL", "SS", "UL", "US"})
FLOAT_VRS = frozenset({"FL", "FD"})
_LEVELS = {"study": Level.STUDY, "series": Level.SERIES, "instance": Level.INSTANCE}
_HEX_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")


@dataclass(frozen=True, slots=True)
class TagDefinition:
    """A validated extended query tag: 8-hex path, VR, level, private creator."""

    path: str
    vr: str
    level: Level
    private_creator: str | None = None

    @property
    def tag(self) -> int:
        return int(self.path, 16)

    def query_tag(self) -> QueryTag:
        keyword = datadict.keyword_for_tag(self.tag) or self.path
        return QueryTag(self.tag, keyword, self.vr, self.level, extended=True)


@dataclass(frozen=True, slots=True)
class IndexedValue:
    """A normalized value ready for the extended_query_tag_values row."""

    text_value: str | None = None
    words: str | None = None
    int_value: int | None = None
    float_value: float | None = None


def parse_tag_path(path: str) -> int:
    """A keyword or 8-hex path to a tag; raises with Azure's message when it cannot be parsed (azure-behaviour §7.1)."""
    text = (path or "").strip()
    if _HEX_TAG.match(text):
        return int(text, 16)
    tag = datadict.tag_for_keyword(text) if text else None
    if tag is None or "." in text:
        raise BadRequestError(
            f"The extended query tag '{path}' is invalid as it cannot be parsed into a valid Dicom Tag."
        )
    return int(tag)


def normalize_path(path: str) -> str:
    return f"{parse_tag_path(path):08X}"


def _field(entry: Mapping[str, Any], name: str) -> Any:
    # Property names are case-insensitive (System.Text.Json PropertyNameCaseInsensitive).
    for key, value in entry.items():
        if key.lower() == name.lower():
            return value
    return None


def validate_add_request(body: Any, existing_paths: Collection[str] = ()) -> list[TagDefinition]:
    """Validate a POST /extendedquerytags body (azure-behaviour §7.2) and return the tag definitions."""
    if not isinstance(body, list) or not body:
        raise BadRequestError("The extended query tag(s) is missing.")
    definitions: list[TagDefinition] = []
    seen: set[str] = set()
    for index, entry in enumerate(body):
        if not isinstance(entry, Mapping):
            raise BadRequestError("The syntax of the request body is invalid.")
        raw_path, raw_vr, raw_level = _field(entry, "path"), _field(entry, "vr"), _field(entry, "level")
        raw_creator = _field(entry, "privateCreator")
        for name, value in (("Path", raw_path), ("Level", raw_level)):
            if value is None or (isinstance(value, str) and not value.strip()):
                raise BadRequestError(
                    f"The field '[{index}].{name}' in request body is invalid: The Dicom Tag Property {name} "
                    "must be specified and must not be null, empty or whitespace"
                )
        level = _LEVELS.get(str(raw_level).strip().lower())
        if level is None:
            raise BadRequestError(
                f"The field '$[{index}].Level' in request body is invalid: Expected value '{raw_level}' to be one "
                "of the following values: ['Instance', 'Series', 'Study']"
            )
        path_text = str(raw_path).strip()
        if "." in path_text:
            raise BadRequestError(
                f"The extended query tag '{path_text}' is invalid as it cannot be parsed into a valid Dicom Tag."
            )
        tag = parse_tag_path(path_text)
        path = f"{tag:08X}"
        if path in seen:
            raise BadRequestError(f"The extended query tag '{path_text}' has been specified before.")
        seen.add(path)
        if tag in CORE_QUERY_TAGS_BY_TAG:
            raise BadRequestError(f"The query tag '{path_text}' is already supported.")
        private = Tag(tag).is_private
        creator = str(raw_creator).strip() if raw_creator not in (None, "") else None
        if not private and creator is not None:
            raise BadRequestError(f"The private creator is not empty for standard tag '{path_text}'.")
        if private:
            if creator is None:
                raise BadRequestError(f"The private creator for private tag '{path_text}' is missing.")
            if len(creator) > 64 or "\\" in creator or any(ord(c) < 32 for c in creator):
                raise BadRequestError(f"The private creator for private tag '{path_text}' is not a valid LO attribute.")
        vr = _resolve_vr(tag, path_text, raw_vr, private)
        definitions.append(TagDefinition(path=path, vr=vr, level=level, private_creator=creator))
    return definitions


def _resolve_vr(tag: int, path_text: str, raw_vr: Any, private: bool) -> str:
    given = str(raw_vr).strip().upper() if raw_vr not in (None, "") else None
    dictionary_vr = None
    if not private:
        try:
            dictionary_vr = datadict.dictionary_VR(tag)
        except KeyError:
            dictionary_vr = None
    if given is None:
        if dictionary_vr is None:
            raise BadRequestError(f"The vr for tag '{path_text}' is missing.")
        given = dictionary_vr.split(" or ")[0]
    elif dictionary_vr is not None and given not in dictionary_vr.split(" or "):
        raise BadRequestError(
            f"The VR code '{given}' is incorrectly specified for '{path_text}'. The expected VR code for it is "
            f"'{dictionary_vr}'. Retry this request either with the correct VR code or without specifying it."
        )
    if given not in SUPPORTED_VRS:
        raise BadRequestError(f"The VR code '{given}' specified for tag '{path_text}' is not supported.")
    return given


def first_json_value(metadata: Mapping[str, Any], path: str) -> Any:
    """The first value of a top-level element in DICOM JSON, or None (only the first is indexed, azure-behaviour
    §7.5)."""
    element = metadata.get(path)
    if not isinstance(element, Mapping):
        return None
    values = element.get("Value")
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        return None
    return values[0]


def extract_value(metadata: Mapping[str, Any], definition: TagDefinition) -> IndexedValue | str | None:
    """The indexed value of ``definition`` in an instance's metadata.

    Returns None when the attribute is absent or empty (not indexed), an :class:`IndexedValue` when it
    validates for the tag's VR, or the error message when it does not (recorded under ``/errors``).
    """
    raw = first_json_value(metadata, definition.path)
    if raw is None:
        return None
    vr = definition.vr
    name = datadict.keyword_for_tag(definition.tag) or definition.path
    if vr in INTEGER_VRS:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or int(raw) != raw:
            return f"Dicom element '{name}' failed validation for VR '{vr}': Value is not an integer."
        return IndexedValue(int_value=int(raw))
    if vr in FLOAT_VRS:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return f"Dicom element '{name}' failed validation for VR '{vr}': Value is not a number."
        return IndexedValue(float_value=float(raw))
    if vr == "PN":
        text = raw.get("Alphabetic") if isinstance(raw, Mapping) else None
        if not text:
            return None
        problem = validate_value("PN", text)
        if problem:
            return f"Dicom element '{name}' failed validation for VR 'PN': {problem}"
        words = "".join(f" {w}" for w in person_name_words(text)) or None
        return IndexedValue(text_value=normalize_string(text, "PN"), words=words)
    text = str(raw)
    problem = validate_value(vr, text)
    if problem:
        return f"Dicom element '{name}' failed validation for VR '{vr}': {problem}"
    if vr == "DA":
        normalized = normalize_date(text)
    elif vr == "DT":
        normalized = normalize_datetime(text)
    elif vr == "TM":
        normalized = normalize_time(text)
    else:
        normalized = normalize_string(text, vr)
    if normalized is None:
        return f"Dicom element '{name}' failed validation for VR '{vr}': Value is invalid."
    return IndexedValue(text_value=normalized)
