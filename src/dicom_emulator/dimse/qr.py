"""Study Root Query/Retrieve (PS3.4 Annex C) over the QIDO query engine and the retrieve service.

C-FIND: the identifier's keys that the index holds (the core QIDO attributes of the query level and above) become
the same typed conditions a QIDO query string does, built directly with the QIDO filter parser in loose mode
(C-FIND allows wild cards and UID lists), and run by the same SQL query; the other keys are matched on each hit's
stored metadata (``dicom.matching``). Results come in pages of :data:`PAGE_SIZE`, newest first as in QIDO. C-GET:
the identifier's unique keys name the instances, which the retrieve service lists as WADO does.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset

from dicom_emulator.dicom import matching
from dicom_emulator.dicom.identifiers import is_valid_uid
from dicom_emulator.dicom.json_model import json_to_dataset
from dicom_emulator.dicom.query import MAX_LIMIT, Condition, ParsedQuery, parse_filter, trim
from dicom_emulator.dicom.tags import (
    CORE_QUERY_TAGS_BY_TAG,
    TAG_LEVELS,
    Level,
    QueryResource,
    QueryTag,
)
from dicom_emulator.errors import BadRequestError, NotFoundError
from dicom_emulator.services.records import DEFAULT_PARTITION_KEY, InstanceRecord
from dicom_emulator.services.retrieve import RetrieveService
from dicom_emulator.services.search import SearchRequest, SearchService

PAGE_SIZE = MAX_LIMIT  # hits fetched per query of the index

QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
RETRIEVE_AE_TITLE = 0x00080054
INSTANCE_AVAILABILITY = 0x00080056
STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E
SOP_INSTANCE_UID = 0x00080018
UNIQUE_KEYS = (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID)  # PS3.4 C.6.2.1: study, series, image
RESPONSE_CHARACTER_SET = "ISO_IR 192"  # stored metadata is Unicode: answers are UTF-8

# PS3.4 C.6.2 Study Root levels and the QIDO resource with the same result level.
RESOURCES: dict[str, QueryResource] = {
    "STUDY": QueryResource.ALL_STUDIES,
    "SERIES": QueryResource.ALL_SERIES,
    "IMAGE": QueryResource.ALL_INSTANCES,
}
_DEPTH = {Level.STUDY: 0, Level.SERIES: 1, Level.INSTANCE: 2}

# The level an attribute belongs to, from the QIDO attribute tables (unknown attributes: the query's level);
# Specific Character Set is returned at every level.
_TAG_LEVEL: dict[int, Level] = {tag: level for tag, level in TAG_LEVELS.items() if tag != SPECIFIC_CHARACTER_SET}


@dataclass(frozen=True)
class FindQuery:
    """A Study Root C-FIND identifier, split between the SQL index and metadata matching."""

    level: str
    request: SearchRequest  # the keys the index holds, as QIDO conditions on core attributes
    residual: matching.IdentifierQuery
    identifier: Dataset


def query_level(identifier: Dataset, allowed: tuple[str, ...] = tuple(RESOURCES)) -> str:
    """QueryRetrieveLevel (0008,0052), required in every Q/R identifier (PS3.4 C.4.1.1.3.1)."""
    level = matching.key_text(identifier, QUERY_RETRIEVE_LEVEL)
    if not level:
        raise BadRequestError("QueryRetrieveLevel (0008,0052) is missing")
    level = level.upper()
    if level not in allowed:
        raise BadRequestError(f"QueryRetrieveLevel '{level}' is not one of {', '.join(allowed)} (Study Root)")
    return level


def parse_find(identifier: Dataset) -> FindQuery:
    """Split the keys of a C-FIND identifier (PS3.4 C.4.1.1.3.1) and add the unique keys to return.

    Keys of levels below the query level are not matched (the hierarchical model has none there, C.4.1.2.1) but
    are returned empty or from the hit's metadata.
    """
    level = query_level(identifier)
    resource = RESOURCES[level]
    result_level = resource.result_level
    index_keys: list[tuple[QueryTag, str]] = []
    skip = {QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET, RETRIEVE_AE_TITLE, INSTANCE_AVAILABILITY}
    for tag in (int(t) for t in identifier.keys()):
        tag_level = _TAG_LEVEL.get(tag, result_level)
        if _DEPTH[tag_level] > _DEPTH[result_level]:
            skip.add(tag)
            continue
        query_tag = CORE_QUERY_TAGS_BY_TAG.get(tag)
        if query_tag is None or query_tag.level not in resource.filter_levels:
            continue
        text = matching.key_text(identifier, tag)
        if text is None:
            continue  # a sequence or binary value: matched (or not) on the metadata
        skip.add(tag)
        if not matching.is_universal(text):
            index_keys.append((query_tag, text))
    residual = matching.parse_identifier(identifier, result_level, skip=skip)
    # Index keys parse as QIDO filters (value trimmed like .NET's String.Trim), after the residual keys: when both
    # are malformed, the residual key is the one reported.
    conditions: list[Condition] = [parse_filter(qt, qt.keyword, trim(text), loose=True) for qt, text in index_keys]
    # The unique keys of the query level and above are always returned, so every answer names its entity.
    returned = copy.deepcopy(identifier)
    for tag in UNIQUE_KEYS[: _DEPTH[result_level] + 1]:
        if tag not in returned:
            returned[tag] = matching.empty_element(tag)
    parsed = ParsedQuery(
        resource=resource,
        conditions=tuple(conditions),
        limit=PAGE_SIZE,
        offset=0,
        fuzzy=False,
        include_all=False,
        include_tags=requested_tags(returned),
        filter_keys={c.tag.tag: c.tag.keyword for c in conditions},
    )
    return FindQuery(level, SearchRequest(parsed), residual, returned)


def requested_tags(identifier: Dataset) -> tuple[int, ...]:
    return tuple(int(t) for t in identifier.keys() if int(t) >> 16 and not (int(t) >> 16) & 1)


async def find_page(search: SearchService, query: FindQuery, offset: int) -> list[dict[str, Any]]:
    """One page of QIDO hits (DICOM JSON with every requested key the metadata has)."""
    request = query.request
    parsed = dataclasses.replace(request.query, offset=offset)
    return await search.search(dataclasses.replace(request, query=parsed), api_major=2)


def answer(query: FindQuery, hit: dict[str, Any], ae_title: str) -> Dataset | None:
    """The response identifier for one hit, or ``None`` when a key matched on the metadata fails."""
    wanted = set(requested_tags(query.identifier))
    candidate = json_to_dataset({k: v for k, v in hit.items() if int(k, 16) in wanted})
    matched = matching.match(query.residual, candidate)
    if matched is None:
        return None
    result = matching.response(query.identifier, candidate, matched)
    result.SpecificCharacterSet = RESPONSE_CHARACTER_SET
    result.QueryRetrieveLevel = query.level
    if RETRIEVE_AE_TITLE in query.identifier:
        result.RetrieveAETitle = ae_title
    if INSTANCE_AVAILABILITY in query.identifier:
        result.InstanceAvailability = "ONLINE"
    return result


# --- C-GET ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    study_uid: str
    series_uid: str | None = None
    sop_uid: str | None = None


def _uids(identifier: Dataset, tag: int, keyword: str, *, required: bool) -> list[str | None]:
    text = matching.key_text(identifier, tag)
    if not text or matching.is_universal(text):
        if required:
            raise BadRequestError(f"{keyword} is required at this QueryRetrieveLevel (PS3.4 C.4.3.1.3.1)")
        return [None]
    uids = [u.strip(" \0") for u in text.split("\\") if u.strip(" \0")]
    for uid in uids:
        if not is_valid_uid(uid):
            raise BadRequestError(f"{keyword} '{uid}' is not a valid UID")
    return list(dict.fromkeys(uids))


def parse_get(identifier: Dataset) -> list[Target]:
    """The instances a C-GET names by unique keys (PS3.4 C.4.3.1.3.1; a list of UIDs at any level)."""
    level = query_level(identifier)
    studies = _uids(identifier, STUDY_INSTANCE_UID, "StudyInstanceUID", required=True)
    series = _uids(identifier, SERIES_INSTANCE_UID, "SeriesInstanceUID", required=level in ("SERIES", "IMAGE"))
    sops = _uids(identifier, SOP_INSTANCE_UID, "SOPInstanceUID", required=level == "IMAGE")
    if level == "STUDY":
        series, sops = [None], [None]
    elif level == "SERIES":
        sops = [None]
    return [Target(st, se, so) for st, se, so in itertools.product(studies, series, sops) if st is not None]


async def instances_for_get(retrieve: RetrieveService, targets: list[Target]) -> list[InstanceRecord]:
    """The stored instances of ``targets`` (none for an unknown UID), each once, in storage order."""
    found: dict[int, InstanceRecord] = {}
    for target in targets:
        try:
            records = await retrieve.instances(
                DEFAULT_PARTITION_KEY, target.study_uid, target.series_uid, target.sop_uid
            )
        except NotFoundError:
            continue
        for record in records:
            found.setdefault(record.watermark, record)
    return [found[w] for w in sorted(found)]


def placeholder(record: InstanceRecord) -> Dataset:
    """A dataset that cannot be sent (no file meta) but names the instance, so a C-STORE sub-operation of an
    unreadable instance fails and is listed in FailedSOPInstanceUIDList (PS3.4 C.4.3.1.3.2)."""
    ds = Dataset()
    if record.sop_class_uid:
        ds.SOPClassUID = record.sop_class_uid
    ds.SOPInstanceUID = record.sop_uid
    return ds
