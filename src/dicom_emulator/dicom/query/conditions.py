"""The typed query model: one condition per filtered attribute, and a validated QIDO request.

Condition values are already normalized (:mod:`.normalize`), so storage and in-memory matching compare them with
the stored values directly. QIDO builds them from a query string (:mod:`.qido`), UPS-RS and DIMSE C-FIND from
their own inputs (:mod:`.values` holds the per-VR parsers they share).
"""

from __future__ import annotations

from dataclasses import dataclass

from dicom_emulator.dicom.tags import QueryResource, QueryTag


@dataclass(frozen=True)
class SingleValue:
    """Exact match (PS3.4 C.2.2.2.1). Strings are normalized with :func:`normalize_string`; SL/SS/UL/US give an
    ``int`` and FL/FD a ``float``."""

    tag: QueryTag
    value: str | int | float


@dataclass(frozen=True)
class DateRange:
    """Inclusive range on DA ('YYYYMMDD'), DT ('YYYYMMDDHHMMSS.ffffff') or TM ('HHMMSS.ffffff') (PS3.4 C.2.2.2.5).

    ``None`` is an open end. Like Azure, both ends are completed with minimum values, so a stored value
    normalized with :func:`normalize_date` / :func:`normalize_datetime` / :func:`normalize_time` matches when
    ``low <= stored <= high`` as strings. A single (non-range) value matches exactly: DT '2020' is
    20200101000000.000000..20200101000000.000000 (Azure's DateTime equality), not the whole year.
    """

    tag: QueryTag
    low: str | None
    high: str | None


@dataclass(frozen=True)
class FuzzyName:
    """PN fuzzy match (``fuzzymatching=true``, §4.4): every word must be a prefix of some word of the
    stored name (see :func:`person_name_words`). Words are normalized and may contain any character except '"';
    an empty tuple (a value made only of separators, e.g. '^') matches nothing."""

    tag: QueryTag
    words: tuple[str, ...]


@dataclass(frozen=True)
class Wildcard:
    """Wildcard match (``loose`` only, PS3.4 C.2.2.2.4): '*' is any sequence of characters (also none), '?' any
    single character; every other character is literal. Normalized with :func:`normalize_string`; a pattern of
    only '*' is universal matching."""

    tag: QueryTag
    pattern: str


@dataclass(frozen=True)
class UidList:
    """List-of-UID match (``loose`` only, PS3.4 C.2.2.2.2): the stored UID equals any of ``uids``."""

    tag: QueryTag
    uids: tuple[str, ...]


Condition = SingleValue | DateRange | FuzzyName | Wildcard | UidList


@dataclass(frozen=True)
class ParsedQuery:
    """A validated QIDO request (azure-behaviour §4.2-§4.4). Route UIDs are not part of ``conditions``."""

    resource: QueryResource
    conditions: tuple[Condition, ...]
    limit: int
    offset: int
    fuzzy: bool
    include_all: bool
    include_tags: tuple[int, ...]
    filter_keys: dict[int, str]
