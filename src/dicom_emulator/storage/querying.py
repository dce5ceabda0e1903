"""Typed query conditions (dicom/query/conditions.py) to SQLAlchemy clauses, and the QIDO page queries.

One function per condition type, as pynetdicom's qrscp dispatches on the matching type; each branch
names its matching rule. Results are paged as studies, series or instances (never as instance rows
that are grouped afterwards), newest first by watermark (azure-behaviour §4.5).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, func, select
from sqlalchemy.engine import Connection

from dicom_emulator.dicom.extended_tags import FLOAT_VRS, INTEGER_VRS
from dicom_emulator.dicom.query import (
    Condition,
    DateRange,
    FuzzyName,
    ParsedQuery,
    SingleValue,
    UidList,
    Wildcard,
)
from dicom_emulator.dicom.tags import (
    CORE_QUERY_TAGS_BY_TAG,
    MODALITIES_IN_STUDY,
    MODALITY,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    Level,
)
from dicom_emulator.storage.models import ExtendedQueryTagValue, Instance, Series, Study

# Core attribute → (column, fuzzy-words column); the level is implied by the table.
_COLUMNS: dict[int, tuple[Any, Any | None]] = {
    0x0020000D: (Study.study_uid, None),
    0x00100010: (Study.patient_name, Study.patient_name_words),
    0x00100020: (Study.patient_id, None),
    0x00100030: (Study.patient_birth_date, None),
    0x00080050: (Study.accession_number, None),
    0x00080090: (Study.referring_physician_name, Study.referring_physician_words),
    0x00080020: (Study.study_date, None),
    0x00081030: (Study.study_description, None),
    0x0020000E: (Series.series_uid, None),
    0x00080060: (Series.modality, None),
    0x00400244: (Series.performed_procedure_step_start_date, None),
    0x00081090: (Series.manufacturer_model_name, None),
    0x00080018: (Instance.sop_uid, None),
}


def like_escape(value: str) -> str:
    """``value`` as literal text in a LIKE pattern whose ESCAPE character is a backslash."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def wildcard_like(pattern: str) -> str:
    """A PS3.4 C.2.2.2.4 wild card pattern as a LIKE pattern (ESCAPE backslash): '*' any run, '?' one character."""
    return "".join("%" if c == "*" else "_" if c == "?" else like_escape(c) for c in pattern)


# PN values are at most 3 groups × 64 characters, so no name has more words than this.
MAX_NAME_WORDS = 200


def essential_words(words: tuple[str, ...]) -> list[str]:
    """Query words that still constrain the match: a word that prefixes another query word is implied
    by it. Each remaining word needs a different word of the name (no word starts with two of them)."""
    unique = sorted(set(words))
    return [w for w in unique if not any(o != w and o.startswith(w) for o in unique)]


def match_clause(cond: Condition, column: Any, words: Any | None) -> ColumnElement[bool]:
    """The WHERE clause of one condition on a value column (values are already normalized)."""
    if isinstance(cond, SingleValue):
        # PS3.4 C.2.2.2.1 single value matching; case-insensitive via normalized storage (azure-behaviour §4.4).
        return column == cond.value  # type: ignore[no-any-return]
    if isinstance(cond, DateRange):
        # PS3.4 C.2.2.2.5 range matching, inclusive bounds; normalized text compares in order.
        parts = []
        if cond.low is not None:
            parts.append(column >= cond.low)
        if cond.high is not None:
            parts.append(column <= cond.high)
        return and_(*parts)
    if isinstance(cond, FuzzyName):
        # Azure fuzzy PN: every query word must prefix-match a word of the name (azure-behaviour §4.4).
        target = words if words is not None else column
        needed = essential_words(cond.words)
        if not needed or len(needed) > MAX_NAME_WORDS:
            # No word names nothing; more words than any name holds can never all match (and would
            # exceed SQLite's expression depth).
            return false()
        return and_(*(target.like(f"% {like_escape(w)}%", escape="\\") for w in needed))
    if isinstance(cond, Wildcard):
        # PS3.4 C.2.2.2.4 wild card matching ('*' any run, '?' one character), --loose only.
        return column.like(wildcard_like(cond.pattern), escape="\\")  # type: ignore[no-any-return]
    if isinstance(cond, UidList):
        # PS3.4 C.2.2.2.2 list of UID matching, --loose only.
        return column.in_(list(cond.uids))  # type: ignore[no-any-return]
    raise TypeError(f"unsupported condition {cond!r}")


def condition_clause(cond: Condition) -> ColumnElement[bool]:
    """A condition on a core attribute's column."""
    column, words = _COLUMNS[cond.tag.tag]
    return match_clause(cond, column, words)


def extended_clause(cond: Condition, tag_key: int) -> ColumnElement[bool]:
    """A condition on an extended query tag: its value row at the tag's level must match (azure-behaviour §7.5)."""
    value = ExtendedQueryTagValue
    column: Any
    if cond.tag.vr in INTEGER_VRS:
        column = value.int_value
    elif cond.tag.vr in FLOAT_VRS:
        column = value.float_value
    else:
        column = value.text_value
    if cond.tag.level is Level.STUDY:
        owner = value.study_key == Study.study_key
    elif cond.tag.level is Level.SERIES:
        owner = value.series_key == Series.series_key
    else:
        owner = value.watermark == Instance.watermark
    return exists().where(value.tag_key == tag_key, owner, match_clause(cond, column, value.words))


def _level_of(cond: Condition) -> Level:
    if cond.tag.extended:
        return cond.tag.level
    column, _ = _COLUMNS[cond.tag.tag]
    table = column.table
    if table is Study.__table__:
        return Level.STUDY
    if table is Series.__table__:
        return Level.SERIES
    return Level.INSTANCE


@dataclass(slots=True)
class SearchHit:
    """One result row: which stored metadata supplies each level's attributes, plus computed values."""

    study_watermark: int
    series_watermark: int | None = None
    instance_watermark: int | None = None
    study_key: int = 0
    series_key: int | None = None
    study_instances: int | None = None
    series_instances: int | None = None
    modalities: list[str] = field(default_factory=list)


# Prebuilt (an expanding IN): every QIDO page and metadata retrieval runs it.
METADATA_FOR = select(Instance.watermark, Instance.metadata_json).where(
    Instance.watermark.in_(bindparam("watermarks", expanding=True))
)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of hits with the stored DICOM JSON text of every study, series and instance they name."""

    hits: list[SearchHit]
    metadata: dict[int, str]


def search_page(
    conn: Connection,
    query: ParsedQuery,
    *,
    partition_key: int,
    study_uid: str | None = None,
    series_uid: str | None = None,
    extended_keys: Mapping[int, int] | None = None,
    computed: Collection[int] | None = None,
) -> SearchPage:
    """:func:`search` plus the metadata of the hits, on one connection (one thread hop per QIDO request)."""
    hits = search(
        conn,
        query,
        partition_key=partition_key,
        study_uid=study_uid,
        series_uid=series_uid,
        extended_keys=extended_keys,
        computed=computed,
    )
    watermarks = {h.study_watermark for h in hits}
    watermarks |= {h.series_watermark for h in hits if h.series_watermark is not None}
    watermarks |= {h.instance_watermark for h in hits if h.instance_watermark is not None}
    return SearchPage(hits, metadata_texts(conn, sorted(watermarks)))


def metadata_texts(conn: Connection, watermarks: list[int]) -> dict[int, str]:
    """Stored DICOM JSON text by watermark."""
    if not watermarks:
        return {}
    return {row[0]: row[1] for row in conn.execute(METADATA_FOR, {"watermarks": watermarks})}


def search(
    conn: Connection,
    query: ParsedQuery,
    *,
    partition_key: int,
    study_uid: str | None = None,
    series_uid: str | None = None,
    extended_keys: Mapping[int, int] | None = None,
    computed: Collection[int] | None = None,
) -> list[SearchHit]:
    """Run a parsed QIDO query and return one page of hits.

    ``computed``: which computed attributes the answer returns (ModalitiesInStudy, the Number of Study/Series
    Related Instances); each costs a grouped query, and no level returns them unless asked for
    (includefield), so an exact-match query runs only its own. None computes all three.
    """
    by_level: dict[Level, list[ColumnElement[bool]]] = {Level.STUDY: [], Level.SERIES: [], Level.INSTANCE: []}
    modality_filters: list[ColumnElement[bool]] = []
    for cond in query.conditions:
        if cond.tag.tag == MODALITIES_IN_STUDY:
            # A study matches when any of its series has the modality (azure-behaviour §4.4).
            clause = condition_clause(replace(cond, tag=CORE_QUERY_TAGS_BY_TAG[MODALITY]))
            # correlate_except: the subquery has a series table of its own, also when the outer query (series and
            # instance level) selects from series; auto-correlation would leave it without a FROM.
            modality_filters.append(
                exists().where(Series.study_key == Study.study_key, clause).correlate_except(Series)
            )
            continue
        if cond.tag.extended:
            assert extended_keys is not None
            by_level[_level_of(cond)].append(extended_clause(cond, extended_keys[cond.tag.tag]))
        else:
            by_level[_level_of(cond)].append(condition_clause(cond))
    if study_uid is not None:
        by_level[Level.STUDY].append(Study.study_uid == study_uid)
    if series_uid is not None:
        by_level[Level.SERIES].append(Series.series_uid == series_uid)

    level = query.resource.result_level
    stmt: Any
    if level is Level.STUDY:
        stmt = select(Study.study_key, Study.latest_watermark).where(
            Study.partition_key == partition_key, *by_level[Level.STUDY], *modality_filters
        )
        if by_level[Level.SERIES]:
            stmt = stmt.where(exists().where(Series.study_key == Study.study_key, *by_level[Level.SERIES]))
        if by_level[Level.INSTANCE]:
            stmt = stmt.where(exists().where(Instance.study_key == Study.study_key, *by_level[Level.INSTANCE]))
        stmt = stmt.order_by(Study.latest_watermark.desc()).offset(query.offset).limit(query.limit)
        hits = [SearchHit(study_watermark=w, study_key=k) for k, w in conn.execute(stmt).all()]
    elif level is Level.SERIES:
        stmt = (
            select(Series.series_key, Series.latest_watermark, Study.study_key, Study.latest_watermark)
            .join(Study, Series.study_key == Study.study_key)
            .where(Study.partition_key == partition_key, *by_level[Level.STUDY], *by_level[Level.SERIES])
            .where(*modality_filters)
        )
        if by_level[Level.INSTANCE]:
            stmt = stmt.where(exists().where(Instance.series_key == Series.series_key, *by_level[Level.INSTANCE]))
        stmt = stmt.order_by(Series.latest_watermark.desc()).offset(query.offset).limit(query.limit)
        hits = [
            SearchHit(study_watermark=sw, series_watermark=w, study_key=stk, series_key=sk)
            for sk, w, stk, sw in conn.execute(stmt).all()
        ]
    else:
        stmt = (
            select(
                Instance.watermark, Series.series_key, Series.latest_watermark, Study.study_key, Study.latest_watermark
            )
            .join(Series, Instance.series_key == Series.series_key)
            .join(Study, Instance.study_key == Study.study_key)
            .where(Instance.partition_key == partition_key)
            .where(*by_level[Level.STUDY], *by_level[Level.SERIES], *by_level[Level.INSTANCE], *modality_filters)
            .order_by(Instance.watermark.desc())
            .offset(query.offset)
            .limit(query.limit)
        )
        hits = [
            SearchHit(study_watermark=sw, series_watermark=w2, instance_watermark=w, study_key=stk, series_key=sk)
            for w, sk, w2, stk, sw in conn.execute(stmt).all()
        ]
    if hits:
        _computed(conn, hits, computed)
    return hits


def _computed(conn: Connection, hits: list[SearchHit], wanted: Collection[int] | None) -> None:
    """Instance counts and modalities of the page's studies and series, in grouped queries (those ``wanted``)."""
    study_keys = {h.study_key for h in hits}
    counts: dict[int, int] = {}
    if wanted is None or NUMBER_OF_STUDY_RELATED_INSTANCES in wanted:
        counts = dict(
            conn.execute(
                select(Instance.study_key, func.count())
                .where(Instance.study_key.in_(study_keys))
                .group_by(Instance.study_key)
            ).all()
        )
    modalities: dict[int, list[str]] = {}
    if wanted is None or MODALITIES_IN_STUDY in wanted:
        rows = conn.execute(
            select(Series.study_key, Series.modality)
            .where(Series.study_key.in_(study_keys), Series.modality.is_not(None))
            .distinct()
            .order_by(Series.study_key, Series.modality)
        )
        for key, modality in rows.all():
            if modality is not None:
                modalities.setdefault(key, []).append(modality)
    series_keys = {h.series_key for h in hits if h.series_key is not None}
    series_counts: dict[int, int] = {}
    if series_keys and (wanted is None or NUMBER_OF_SERIES_RELATED_INSTANCES in wanted):
        series_counts = dict(
            conn.execute(
                select(Instance.series_key, func.count())
                .where(Instance.series_key.in_(series_keys))
                .group_by(Instance.series_key)
            ).all()
        )
    for hit in hits:
        hit.study_instances = counts.get(hit.study_key, 0)
        hit.modalities = modalities.get(hit.study_key, [])
        if hit.series_key is not None:
            hit.series_instances = series_counts.get(hit.series_key, 0)
