"""Core indexed tags, query levels and the QIDO returned-attribute sets (azure-behaviour §4.3, §4.6);
tag naming helpers."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pydicom.datadict import tag_for_keyword


class Level(enum.StrEnum):
    """Resource level at which an attribute is indexed and matched."""

    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


class QueryResource(enum.Enum):
    """The six QIDO routes (azure-behaviour §4.1)."""

    ALL_STUDIES = "all-studies"
    ALL_SERIES = "all-series"
    ALL_INSTANCES = "all-instances"
    STUDY_SERIES = "study-series"
    STUDY_INSTANCES = "study-instances"
    SERIES_INSTANCES = "series-instances"

    @property
    def result_level(self) -> Level:
        if self is QueryResource.ALL_STUDIES:
            return Level.STUDY
        if self in (QueryResource.ALL_SERIES, QueryResource.STUDY_SERIES):
            return Level.SERIES
        return Level.INSTANCE

    @property
    def filter_levels(self) -> frozenset[Level]:
        """Levels whose attributes may be filtered on for this route (the X columns of azure-behaviour §4.3)."""
        return _FILTER_LEVELS[self]

    @property
    def return_levels(self) -> tuple[Level, ...]:
        """Levels whose default attribute sets are returned (azure-behaviour §4.6)."""
        return _RETURN_LEVELS[self]


_FILTER_LEVELS = {
    QueryResource.ALL_STUDIES: frozenset({Level.STUDY}),
    QueryResource.ALL_SERIES: frozenset({Level.STUDY, Level.SERIES}),
    QueryResource.ALL_INSTANCES: frozenset({Level.STUDY, Level.SERIES, Level.INSTANCE}),
    QueryResource.STUDY_SERIES: frozenset({Level.SERIES}),
    QueryResource.STUDY_INSTANCES: frozenset({Level.SERIES, Level.INSTANCE}),
    QueryResource.SERIES_INSTANCES: frozenset({Level.INSTANCE}),
}

_RETURN_LEVELS = {
    QueryResource.ALL_STUDIES: (Level.STUDY,),
    QueryResource.ALL_SERIES: (Level.STUDY, Level.SERIES),
    QueryResource.ALL_INSTANCES: (Level.STUDY, Level.SERIES, Level.INSTANCE),
    QueryResource.STUDY_SERIES: (Level.SERIES,),
    QueryResource.STUDY_INSTANCES: (Level.SERIES, Level.INSTANCE),
    QueryResource.SERIES_INSTANCES: (Level.INSTANCE,),
}


@dataclass(frozen=True, slots=True)
class QueryTag:
    """An attribute QIDO can filter on: a core tag or a ready extended query tag."""

    tag: int
    keyword: str
    vr: str
    level: Level
    extended: bool = False

    @property
    def hex(self) -> str:
        return f"{self.tag:08X}"


STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E
SOP_INSTANCE_UID = 0x00080018
SOP_CLASS_UID = 0x00080016
PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
MODALITIES_IN_STUDY = 0x00080061
MODALITY = 0x00080060
NUMBER_OF_STUDY_RELATED_INSTANCES = 0x00201208
NUMBER_OF_SERIES_RELATED_INSTANCES = 0x00201209

# azure-behaviour §4.3: the core QIDO attributes, in Azure's order.
CORE_QUERY_TAGS: tuple[QueryTag, ...] = (
    QueryTag(STUDY_INSTANCE_UID, "StudyInstanceUID", "UI", Level.STUDY),
    QueryTag(PATIENT_NAME, "PatientName", "PN", Level.STUDY),
    QueryTag(PATIENT_ID, "PatientID", "LO", Level.STUDY),
    QueryTag(0x00100030, "PatientBirthDate", "DA", Level.STUDY),
    QueryTag(0x00080050, "AccessionNumber", "SH", Level.STUDY),
    QueryTag(0x00080090, "ReferringPhysicianName", "PN", Level.STUDY),
    QueryTag(0x00080020, "StudyDate", "DA", Level.STUDY),
    QueryTag(0x00081030, "StudyDescription", "LO", Level.STUDY),
    QueryTag(MODALITIES_IN_STUDY, "ModalitiesInStudy", "CS", Level.STUDY),
    QueryTag(SERIES_INSTANCE_UID, "SeriesInstanceUID", "UI", Level.SERIES),
    QueryTag(MODALITY, "Modality", "CS", Level.SERIES),
    QueryTag(0x00400244, "PerformedProcedureStepStartDate", "DA", Level.SERIES),
    QueryTag(0x00081090, "ManufacturerModelName", "LO", Level.SERIES),
    QueryTag(SOP_INSTANCE_UID, "SOPInstanceUID", "UI", Level.INSTANCE),
)
CORE_QUERY_TAGS_BY_TAG: dict[int, QueryTag] = {t.tag: t for t in CORE_QUERY_TAGS}

# azure-behaviour §4.6: default returned attributes per level and API major version.
V2_DEFAULT_TAGS: dict[Level, tuple[int, ...]] = {
    Level.STUDY: (
        0x0020000D,
        0x00080020,
        0x00081030,
        0x00080050,
        0x00080090,
        0x00100010,
        0x00100020,
        0x00100030,
    ),
    Level.SERIES: (0x0020000E, 0x00080060, 0x00400244, 0x00081090),
    Level.INSTANCE: (0x00080018,),
}
V1_DEFAULT_TAGS: dict[Level, tuple[int, ...]] = {
    Level.STUDY: (
        0x00080005, 0x00080020, 0x00080030, 0x00080050, 0x00080056, 0x00080090, 0x00080201,
        0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x0020000D, 0x00200010,
    ),
    Level.SERIES: (0x00080005, 0x00080060, 0x00080201, 0x0008103E, 0x0020000E, 0x00400244, 0x00400245, 0x00400275),
    Level.INSTANCE: (
        0x00080005, 0x00080016, 0x00080018, 0x00080056, 0x00080201, 0x00200013,
        0x00280010, 0x00280011, 0x00280100, 0x00280008,
    ),
}  # fmt: skip
# includefield=all: v1 defaults plus these (both versions; it replaces the v2 defaults).
ALL_EXTRA_TAGS: dict[Level, tuple[int, ...]] = {
    Level.STUDY: (
        0x00081030, 0x00080063, 0x00081032, 0x00081060, 0x00081080, 0x00081110,
        0x00101010, 0x00101020, 0x00101030, 0x00102180, 0x001021B0,
    ),
    Level.SERIES: (0x00200011, 0x00200060, 0x00080021, 0x00080031),
    Level.INSTANCE: (),
}  # fmt: skip

# Tags whose values come from the level itself rather than the stored instance metadata.
COMPUTED_TAGS: dict[int, Level] = {
    NUMBER_OF_STUDY_RELATED_INSTANCES: Level.STUDY,
    NUMBER_OF_SERIES_RELATED_INSTANCES: Level.SERIES,
    MODALITIES_IN_STUDY: Level.STUDY,
}


def _tag_levels() -> dict[int, Level]:
    levels: dict[int, Level] = {}
    for level in (Level.INSTANCE, Level.SERIES, Level.STUDY):
        for table in (V1_DEFAULT_TAGS, V2_DEFAULT_TAGS, ALL_EXTRA_TAGS):
            for tag in table[level]:
                levels[tag] = level
    for query_tag in CORE_QUERY_TAGS_BY_TAG.values():
        levels[query_tag.tag] = query_tag.level
    return levels


# Which level's stored metadata supplies a returned attribute (study attributes come from the study's latest
# instance, series attributes from the series' latest instance: "latest wins", §4.5), from the tables
# above: a tag
# listed at several levels belongs to the highest, and a core query tag to its own level.
TAG_LEVELS: dict[int, Level] = _tag_levels()


def default_return_tags(level: Level, api_major: int, include_all: bool) -> tuple[int, ...]:
    """Attributes returned at ``level`` before includefield/filters are added (azure-behaviour §4.6)."""
    if include_all:
        return V1_DEFAULT_TAGS[level] + ALL_EXTRA_TAGS[level]
    return (V1_DEFAULT_TAGS if api_major == 1 else V2_DEFAULT_TAGS)[level]


def keyword_tag(keyword: str) -> int:
    """The tag of a data dictionary keyword (PS3.6 Table 6-1); ``KeyError`` for an unknown one (a programming
    error: callers pass literal keywords)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return int(tag)


def tag_text(tag: int) -> str:
    """fo-dicom's ``DicomTag.ToString()``: ``(gggg,eeee)`` in lower-case hex, as Azure prints tags in messages."""
    return f"({tag >> 16:04x},{tag & 0xFFFF:04x})"
