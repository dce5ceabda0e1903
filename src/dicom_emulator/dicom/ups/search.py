"""Workitem search (azure-behaviour §9.6): the search keys (Azure's ``WorkitemQueryTag.sql``), the query parser
(``WorkitemQueryParser``), the returned attributes (``WorkitemQueryResponseBuilder``) and the index values that
storage matches the parsed conditions against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from dicom_emulator.dicom.indexing import first_value
from dicom_emulator.dicom.json_model import element_view, sequence_items
from dicom_emulator.dicom.query import (
    INCLUDE_FIELD_ALL,
    MSG_DUPLICATE_ATTRIBUTE,
    MSG_DUPLICATE_ATTRIBUTE_ID,
    MSG_DUPLICATE_KEY,
    MSG_EMPTY_VALUE,
    MSG_INCLUDE_ALL_WITH_OTHERS,
    MSG_INCLUDE_FIELD_UNKNOWN,
    Condition,
    normalize_datetime,
    normalize_string,
    parse_qido,
    person_name_words,
)

# The QIDO parser's .NET-compatible primitives (String.Trim, OrdinalIgnoreCase keys, DicomTagParser, the value
# parsers of BaseQueryParser) are exactly what Azure's workitem parser uses too; reuse rather than duplicate them.
from dicom_emulator.dicom.query.attributes import parse_attribute_id
from dicom_emulator.dicom.query.dotnet import fold_key
from dicom_emulator.dicom.query.dotnet import trim as dotnet_trim
from dicom_emulator.dicom.query.values import parse_value
from dicom_emulator.dicom.tags import Level, QueryResource, QueryTag, keyword_tag
from dicom_emulator.dicom.ups.attributes import (
    PATIENT_ID,
    PATIENT_NAME,
    PROCEDURE_STEP_STATE,
    SCHEDULED_PROCEDURE_STEP_START_DATETIME,
    STUDY_INSTANCE_UID,
    TRANSACTION_UID,
)
from dicom_emulator.dicom.ups.messages import (
    MSG_NESTED_SEQUENCE,
    MSG_SEQUENTIAL_TAGS,
    MSG_UNSUPPORTED_SEARCH_PARAMETER,
)
from dicom_emulator.errors import QueryValidationError


@dataclass(frozen=True, slots=True)
class SearchKey:
    """A searchable workitem attribute: a top-level tag or a (sequence, tag) path.

    ``column`` names the index column; ``multiple`` columns hold one value per sequence item (see
    :func:`index_values`).
    """

    path: tuple[int, ...]
    keyword: str
    vr: str
    column: str

    @property
    def tag(self) -> int:
        """The last tag of the path (what Azure's parser keeps as the condition's tag)."""
        return self.path[-1]

    @property
    def multiple(self) -> bool:
        return len(self.path) > 1

    @property
    def query_tag(self) -> QueryTag:
        return QueryTag(self.tag, self.keyword, self.vr, Level.INSTANCE)

    @property
    def hex_path(self) -> str:
        return ".".join(f"{t:08X}" for t in self.path)


# Azure's workitem query tags, in its order (WorkitemQueryTag.sql).
SEARCH_KEYS: tuple[SearchKey, ...] = (
    SearchKey((PATIENT_NAME,), "PatientName", "PN", "patient_name"),
    SearchKey((PATIENT_ID,), "PatientID", "LO", "patient_id"),
    SearchKey((0x0040A370, 0x00080050), "AccessionNumber", "SH", "accession_numbers"),
    SearchKey((0x0040A370, 0x00401001), "RequestedProcedureID", "SH", "requested_procedure_ids"),
    SearchKey(
        (SCHEDULED_PROCEDURE_STEP_START_DATETIME,), "ScheduledProcedureStepStartDateTime", "DT", "scheduled_start"
    ),
    SearchKey((0x00404025, 0x00080100), "CodeValue", "SH", "station_name_codes"),
    SearchKey((0x00404026, 0x00080100), "CodeValue", "SH", "station_class_codes"),
    SearchKey((PROCEDURE_STEP_STATE,), "ProcedureStepState", "CS", "state"),
    SearchKey((0x00404027, 0x00080100), "CodeValue", "SH", "station_location_codes"),
    SearchKey((STUDY_INSTANCE_UID,), "StudyInstanceUID", "UI", "study_uid"),
)
SEARCH_KEYS_BY_PATH: dict[tuple[int, ...], SearchKey] = {key.path: key for key in SEARCH_KEYS}
SEARCH_KEYS_BY_COLUMN: dict[str, SearchKey] = {key.column: key for key in SEARCH_KEYS}

# Workitem attributes with a return key type of 1 or 2, always returned by a search (Azure's RequiredReturnTags,
# from PS3.4 Table CC.2.5-3).
RETURN_TAGS: frozenset[int] = frozenset(
    keyword_tag(keyword)
    for keyword in (
        "SpecificCharacterSet",
        "SOPClassUID",
        "SOPInstanceUID",
        "ScheduledProcedureStepPriority",
        "ProcedureStepLabel",
        "WorklistLabel",
        "ScheduledProcessingParametersSequence",
        "ScheduledStationNameCodeSequence",
        "ScheduledStationClassCodeSequence",
        "ScheduledStationGeographicLocationCodeSequence",
        "ScheduledHumanPerformersSequence",
        "ScheduledProcedureStepStartDateTime",
        "ScheduledWorkitemCodeSequence",
        "InputReadinessState",
        "InputInformationSequence",
        "StudyInstanceUID",
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "IssuerOfPatientIDQualifiersSequence",
        "OtherPatientIDsSequence",
        "PatientBirthDate",
        "PatientSex",
        "AdmissionID",
        "IssuerOfAdmissionIDSequence",
        "AdmittingDiagnosesDescription",
        "AdmittingDiagnosesCodeSequence",
        "ReferencedRequestSequence",
        "MedicalAlerts",
        "PregnancyStatus",
        "SpecialNeeds",
        "ProcedureStepState",
        "ProcedureStepProgressInformationSequence",
    )
)


@dataclass(frozen=True)
class WorkitemQuery:
    """A validated workitem search. Condition values are normalized like the index columns."""

    conditions: tuple[tuple[SearchKey, Condition], ...]
    limit: int
    offset: int
    fuzzy: bool
    include_all: bool
    include_tags: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    offset: int
    fuzzy: bool


_RESERVED = frozenset({"FUZZYMATCHING", "INCLUDEFIELD", "LIMIT", "OFFSET"})


def _split_parameters(
    params: Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[str], list[tuple[str, list[str]]]]:
    """(reserved pairs except includefield, includefield values, filters grouped like ASP.NET ``Request.Query``)."""
    reserved: list[tuple[str, str]] = []
    include: list[str] = []
    groups: dict[str, tuple[str, list[str]]] = {}
    for key, value in params:
        name = fold_key(dotnet_trim(key))
        if name == "INCLUDEFIELD":
            include.append(value)
        elif name in _RESERVED:
            reserved.append((key, value))
        else:
            folded = fold_key(key)
            groups.setdefault(folded, (key, []))[1].append(value)
    return reserved, include, list(groups.values())


def parse_paging(params: Sequence[tuple[str, str]]) -> Paging:
    """Bind and validate ``limit`` (1..200, default 100), ``offset`` and ``fuzzymatching`` exactly as QIDO does
    (Azure's shared ``QueryOptions`` model binding, §4.2); the model-state errors come first."""
    reserved, _, _ = _split_parameters(params)
    parsed = parse_qido(reserved, QueryResource.ALL_STUDIES)
    return Paging(parsed.limit, parsed.offset, parsed.fuzzy)


def _parse_path(attribute_id: str) -> tuple[int, ...] | None:
    """``DicomTagParser.TryParse(..., supportMultiple: true)``: keywords or 8-hex tags joined by '.', at most two."""
    parts = attribute_id.split(".")
    tags = [parse_attribute_id(part) for part in parts]
    if len(parts) > 2:
        raise QueryValidationError(MSG_NESTED_SEQUENCE.format(attribute_id))
    if any(tag is None for tag in tags):
        return None
    return tuple(t for t in tags if t is not None)


def parse_workitem_query(params: Sequence[tuple[str, str]]) -> WorkitemQuery:
    """Validate the decoded query-string pairs of a workitem search (azure-behaviour §9.6).

    Order of checks (Azure): reserved parameters, repeated filter keys, then each filter in query-string order
    (unknown or unsupported attribute → "not queryable", empty value, value syntax, the same attribute twice), then
    ``includefield``. Raises :class:`QueryValidationError` with Azure's message (a plain-text 400).
    """
    paging = parse_paging(params)
    _, include_values, groups = _split_parameters(params)

    filters: dict[str, str] = {}
    for key, values in groups:
        attribute_id = dotnet_trim(key)
        if len(values) > 1:
            raise QueryValidationError(MSG_DUPLICATE_ATTRIBUTE_ID.format(attribute_id))
        if attribute_id in filters:
            raise QueryValidationError(MSG_DUPLICATE_KEY.format(attribute_id))
        filters[attribute_id] = dotnet_trim(values[0])

    conditions: dict[tuple[int, ...], tuple[SearchKey, Condition]] = {}
    for attribute_id, value in filters.items():
        path = _parse_path(attribute_id)
        search_key = SEARCH_KEYS_BY_PATH.get(path) if path is not None else None
        if search_key is None:
            raise QueryValidationError(MSG_UNSUPPORTED_SEARCH_PARAMETER.format(attribute_id))
        if not value.strip():
            raise QueryValidationError(MSG_EMPTY_VALUE.format(attribute_id))
        condition = parse_value(search_key.query_tag, value, paging.fuzzy, False)
        if condition is None:  # pragma: no cover - every search key has a value parser
            raise QueryValidationError(MSG_UNSUPPORTED_SEARCH_PARAMETER.format(attribute_id))
        if search_key.path in conditions:
            raise QueryValidationError(MSG_DUPLICATE_ATTRIBUTE.format(attribute_id))
        conditions[search_key.path] = (search_key, condition)

    fields = [dotnet_trim(part) for value in include_values for part in value.split(",")]
    include_all = False
    include_tags: list[int] = []
    if any(f.lower() == INCLUDE_FIELD_ALL for f in fields):
        if len(fields) > 1:
            raise QueryValidationError(MSG_INCLUDE_ALL_WITH_OTHERS)
        include_all = True
    else:
        for field in fields:
            path = _parse_path(field) if field.strip() else None
            if path is None:
                raise QueryValidationError(MSG_INCLUDE_FIELD_UNKNOWN.format(field))
            if len(path) > 1:
                raise QueryValidationError(MSG_SEQUENTIAL_TAGS)
            if path[0] not in include_tags:
                include_tags.append(path[0])

    return WorkitemQuery(
        conditions=tuple(conditions.values()),
        limit=paging.limit,
        offset=paging.offset,
        fuzzy=paging.fuzzy,
        include_all=include_all,
        include_tags=tuple(include_tags),
    )


def search_result(metadata: Mapping[str, Any], query: WorkitemQuery) -> dict[str, Any]:
    """One search hit as returned (Azure's ``GenerateResponseDataset``): never the Transaction UID; everything
    with ``includefield=all``; else the required return keys, the included fields and the filtered attributes."""
    hidden = f"{TRANSACTION_UID:08X}"
    if query.include_all:
        return {k: v for k, v in metadata.items() if k != hidden}
    wanted = set(RETURN_TAGS) | set(query.include_tags) | {key.tag for key, _ in query.conditions}
    return {k: v for k, v in metadata.items() if k != hidden and int(k, 16) in wanted}


# --- Index values -------------------------------------------------------------------------------------------------

LIST_DELIMITER = "\\"  # cannot occur inside an SH/LO value (PS3.5 6.2: it separates values)


def _sequence_values(ds: Dataset, path: tuple[int, ...], vr: str) -> str | None:
    """The normalized first value of ``path[1]`` in every item of ``path[0]``, as ``\\A\\B\\`` (Azure indexes one
    row per item, so any item can match)."""
    values: list[str] = []
    for item in sequence_items(ds, path[0]):
        view = element_view(item, path[1])
        if view is None or not view.values:
            continue
        text = str(view.values[0])
        if text.rstrip(" \0"):
            values.append(normalize_string(text, vr))
    if not values:
        return None
    return LIST_DELIMITER + LIST_DELIMITER.join(dict.fromkeys(values)) + LIST_DELIMITER


def index_values(ds: Dataset) -> dict[str, str | None]:
    """Index column values of a workitem (names match ``storage.models.Workitem``), normalized like the search
    condition values of :func:`parse_workitem_query` so that storage compares with equality, ranges or LIKE."""
    patient_name = first_value(ds, "PatientName")
    start = first_value(ds, "ScheduledProcedureStepStartDateTime")
    values: dict[str, str | None] = {
        "patient_name": None if patient_name is None else normalize_string(patient_name, "PN"),
        # Space-led word list (" JOHN DOE") so a fuzzy word is one "LIKE '% WORD%'" (azure-behaviour §4.4).
        "patient_name_words": None
        if patient_name is None
        else ("".join(f" {w}" for w in person_name_words(patient_name)) or None),
        "scheduled_start": None if start is None else normalize_datetime(start),
    }
    for key in SEARCH_KEYS:
        if key.column in ("patient_name", "scheduled_start", "state"):
            continue
        if key.multiple:
            values[key.column] = _sequence_values(ds, key.path, key.vr)
        else:
            value = first_value(ds, key.keyword)
            values[key.column] = None if value is None else normalize_string(value, key.vr)
    return values
