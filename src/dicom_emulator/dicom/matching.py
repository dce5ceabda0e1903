"""C-FIND matching of an identifier against a dataset, with the QIDO query engine's condition types.

Pure module. A C-FIND identifier key becomes the same typed condition QIDO builds (``dicom.query``) in *loose*
mode, because C-FIND allows what Azure's QIDO does not: wild cards (PS3.4 C.2.2.2.4) and lists of UIDs
(C.2.2.2.2). Keys that the SQL index holds are matched there (``storage.querying``); the others, and every key
of a worklist, are matched here on the candidate dataset with the same normalization, so both paths agree:
strings compare case-insensitively (PN also accent-insensitively, as QIDO does), dates and times as ranges.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence as DicomSequence

from dicom_emulator.dicom.json_model import element_view
from dicom_emulator.dicom.query import (
    Condition,
    DateRange,
    FuzzyName,
    SingleValue,
    UidList,
    Wildcard,
    normalize_date,
    normalize_datetime,
    normalize_string,
    normalize_time,
    parse_value,
    person_name_words,
)
from dicom_emulator.dicom.tags import Level, QueryTag

# VRs that never carry a matching value (PS3.4 C.2.2.2: no matching on bulk or binary data).
_UNMATCHABLE_VRS = frozenset({"SQ", "OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_DATE_NORMALIZERS = {"DA": normalize_date, "DT": normalize_datetime, "TM": normalize_time}


def is_universal(text: str | None) -> bool:
    """PS3.4 C.2.2.2.3 universal matching: a zero-length value; also a value of only ``*`` (C.2.2.2.4)."""
    if text is None:
        return True
    stripped = text.strip(" \0")
    return not stripped or set(stripped) == {"*"}


def key_text(ds: Dataset, tag: int) -> str | None:
    """The whole value of a key in an identifier as text (``None`` when absent, a sequence or binary)."""
    view = element_view(ds, tag)
    if view is None or view.vr in _UNMATCHABLE_VRS:
        return None
    if view.text is not None:
        return view.text.strip(" \0")
    return "\\".join(str(v) for v in view.values)


def condition_for(ds: Dataset, tag: int, level: Level = Level.INSTANCE) -> Condition | None:
    """The matching condition of key ``tag`` of identifier ``ds``, or ``None`` for universal matching.

    Raises ``QueryValidationError`` (a ``BadRequestError``) when the value is malformed for its VR, e.g. a date
    range that is not ``YYYYMMDD-YYYYMMDD``; the gateway answers that with 0xA900.
    """
    view = element_view(ds, tag)
    if view is None or view.vr in _UNMATCHABLE_VRS:
        return None
    text = key_text(ds, tag)
    if is_universal(text):
        return None
    assert text is not None
    query_tag = QueryTag(tag, keyword_for_tag(tag) or f"{tag:08X}", view.vr, level)
    # Loose mode: wild cards on text VRs (C.2.2.2.4), UID lists (C.2.2.2.2), ranges on DA/DT/TM (C.2.2.2.5).
    return parse_value(query_tag, text, False, True)


@lru_cache(maxsize=256)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    # PS3.4 C.2.2.2.4: '*' matches any sequence of characters (also none), '?' exactly one.
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def matches(condition: Condition, ds: Dataset) -> bool:
    """Whether ``ds`` satisfies ``condition``; a multi-valued attribute matches when any value does.

    An attribute that is absent or empty matches nothing but universal matching (which has no condition).
    """
    view = element_view(ds, condition.tag.tag)
    values = [] if view is None else [v for v in view.values if v is not None and str(v).strip(" \0") != ""]
    if not values:
        return False
    vr = condition.tag.vr
    if isinstance(condition, DateRange):
        # PS3.4 C.2.2.2.5 range matching, inclusive; normalized text compares in time order.
        normalize = _DATE_NORMALIZERS.get(vr)
        for value in values:
            normalized = normalize(str(value)) if normalize else None
            if normalized is None:
                continue
            if condition.low is not None and normalized < condition.low:
                continue
            if condition.high is not None and normalized > condition.high:
                continue
            return True
        return False
    if isinstance(condition, SingleValue):
        # PS3.4 C.2.2.2.1 single value matching (case-insensitive, as the QIDO index compares).
        if isinstance(condition.value, str):
            return any(normalize_string(str(v), vr) == condition.value for v in values)
        return any(_number(v) == condition.value for v in values)
    if isinstance(condition, Wildcard):
        regex = _wildcard_regex(condition.pattern)
        return any(regex.fullmatch(normalize_string(str(v), vr)) for v in values)
    if isinstance(condition, UidList):
        # PS3.4 C.2.2.2.2 list of UID matching.
        return any(normalize_string(str(v), "UI") in condition.uids for v in values)
    if isinstance(condition, FuzzyName):
        return any(
            all(any(word.startswith(w) for word in person_name_words(str(v))) for w in condition.words) for v in values
        )
    raise TypeError(f"unsupported condition {condition!r}")  # pragma: no cover


def _number(value: object) -> float | int | None:
    try:
        return float(value) if not isinstance(value, int) else value  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------------------
# Whole identifiers: keys, sequence matching and the response identifier
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentifierQuery:
    """The matching keys of a C-FIND identifier (or of one item of a sequence key).

    ``sequences`` holds the sequence keys whose single item carries matching keys (PS3.4 C.2.2.2.6 sequence
    matching): a candidate matches when at least one item of its sequence matches every key of that item.
    """

    conditions: tuple[Condition, ...] = ()
    sequences: tuple[tuple[int, IdentifierQuery], ...] = ()

    @property
    def universal(self) -> bool:
        return not self.conditions and not self.sequences


def parse_identifier(
    identifier: Dataset, level: Level = Level.INSTANCE, *, skip: Collection[int] = ()
) -> IdentifierQuery:
    """The conditions of every key of ``identifier`` except ``skip`` (e.g. keys matched by the SQL index)."""
    conditions: list[Condition] = []
    sequences: list[tuple[int, IdentifierQuery]] = []
    for tag in sorted(int(t) for t in identifier.keys()):
        if tag in skip or (tag >> 16) & 1 or tag >> 16 == 0:
            continue  # private keys and command elements never match
        view = element_view(identifier, tag)
        if view is None:
            continue
        if view.vr == "SQ":
            items = view.values
            if len(items) == 1:
                nested = parse_identifier(items[0], level)
                if not nested.universal:
                    sequences.append((tag, nested))
            continue
        condition = condition_for(identifier, tag, level)
        if condition is not None:
            conditions.append(condition)
    return IdentifierQuery(tuple(conditions), tuple(sequences))


def match(query: IdentifierQuery, candidate: Dataset) -> dict[int, list[Dataset]] | None:
    """``None`` when ``candidate`` does not match; else, per sequence key with matching keys, its matching items
    (only those are returned, PS3.4 C.2.2.2.6)."""
    if not all(matches(condition, candidate) for condition in query.conditions):
        return None
    matched: dict[int, list[Dataset]] = {}
    for tag, item_query in query.sequences:
        view = element_view(candidate, tag)
        items = [] if view is None or view.vr != "SQ" else view.values
        hits = [item for item in items if match(item_query, item) is not None]
        if not hits:
            return None
        matched[tag] = hits
    return matched


def empty_element(tag: int) -> DataElement:
    """A zero-length element with the dictionary VR: how a requested key without a value is returned."""
    vr = dictionary_VR(tag).split(" or ")[0]
    return DataElement(tag, vr, DicomSequence([]) if vr == "SQ" else None)


def response(identifier: Dataset, candidate: Dataset, matched_items: dict[int, list[Dataset]] | None = None) -> Dataset:
    """The response identifier: every key of the request, valued from ``candidate`` (PS3.4 C.4.1.1.3.2, K.6.1.2.2).

    A key the candidate lacks is returned empty. A sequence key with an item returns, for each (matching) item
    of the candidate, the item's requested keys; a sequence key without items returns the whole sequence.
    """
    result = Dataset()
    for tag in sorted(int(t) for t in identifier.keys()):
        if (tag >> 16) & 1 or tag >> 16 == 0:
            continue
        try:
            requested = identifier[tag]
        except KeyError:  # pragma: no cover - keys() and item access agree
            continue
        present = tag in candidate
        if requested.VR == "SQ" and len(requested.value or []) == 1:
            items = (matched_items or {}).get(tag)
            if items is None:
                items = list(candidate[tag].value or []) if present and candidate[tag].VR == "SQ" else []
            result[tag] = DataElement(tag, "SQ", DicomSequence([response(requested.value[0], i) for i in items]))
        elif present:
            result[tag] = copy.deepcopy(candidate[tag])
        else:
            try:
                result[tag] = empty_element(tag)
            except KeyError:
                continue  # not in the dictionary: nothing to say about it
    return result
