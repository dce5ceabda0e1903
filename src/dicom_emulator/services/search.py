"""QIDO-RS: run a parsed query and shape each hit from stored metadata (azure-behaviour §4.6)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from dicom_emulator import json_text
from dicom_emulator.dicom.json_model import filter_json
from dicom_emulator.dicom.query import ParsedQuery, parse_qido
from dicom_emulator.dicom.tags import (
    COMPUTED_TAGS,
    MODALITIES_IN_STUDY,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    SERIES_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    TAG_LEVELS,
    Level,
    QueryResource,
    default_return_tags,
)
from dicom_emulator.storage.index import SqlIndex
from dicom_emulator.storage.querying import SearchHit, SearchPage, search_page
from dicom_emulator.storage.tags_store import QUERY_DISABLED, SqlTagStore, TagRecord, ready_tags_sync

# Attributes whose exact match the index answers from a B-tree (storage/models.py): a query pinned by one of them
# reads a bounded handful of rows, cheap enough to run on the event loop (SqlIndex.read_now). Keywords and
# tags as QIDO accepts them (PS3.18 8.3.4.1), compared case-insensitively.
_PINNING_KEYS = frozenset(
    key.lower()
    for key in (
        "StudyInstanceUID",
        "0020000D",
        "SeriesInstanceUID",
        "0020000E",
        "SOPInstanceUID",
        "00080018",
        "PatientID",
        "00100020",
        "AccessionNumber",
        "00080050",
    )
)


def is_pinned_query(params: Sequence[tuple[str, str]], study_uid: str | None) -> bool:
    """Whether a QIDO request names one study (its route) or matches an indexed attribute exactly (no wildcard).

    Anything else (a wildcard, fuzzy names, a date range, a bare listing with a deep offset) may scan, and reads
    off the loop.
    """
    if study_uid is not None:
        return True
    return any(key.lower() in _PINNING_KEYS and value and not any(c in value for c in "*?") for key, value in params)


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A parsed QIDO query plus the extended query tags it may use (none for a query on core attributes only,
    such as the one DIMSE C-FIND builds)."""

    query: ParsedQuery
    # tag → tag_key of the ready extended query tags.
    extended_keys: dict[int, int] = field(default_factory=dict)
    # Keys as sent of filters on enabled extended tags that have indexing errors (azure-behaviour §4.7).
    erroneous_keys: list[str] = field(default_factory=list)


class SearchService:
    def __init__(self, index: SqlIndex, tags: SqlTagStore, *, loose: bool = False) -> None:
        self.index = index
        self.tags = tags
        self.loose = loose

    async def parse(
        self,
        params: Sequence[tuple[str, str]],
        resource: QueryResource,
        *,
        study_uid: str | None,
        series_uid: str | None,
    ) -> SearchRequest:
        return self._parse(await self.tags.ready(), params, resource, study_uid=study_uid, series_uid=series_uid)

    async def run(
        self,
        params: Sequence[tuple[str, str]],
        resource: QueryResource,
        *,
        api_major: int,
        partition_key: int = 1,
        study_uid: str | None = None,
        series_uid: str | None = None,
    ) -> tuple[SearchRequest, list[dict[str, Any]]]:
        """Parse a QIDO request and fetch its page: the tags, the page and its metadata in one read hop.

        A QIDO request is mostly fixed cost; reading the ready tags, the hits and their metadata on one
        connection in one hop off the event loop halves what an exact-match query costs on SQLite.
        """

        def _read(conn: Connection) -> tuple[SearchRequest, set[int], SearchPage]:
            request = self._parse(ready_tags_sync(conn), params, resource, study_uid=study_uid, series_uid=series_uid)
            tags = _returned_tags(request.query, api_major, study_uid, series_uid)
            return request, tags, _page(conn, request, partition_key, study_uid, series_uid, tags)

        if self.index.on_local_file and is_pinned_query(params, study_uid):
            request, tags, page = self.index.read_now(_read)
        else:
            request, tags, page = await self.index.read(_read)
        return request, self._shape_page(request, page, tags)

    def _parse(
        self,
        ready: list[TagRecord],
        params: Sequence[tuple[str, str]],
        resource: QueryResource,
        *,
        study_uid: str | None,
        series_uid: str | None,
    ) -> SearchRequest:
        # Only ready tags are queryable; adding/deleting ones answer "not queryable" (azure-behaviour §7.5).
        query = parse_qido(
            params,
            resource,
            loose=self.loose,
            extended_tags=[t.definition.query_tag() for t in ready],
            disabled_extended_tags=[t.definition.tag for t in ready if t.query_status == QUERY_DISABLED],
            route_has_study=study_uid is not None,
            route_has_series=series_uid is not None,
        )
        by_tag = {t.definition.tag: t for t in ready}
        used = [c.tag.tag for c in query.conditions if c.tag.extended]
        erroneous = [query.filter_keys[t] for t in used if by_tag[t].error_count > 0]
        return SearchRequest(query, {t: r.tag_key for t, r in by_tag.items()}, erroneous)

    async def search(
        self,
        request: SearchRequest,
        *,
        api_major: int,
        partition_key: int = 1,
        study_uid: str | None = None,
        series_uid: str | None = None,
    ) -> list[dict[str, Any]]:
        """One page of DICOM JSON results; empty list when nothing matched (the route answers 204)."""
        tags = _returned_tags(request.query, api_major, study_uid, series_uid)
        page = await self.index.read(_page, request, partition_key, study_uid, series_uid, tags)
        return self._shape_page(request, page, tags)

    @staticmethod
    def _shape_page(request: SearchRequest, page: SearchPage, tags: set[int]) -> list[dict[str, Any]]:
        """The DICOM JSON of each hit: the returned ``tags`` (level defaults, includefield, filters, route UIDs)."""
        if not page.hits:
            return []
        query = request.query
        parsed = {w: json_text.loads(t) for w, t in page.metadata.items()}
        return [_shape(hit, parsed, tags, query.resource) for hit in page.hits]


def _page(
    conn: Connection,
    request: SearchRequest,
    partition_key: int,
    study_uid: str | None,
    series_uid: str | None,
    returned: set[int],
) -> SearchPage:
    """The page of a parsed request, with its metadata and the computed attributes among ``returned``, on ``conn``."""
    return search_page(
        conn,
        request.query,
        partition_key=partition_key,
        study_uid=study_uid,
        series_uid=series_uid,
        extended_keys=request.extended_keys,
        computed=returned & COMPUTED_TAGS.keys(),
    )


def _returned_tags(query: ParsedQuery, api_major: int, study_uid: str | None, series_uid: str | None) -> set[int]:
    """Level defaults (or the "all" set) ∪ includefield ∪ filtered attributes ∪ route UIDs (azure-behaviour §4.6)."""
    tags: set[int] = set()
    for level in query.resource.return_levels:
        tags.update(default_return_tags(level, api_major, query.include_all))
    tags.update(query.include_tags)
    tags.update(c.tag.tag for c in query.conditions)
    if study_uid is not None:
        tags.add(STUDY_INSTANCE_UID)
    if series_uid is not None:
        tags.add(SERIES_INSTANCE_UID)
    return tags


def _shape(
    hit: SearchHit, metadata: dict[int, dict[str, Any]], tags: set[int], resource: QueryResource
) -> dict[str, Any]:
    by_level = {
        Level.STUDY: metadata.get(hit.study_watermark, {}),
        Level.SERIES: metadata.get(hit.series_watermark, {}) if hit.series_watermark else {},
        Level.INSTANCE: metadata.get(hit.instance_watermark, {}) if hit.instance_watermark else {},
    }
    most_specific = resource.result_level
    result: dict[str, Any] = {}
    plain = [t for t in tags if t not in COMPUTED_TAGS]
    for level in (Level.STUDY, Level.SERIES, Level.INSTANCE):
        wanted = [t for t in plain if TAG_LEVELS.get(t, most_specific) is level]
        source = by_level[level] or by_level[most_specific]
        result.update(filter_json(source, wanted))
    if MODALITIES_IN_STUDY in tags and hit.modalities:
        result["00080061"] = {"vr": "CS", "Value": hit.modalities}
    if NUMBER_OF_STUDY_RELATED_INSTANCES in tags and hit.study_instances is not None:
        result["00201208"] = {"vr": "IS", "Value": [hit.study_instances]}
    if NUMBER_OF_SERIES_RELATED_INSTANCES in tags and hit.series_instances is not None:
        result["00201209"] = {"vr": "IS", "Value": [hit.series_instances]}
    return dict(sorted(result.items()))
