"""Unit tests of QIDO query parsing (azure-behaviour §4.2-§4.4) and the shared value normalization."""

from __future__ import annotations

import pytest

from dicom_emulator.dicom.query import (
    DateRange,
    FuzzyName,
    ParsedQuery,
    SingleValue,
    UidList,
    Wildcard,
    normalize_date,
    normalize_datetime,
    normalize_string,
    normalize_time,
    parse_qido,
    person_name_words,
)
from dicom_emulator.dicom.tags import CORE_QUERY_TAGS_BY_TAG, Level, QueryResource, QueryTag
from dicom_emulator.errors import BadRequestError, QueryValidationError

R = QueryResource
CORE = {t.keyword: t for t in CORE_QUERY_TAGS_BY_TAG.values()}

# Extended query tags used by the tests (azure-behaviour §7: any supported VR at any level).
EQT_DT = QueryTag(0x0008002A, "AcquisitionDateTime", "DT", Level.INSTANCE, extended=True)
EQT_TM = QueryTag(0x00080030, "StudyTime", "TM", Level.STUDY, extended=True)
EQT_AS = QueryTag(0x00101010, "PatientAge", "AS", Level.STUDY, extended=True)
EQT_CS = QueryTag(0x00100040, "PatientSex", "CS", Level.STUDY, extended=True)
EQT_US = QueryTag(0x00280010, "Rows", "US", Level.INSTANCE, extended=True)
EQT_SL = QueryTag(0x00186020, "ReferencePixelX0", "SL", Level.INSTANCE, extended=True)
EQT_FD = QueryTag(0x00189087, "DiffusionBValue", "FD", Level.INSTANCE, extended=True)
EQT_FL = QueryTag(0x00181318, "dBdt", "DS", Level.INSTANCE, extended=True)  # DS: string VR in Azure
EQT_UI = QueryTag(0x00080016, "SOPClassUID", "UI", Level.INSTANCE, extended=True)
EQT_PN = QueryTag(0x00081070, "OperatorsName", "PN", Level.SERIES, extended=True)
EQT_PRIVATE = QueryTag(0x12051001, "", "LO", Level.SERIES, extended=True)
EQT_SERIES_DATE = QueryTag(0x00080021, "SeriesDate", "DA", Level.SERIES, extended=True)
EQT_LT = QueryTag(0x00204000, "ImageComments", "LT", Level.INSTANCE, extended=True)
EQT_SQ = QueryTag(0x00081115, "ReferencedSeriesSequence", "SQ", Level.STUDY, extended=True)
ALL_EQT = (EQT_DT, EQT_TM, EQT_AS, EQT_CS, EQT_US, EQT_SL, EQT_FD, EQT_FL, EQT_UI, EQT_PN, EQT_PRIVATE, EQT_LT)

UNKNOWN = (
    "Invalid query: unknown query parameter '{0}'. If the parameter is an attribute keyword, check the casing as "
    "they are case-sensitive. The conformance statement has a list of supported query parameters, attributes and "
    "the levels."
)
NOT_QUERYABLE = (
    "Invalid query: AttributeId {0} is not queryable.  If the parameter is an attribute keyword, check the casing "
    "as they are case-sensitive. The conformance statement has a list of supported query parameters, attributes "
    "and the levels."
)
BOTH_EMPTY = (
    "Invalid query: specified range is invalid.\n"
    "Both parts in the range cannot be empty.\n"
    "For details on valid range queries, please refer to Search Matching section in Conformance Statement "
    "(https://github.com/microsoft/dicom-server/blob/main/docs/resources/conformance-statement.md#search-matching)."
)
UID_INVALID = (
    "Dicom element '{0}' failed validation for VR 'UI': DICOM Identifier is invalid. "
    "Value length should not exceed the maximum length of 64 characters. "
    "Value should contain characters in '0'-'9' and '.'. "
    "Each component must start with non-zero number."
)


def parse(params: list[tuple[str, str]], resource: QueryResource = R.ALL_INSTANCES, **kwargs: object) -> ParsedQuery:
    kwargs.setdefault("extended_tags", ALL_EQT)
    return parse_qido(params, resource, **kwargs)  # type: ignore[arg-type]


def error_of(params: list[tuple[str, str]], resource: QueryResource = R.ALL_INSTANCES, **kwargs: object) -> str:
    with pytest.raises(QueryValidationError) as info:
        parse(params, resource, **kwargs)
    return info.value.message


def only(params: list[tuple[str, str]], resource: QueryResource = R.ALL_INSTANCES, **kwargs: object) -> object:
    parsed = parse(params, resource, **kwargs)
    assert len(parsed.conditions) == 1
    return parsed.conditions[0]


# ---------------------------------------------------------------------------------------------------------------
# Defaults and reserved parameters (azure-behaviour §4.2)
# ---------------------------------------------------------------------------------------------------------------


def test_defaults() -> None:
    parsed = parse_qido([], R.ALL_STUDIES)
    assert parsed == ParsedQuery(R.ALL_STUDIES, (), 100, 0, False, False, (), {})


def test_query_validation_error_is_a_bad_request() -> None:
    assert issubclass(QueryValidationError, BadRequestError)


@pytest.mark.parametrize(
    ("params", "limit", "offset", "fuzzy"),
    [
        ([("limit", "1")], 1, 0, False),
        ([("limit", "200")], 200, 0, False),
        ([("LIMIT", "7"), ("Offset", "3")], 7, 3, False),
        ([("Limit", " 12 ")], 12, 0, False),
        ([("limit", "+5")], 5, 0, False),
        ([("limit", "0x10")], 16, 0, False),  # Int32Converter hex forms
        ([("limit", "#A")], 10, 0, False),
        ([("limit", "5"), ("limit", "abc")], 5, 0, False),  # first value is bound
        ([("offset", "0")], 100, 0, False),
        ([("offset", "9223372036854775807")], 100, 9223372036854775807, False),
        ([("fuzzymatching", "true")], 100, 0, True),
        ([("FuzzyMatching", "TRUE")], 100, 0, True),
        ([("fuzzyMatching", " False ")], 100, 0, False),
        ([("fuzzymatching", "false")], 100, 0, False),
    ],
)
def test_reserved_parameters(params: list[tuple[str, str]], limit: int, offset: int, fuzzy: bool) -> None:
    parsed = parse(params)
    assert (parsed.limit, parsed.offset, parsed.fuzzy, parsed.conditions) == (limit, offset, fuzzy, ())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("limit", "0")], "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
        ([("limit", "201")], "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
        ([("limit", "-1")], "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
        ([("Limit", "abc")], "The query parameter 'Limit' is invalid. The value 'abc' is not valid for Limit."),
        ([("limit", "1.5")], "The query parameter 'Limit' is invalid. The value '1.5' is not valid for Limit."),
        (
            [("limit", "2147483648")],
            "The query parameter 'Limit' is invalid. The value '2147483648' is not valid for Limit.",
        ),
        (
            [("limit", "abc"), ("LIMIT", "5")],
            "The query parameter 'Limit' is invalid. The value 'abc,5' is not valid for Limit.",
        ),
        ([("limit", "")], "The query parameter 'Limit' is invalid. The value '' is invalid."),
        (
            [("offset", "-1")],
            "The query parameter 'Offset' is invalid. The field Offset must be between 0 and 9.223372036854776E+18.",
        ),
        ([("offset", "x")], "The query parameter 'Offset' is invalid. The value 'x' is not valid for Offset."),
        (
            [("offset", "9223372036854775808")],
            "The query parameter 'Offset' is invalid. The value '9223372036854775808' is not valid for Offset.",
        ),
        ([("offset", " ")], "The query parameter 'Offset' is invalid. The value ' ' is invalid."),
        (
            [("fuzzymatching", "yes")],
            "The query parameter 'FuzzyMatching' is invalid. The value 'yes' is not valid for FuzzyMatching.",
        ),
        (
            [("fuzzymatching", "1")],
            "The query parameter 'FuzzyMatching' is invalid. The value '1' is not valid for FuzzyMatching.",
        ),
        ([("fuzzymatching", "")], "The query parameter 'FuzzyMatching' is invalid. The value '' is invalid."),
        # Model-state errors come first, in key order FuzzyMatching, Limit, Offset.
        (
            [("offset", "-1"), ("limit", "0"), ("PatientName", "")],
            "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200.",
        ),
        (
            [("limit", "0"), ("fuzzymatching", "x")],
            "The query parameter 'FuzzyMatching' is invalid. The value 'x' is not valid for FuzzyMatching.",
        ),
    ],
)
def test_reserved_parameter_errors(params: list[tuple[str, str]], message: str) -> None:
    assert error_of(params) == message


# ---------------------------------------------------------------------------------------------------------------
# Filter keys (azure-behaviour §4.3)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "keyword"),
    [
        ("PatientName", "PatientName"),
        ("00100010", "PatientName"),
        ("0020000d", "StudyInstanceUID"),
        ("0020000D", "StudyInstanceUID"),
        ("00080061", "ModalitiesInStudy"),
        (" Modality ", "Modality"),  # keys are trimmed
    ],
)
def test_keyword_or_hex_key(key: str, keyword: str) -> None:
    parsed = parse([(key, "X1")])
    condition = parsed.conditions[0]
    assert isinstance(condition, SingleValue)
    assert condition.tag == CORE[keyword]
    assert parsed.filter_keys == {CORE[keyword].tag: key.strip()}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("patientname", "x")], UNKNOWN.format("patientname")),  # keywords are case-sensitive
        ([("PATIENTNAME", "x")], UNKNOWN.format("PATIENTNAME")),
        ([("unknownparam", "x")], UNKNOWN.format("unknownparam")),
        ([("12345678", "x")], UNKNOWN.format("12345678")),  # not in the dictionary
        ([("0010001", "x")], UNKNOWN.format("0010001")),  # not 8 characters
        ([("0010001G", "x")], UNKNOWN.format("0010001G")),
        ([("", "x")], UNKNOWN.format("")),
        (
            [("ReferencedSeriesSequence.SeriesInstanceUID", "1")],
            "Dicom element 'ReferencedSeriesSequence.SeriesInstanceUID' failed validation for VR 'SQ': "
            "Sequential dicom tags are currently not supported.",
        ),
        (
            [("foo.bar", "1")],
            "Dicom element 'foo.bar' failed validation for VR 'SQ': Sequential dicom tags are currently not supported.",
        ),
        (
            [("PatientName", "")],
            "Invalid query: AttributeId 'PatientName' has empty string value that is not supported.",
        ),
        (
            [("StudyDescription", "   ")],
            "Invalid query: AttributeId 'StudyDescription' has empty string value that is not supported.",
        ),
        (
            [("PatientName", "a"), ("PatientName", "b")],
            "Invalid QIDO-RS query. Duplicate AttributeId 'PatientName'. Each attribute is only allowed to be "
            "specified once.",
        ),
        (  # keys are grouped case-insensitively like ASP.NET's Request.Query; the first spelling is reported
            [("Modality", "CT"), ("modality", "MR")],
            "Invalid QIDO-RS query. Duplicate AttributeId 'Modality'. Each attribute is only allowed to be "
            "specified once.",
        ),
        (
            [("0020000d", "1"), ("0020000D", "2")],
            "Invalid QIDO-RS query. Duplicate AttributeId '0020000d'. Each attribute is only allowed to be "
            "specified once.",
        ),
        (  # a repeated key is rejected before any value is parsed
            [("StudyDate", "bad"), ("Modality", "CT"), ("Modality", "MR")],
            "Invalid QIDO-RS query. Duplicate AttributeId 'Modality'. Each attribute is only allowed to be "
            "specified once.",
        ),
        (
            [("PatientName", "a"), ("00100010", "b")],
            "Invalid query: attribute '00100010' has been specified more than once using different ID formats. "
            "Each attribute is only allowed to be specified once.",
        ),
        (
            [("00100010", "a"), ("PatientName", "b")],
            "Invalid query: attribute 'PatientName' has been specified more than once using different ID formats. "
            "Each attribute is only allowed to be specified once.",
        ),
        (
            [("PatientName", "a"), (" PatientName", "b")],
            "An item with the same key has already been added. Key: PatientName",
        ),
        # Errors surface in query-string order.
        (
            [("Modality", ""), ("nope", "1")],
            "Invalid query: AttributeId 'Modality' has empty string value that is not supported.",
        ),
        ([("nope", "1"), ("Modality", "")], UNKNOWN.format("nope")),
        (  # keyword + hex with an empty second value: the empty value is reported, not the duplicate
            [("PatientName", "a"), ("00100010", "")],
            "Invalid query: AttributeId '00100010' has empty string value that is not supported.",
        ),
    ],
)
def test_filter_key_errors(params: list[tuple[str, str]], message: str) -> None:
    assert error_of(params) == message


# azure-behaviour §4.3 table: which core attributes each resource filters on.
_LEVEL_OF = {
    "StudyInstanceUID": Level.STUDY,
    "PatientName": Level.STUDY,
    "PatientID": Level.STUDY,
    "PatientBirthDate": Level.STUDY,
    "AccessionNumber": Level.STUDY,
    "ReferringPhysicianName": Level.STUDY,
    "StudyDate": Level.STUDY,
    "StudyDescription": Level.STUDY,
    "ModalitiesInStudy": Level.STUDY,
    "SeriesInstanceUID": Level.SERIES,
    "Modality": Level.SERIES,
    "PerformedProcedureStepStartDate": Level.SERIES,
    "ManufacturerModelName": Level.SERIES,
    "SOPInstanceUID": Level.INSTANCE,
}
_ALLOWED = {
    R.ALL_STUDIES: {Level.STUDY},
    R.ALL_SERIES: {Level.STUDY, Level.SERIES},
    R.ALL_INSTANCES: {Level.STUDY, Level.SERIES, Level.INSTANCE},
    R.STUDY_SERIES: {Level.SERIES},
    R.STUDY_INSTANCES: {Level.SERIES, Level.INSTANCE},
    R.SERIES_INSTANCES: {Level.INSTANCE},
}
_SAMPLE = {"DA": "20200101", "PN": "Doe", "UI": "1.2.3"}


@pytest.mark.parametrize("resource", list(R))
@pytest.mark.parametrize("keyword", list(_LEVEL_OF))
def test_core_attribute_levels(resource: QueryResource, keyword: str) -> None:
    value = _SAMPLE.get(CORE[keyword].vr, "X")
    route = {"route_has_study": resource in (R.STUDY_SERIES, R.STUDY_INSTANCES, R.SERIES_INSTANCES)}
    route["route_has_series"] = resource is R.SERIES_INSTANCES
    if _LEVEL_OF[keyword] in _ALLOWED[resource]:
        parsed = parse([(keyword, value)], resource, **route)
        assert [c.tag for c in parsed.conditions] == [CORE[keyword]]  # type: ignore[union-attr]
    else:
        assert error_of([(keyword, value)], resource, **route) == NOT_QUERYABLE.format(keyword)


@pytest.mark.parametrize(
    ("key", "resource"),
    [
        ("Modality", R.ALL_STUDIES),
        ("SOPInstanceUID", R.ALL_SERIES),
        ("PatientName", R.STUDY_SERIES),
        ("Modality", R.SERIES_INSTANCES),
        ("00080060", R.ALL_STUDIES),  # the key is reported as sent
        ("StudyTime", R.ALL_STUDIES),  # a dictionary tag that is neither core nor extended
        ("00201208", R.ALL_STUDIES),  # NumberOfStudyRelatedInstances is returned, not filterable
        ("12051002", R.ALL_INSTANCES),  # private tags always parse; not queryable unless extended
        ("Rows", R.ALL_SERIES),  # extended tag at the instance level
        ("OperatorsName", R.ALL_STUDIES),  # extended tag at the series level
    ],
)
def test_not_queryable(key: str, resource: QueryResource) -> None:
    extended = () if key == "StudyTime" else ALL_EQT
    assert error_of([(key, "1")], resource, extended_tags=extended) == NOT_QUERYABLE.format(key)


def test_route_uid_in_query_is_not_queryable_at_route_levels() -> None:
    # With the azure-behaviour §4.3 levels, a UID already in the route is not a candidate, so "not queryable" wins.
    assert error_of([("StudyInstanceUID", "1.2")], R.STUDY_SERIES, route_has_study=True) == NOT_QUERYABLE.format(
        "StudyInstanceUID"
    )
    assert error_of(
        [("SeriesInstanceUID", "1.2")], R.SERIES_INSTANCES, route_has_study=True, route_has_series=True
    ) == NOT_QUERYABLE.format("SeriesInstanceUID")


@pytest.mark.parametrize(
    ("params", "kwargs", "message"),
    [
        (
            [("StudyInstanceUID", "1.2")],
            {"route_has_study": True},
            "Invalid query: cannot specify attribute 'StudyInstanceUID' for the given resource. ",
        ),
        (
            [("SeriesInstanceUID", "1.2")],
            {"route_has_series": True},
            "Invalid query: cannot specify attribute 'SeriesInstanceUID' for the given resource.",
        ),
        (
            [("SeriesInstanceUID", "1.2"), ("StudyInstanceUID", "1.3")],
            {"route_has_study": True, "route_has_series": True},
            "Invalid query: cannot specify attribute 'StudyInstanceUID' for the given resource. ",
        ),
    ],
)
def test_route_uid_guard(params: list[tuple[str, str]], kwargs: dict[str, bool], message: str) -> None:
    assert error_of(params, R.ALL_INSTANCES, **kwargs) == message


def test_series_uid_allowed_on_study_instances_route() -> None:
    condition = only([("SeriesInstanceUID", "1.2.3")], R.STUDY_INSTANCES, route_has_study=True)
    assert condition == SingleValue(CORE["SeriesInstanceUID"], "1.2.3")


# ---------------------------------------------------------------------------------------------------------------
# Extended query tags (azure-behaviour §7.5)
# ---------------------------------------------------------------------------------------------------------------


def test_extended_tags_by_keyword_hex_and_private_hex() -> None:
    parsed = parse([("PatientSex", "m"), ("00101010", "030Y"), ("12051001", "abc")], R.ALL_SERIES)
    assert parsed.conditions == (
        SingleValue(EQT_CS, "M"),
        SingleValue(EQT_AS, "030Y"),
        SingleValue(EQT_PRIVATE, "ABC"),
    )
    assert parsed.filter_keys == {0x00100040: "PatientSex", 0x00101010: "00101010", 0x12051001: "12051001"}


def test_extended_tag_not_passed_is_not_queryable() -> None:
    assert error_of([("PatientSex", "M")], R.ALL_STUDIES, extended_tags=()) == NOT_QUERYABLE.format("PatientSex")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("PatientSex", "M")], "Query is disabled on specified attribute 'PatientSex'."),
        ([("00100040", "M")], "Query is disabled on specified attribute '00100040'."),
        ([("PatientSex", "")], "Query is disabled on specified attribute 'PatientSex'."),  # before the empty check
    ],
)
def test_disabled_extended_tag(params: list[tuple[str, str]], message: str) -> None:
    assert error_of(params, R.ALL_STUDIES, disabled_extended_tags={EQT_CS.tag}) == message


def test_disabled_check_ignores_core_tags_and_wrong_levels() -> None:
    # A core tag cannot be disabled; a disabled tag at a level this resource does not filter is "not queryable".
    assert parse([("PatientName", "x")], R.ALL_STUDIES, disabled_extended_tags={0x00100010}).conditions
    message = error_of([("Rows", "1")], R.ALL_SERIES, disabled_extended_tags={EQT_US.tag})
    assert message == NOT_QUERYABLE.format("Rows")


def test_unsupported_vr_is_unknown_parameter() -> None:
    extended = (*ALL_EQT, EQT_SQ)
    assert error_of([("ReferencedSeriesSequence", "x")], extended_tags=extended) == UNKNOWN.format(
        "ReferencedSeriesSequence"
    )


# ---------------------------------------------------------------------------------------------------------------
# includefield (azure-behaviour §4.2)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "include_all", "tags"),
    [
        ([("includefield", "all")], True, ()),
        ([("IncludeField", "ALL")], True, ()),
        ([("includefield", " All ")], True, ()),
        ([("includefield", "StudyTime")], False, (0x00080030,)),
        ([("includefield", "00100020,00100010")], False, (0x00100020, 0x00100010)),
        (
            [("includefield", "StudyDate, StudyTime"), ("INCLUDEFIELD", "00201208")],
            False,
            (0x00080020, 0x00080030, 0x00201208),
        ),
        ([("includefield", "12050010")], False, (0x12050010,)),  # private tags
        ([("includefield", "12051001")], False, (0x12051001,)),
        ([("includefield", "0020000d,StudyInstanceUID")], False, (0x0020000D,)),
        ([("includefield", "OverlayData")], False, (0x60003000,)),  # repeating group, first group
        ([("includefield", "60023000")], False, (0x60023000,)),
    ],
)  # fmt: skip
def test_includefield(params: list[tuple[str, str]], include_all: bool, tags: tuple[int, ...]) -> None:
    parsed = parse(params)
    assert (parsed.include_all, parsed.include_tags) == (include_all, tags)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("includefield", "all,StudyDate")], "Invalid query: cannot specify included fields in addition to 'all'."),
        (
            [("includefield", "StudyDate"), ("includefield", "all")],
            "Invalid query: cannot specify included fields in addition to 'all'.",
        ),
        ([("includefield", "all,all")], "Invalid query: cannot specify included fields in addition to 'all'."),
        ([("includefield", "12345678")], "Invalid query: IncludeField has unknown attribute '12345678'."),
        ([("includefield", "98765432")], "Invalid query: IncludeField has unknown attribute '98765432'."),
        ([("includefield", "studydate")], "Invalid query: IncludeField has unknown attribute 'studydate'."),
        ([("includefield", "StudyDate,")], "Invalid query: IncludeField has unknown attribute ''."),
        ([("includefield", "")], "Invalid query: IncludeField has unknown attribute ''."),
        (
            [("includefield", "ReferencedSeriesSequence.SeriesInstanceUID")],
            "Dicom element 'ReferencedSeriesSequence.SeriesInstanceUID' failed validation for VR 'SQ': "
            "Sequential dicom tags are currently not supported.",
        ),
        # Filters are parsed before includefield.
        (
            [("includefield", "nope"), ("Modality", "")],
            "Invalid query: AttributeId 'Modality' has empty string value that is not supported.",
        ),
    ],
)  # fmt: skip
def test_includefield_errors(params: list[tuple[str, str]], message: str) -> None:
    assert error_of(params) == message


# ---------------------------------------------------------------------------------------------------------------
# Matching: strings (azure-behaviour §4.4)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loose", [False, True])
@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("PatientID", "abc-12", "ABC-12"),
        ("PatientID", "  padded  ", "PADDED"),  # Azure trims query values
        ("PatientName", "Jöhn^Doé", "JOHN^DOE"),  # PN is accent-insensitive
        ("StudyDescription", "Étude", "ÉTUDE"),  # other strings keep accents
        ("Modality", "ct", "CT"),
        ("ModalitiesInStudy", "mr", "MR"),
        ("AccessionNumber", "a\\b", "A\\B"),
        ("StudyInstanceUID", "1.2.840.1", "1.2.840.1"),
        ("PatientAge", "030Y", "030Y"),
        ("dBdt", "1.50", "1.50"),  # DS is a string VR for QIDO
    ],
)
def test_string_exact(key: str, value: str, expected: str, loose: bool) -> None:
    condition = only([(key, value)], loose=loose)
    assert isinstance(condition, SingleValue)
    assert condition.value == expected
    assert condition.tag.keyword == key


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("PatientName", "Do*", SingleValue(CORE["PatientName"], "DO*")),
        ("PatientID", "a?c", SingleValue(CORE["PatientID"], "A?C")),
        ("StudyInstanceUID", "1.2,1.3", SingleValue(CORE["StudyInstanceUID"], "1.2,1.3")),
        ("SOPInstanceUID", "1.2\\1.3", SingleValue(CORE["SOPInstanceUID"], "1.2\\1.3")),
        ("Modality", "CT,MR", SingleValue(CORE["Modality"], "CT,MR")),
    ],
)
def test_strict_mode_has_no_wildcards_or_uid_lists(key: str, value: str, expected: SingleValue) -> None:
    assert only([(key, value)], loose=False) == expected


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("PatientName", "Dö*", Wildcard(CORE["PatientName"], "DO*")),
        ("PatientID", "a?c", Wildcard(CORE["PatientID"], "A?C")),
        ("Modality", "*", Wildcard(CORE["Modality"], "*")),
        ("StudyDescription", "*brain?", Wildcard(CORE["StudyDescription"], "*BRAIN?")),
        ("ImageComments", "a*", Wildcard(EQT_LT, "A*")),
        # PS3.4 C.2.2.2.4: no wildcard matching for UI, AS, DS, IS ('*' and '?' stay literal).
        ("SOPInstanceUID", "1.2*", SingleValue(CORE["SOPInstanceUID"], "1.2*")),
        ("PatientAge", "03?Y", SingleValue(EQT_AS, "03?Y")),
        ("dBdt", "1*", SingleValue(EQT_FL, "1*")),
        # PS3.4 C.2.2.2.2 / PS3.18 8.3.4.1: UID lists, comma- or backslash-separated.
        ("StudyInstanceUID", "1.2,1.3", UidList(CORE["StudyInstanceUID"], ("1.2", "1.3"))),
        ("SeriesInstanceUID", "1.2\\1.3", UidList(CORE["SeriesInstanceUID"], ("1.2", "1.3"))),
        ("SOPInstanceUID", "1.2, 1.3\\1.4,1.2", UidList(CORE["SOPInstanceUID"], ("1.2", "1.3", "1.4"))),
        ("SOPClassUID", "1.2.3,4.5", UidList(EQT_UI, ("1.2.3", "4.5"))),
        ("StudyInstanceUID", "1.2.3", SingleValue(CORE["StudyInstanceUID"], "1.2.3")),
        ("Modality", "CT,MR", SingleValue(CORE["Modality"], "CT,MR")),  # commas only split UIDs
    ],
)
def test_loose_mode(key: str, value: str, expected: object) -> None:
    assert only([(key, value)], loose=True) == expected


@pytest.mark.parametrize(
    ("value", "name"),
    [("1.2,abc", "StudyInstanceUID"), ("1.2,", "StudyInstanceUID"), ("1.2\\1.3-4", "StudyInstanceUID")],
)
def test_loose_uid_list_validates_every_uid(value: str, name: str) -> None:
    assert error_of([("StudyInstanceUID", value)], loose=True) == UID_INVALID.format(name)


# ---------------------------------------------------------------------------------------------------------------
# Matching: fuzzy person names (azure-behaviour §4.4)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loose", [False, True])
@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("PatientName", "joh", ("JOH",)),
        ("PatientName", "jo do", ("JO", "DO")),
        ("PatientName", "John^Doe", ("JOHN", "DOE")),
        ("ReferringPhysicianName", "dr^joe", ("DR", "JOE")),
        ("00100010", "Zoë", ("ZOE",)),
        ("OperatorsName", "a=b", ("A", "B")),
        ("PatientName", "^", ()),
    ],
)
def test_fuzzy(key: str, value: str, words: tuple[str, ...], loose: bool) -> None:
    parsed = parse([(key, value), ("fuzzymatching", "true")], loose=loose)
    assert parsed.fuzzy is True
    assert len(parsed.conditions) == 1
    condition = parsed.conditions[0]
    assert isinstance(condition, FuzzyName)
    assert condition.words == words


def test_fuzzy_only_applies_to_pn() -> None:
    parsed = parse([("PatientID", "joh"), ("fuzzymatching", "true")])
    assert parsed.conditions == (SingleValue(CORE["PatientID"], "JOH"),)


def test_fuzzy_false_is_exact() -> None:
    assert only([("PatientName", "John^Doe"), ("fuzzymatching", "false")]) == SingleValue(
        CORE["PatientName"], "JOHN^DOE"
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "PatientName",
            'joe"s',
            "Invalid query: specified tag 'PatientName' value 'joe\"s' contains unsupported character '\"'. "
            "Character is not supported with Fuzzy match, try exact match or removing the invalid character. ",
        ),
        (
            "00080090",
            '"dr"',
            "Invalid query: specified tag 'ReferringPhysicianName' value '\"dr\"' contains unsupported character "
            "'\"'. Character is not supported with Fuzzy match, try exact match or removing the invalid character. ",
        ),
    ],
)
def test_fuzzy_quote_rejected(key: str, value: str, message: str) -> None:
    assert error_of([(key, value), ("fuzzymatching", "true")]) == message


def test_quote_allowed_without_fuzzy() -> None:
    assert only([("PatientName", 'joe"s')]) == SingleValue(CORE["PatientName"], 'JOE"S')


def test_loose_wildcard_wins_over_fuzzy() -> None:
    condition = only([("PatientName", "jo*"), ("fuzzymatching", "true")], loose=True)
    assert condition == Wildcard(CORE["PatientName"], "JO*")


# ---------------------------------------------------------------------------------------------------------------
# Matching: DA (azure-behaviour §4.4)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loose", [False, True])
@pytest.mark.parametrize(
    ("key", "value", "low", "high"),
    [
        ("StudyDate", "20200101", "20200101", "20200101"),
        ("StudyDate", "19510910-20200220", "19510910", "20200220"),
        ("StudyDate", "20200220-20200220", "20200220", "20200220"),
        ("StudyDate", "-20200220", None, "20200220"),
        ("StudyDate", "19510910-", "19510910", None),
        ("StudyDate", " 19510910 - 20200220 ", "19510910", "20200220"),
        ("PatientBirthDate", "20000229", "20000229", "20000229"),
        ("00400244", "20200101", "20200101", "20200101"),
        ("SeriesDate", "20200101-20200102", "20200101", "20200102"),
    ],
)
def test_date(key: str, value: str, low: str | None, high: str | None, loose: bool) -> None:
    extended = (*ALL_EQT, EQT_SERIES_DATE)
    condition = only([(key, value)], loose=loose, extended_tags=extended)
    assert isinstance(condition, DateRange)
    assert (condition.low, condition.high) == (low, high)
    assert condition.tag.keyword == ("PerformedProcedureStepStartDate" if key == "00400244" else key)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("StudyDate", "-", BOTH_EMPTY),
        ("StudyDate", " - ", BOTH_EMPTY),
        ("StudyDate", "2020/02/28", "Invalid query: specified Date value '2020/02/28' is invalid for attribute "
         "'StudyDate'. Date should be valid and formatted as yyyyMMdd."),
        ("StudyDate", "20200230", "Invalid query: specified Date value '20200230' is invalid for attribute "
         "'StudyDate'. Date should be valid and formatted as yyyyMMdd."),
        ("StudyDate", "20200228-20200230", "Invalid query: specified Date value '20200230' is invalid for "
         "attribute 'StudyDate'. Date should be valid and formatted as yyyyMMdd."),
        ("StudyDate", "2020-01-01", "Invalid query: specified Date value '2020-01-01' is invalid for attribute "
         "'StudyDate'. Date should be valid and formatted as yyyyMMdd."),
        ("StudyDate", "00000101", "Invalid query: specified Date value '00000101' is invalid for attribute "
         "'StudyDate'. Date should be valid and formatted as yyyyMMdd."),
        ("StudyDate", "2020010", "Invalid query: specified Date value '2020010' is invalid for attribute "
         "'StudyDate'. Date should be valid and formatted as yyyyMMdd."),
        ("00080020", "2020", "Invalid query: specified Date value '2020' is invalid for attribute "
         "'StudyDate'. Date should be valid and formatted as yyyyMMdd."),
        ("PerformedProcedureStepStartDate", "baddate", "Invalid query: specified Date value 'baddate' is invalid "
         "for attribute 'PerformedProcedureStepStartDate'. Date should be valid and formatted as yyyyMMdd."),
        ("StudyDate", "20200110-20200109", "Invalid query: specified date range '20200110-20200109' is invalid.\n"
         "The first part date 20200110 should be lesser than or equal to the second part date 20200109."),
        ("StudyDate", "20200110 - 20200109", "Invalid query: specified date range '20200110 - 20200109' is "
         "invalid.\nThe first part date 20200110 should be lesser than or equal to the second part date 20200109."),
    ],
)  # fmt: skip
def test_date_errors(key: str, value: str, message: str) -> None:
    assert error_of([(key, value)]) == message


# ---------------------------------------------------------------------------------------------------------------
# Matching: DT (azure-behaviour §4.4)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loose", [False, True])
@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2020", "20200101000000.000000", "20200101000000.000000"),
        ("202002", "20200201000000.000000", "20200201000000.000000"),
        ("20210228", "20210228000000.000000", "20210228000000.000000"),
        ("2020022812", "20200228120000.000000", "20200228120000.000000"),
        ("202002281230", "20200228123000.000000", "20200228123000.000000"),
        ("20200228123015", "20200228123015.000000", "20200228123015.000000"),
        ("20200228123015.", "20200228123015.000000", "20200228123015.000000"),
        ("20200228123015.5", "20200228123015.500000", "20200228123015.500000"),
        ("20200228123015.123456", "20200228123015.123456", "20200228123015.123456"),
        ("19510910010203-20200220020304", "19510910010203.000000", "20200220020304.000000"),
        ("2019-2020", "20190101000000.000000", "20200101000000.000000"),
        ("2020-2020", "20200101000000.000000", "20200101000000.000000"),
        ("-20200220020304", None, "20200220020304.000000"),
        ("19510910010203-", "19510910010203.000000", None),
    ],
)
def test_datetime(value: str, low: str | None, high: str | None, loose: bool) -> None:
    assert only([("AcquisitionDateTime", value)], loose=loose) == DateRange(EQT_DT, low, high)


_DT_FORMAT = "DateTime should be valid and formatted as yyyyMMddHHmmss.FFFFFF where yyyy is mandatory."


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-", BOTH_EMPTY),
        ("202", f"Invalid query: specified DateTime value '202' is invalid for attribute 'AcquisitionDateTime'. "
         f"{_DT_FORMAT}"),
        ("2020.5", f"Invalid query: specified DateTime value '2020.5' is invalid for attribute "
         f"'AcquisitionDateTime'. {_DT_FORMAT}"),
        ("20200228123015.1234567", "Invalid query: specified DateTime value '20200228123015.1234567' is invalid "
         f"for attribute 'AcquisitionDateTime'. {_DT_FORMAT}"),
        ("20200230", f"Invalid query: specified DateTime value '20200230' is invalid for attribute "
         f"'AcquisitionDateTime'. {_DT_FORMAT}"),
        ("2020022824", f"Invalid query: specified DateTime value '2020022824' is invalid for attribute "
         f"'AcquisitionDateTime'. {_DT_FORMAT}"),
        # The message shows the URL-encoded value (WebUtility.UrlEncode).
        ("2020 01", f"Invalid query: specified DateTime value '2020+01' is invalid for attribute "
         f"'AcquisitionDateTime'. {_DT_FORMAT}"),
        ("20200101120000+0500", "Invalid query: specified DateTime value '20200101120000%2B0500' is invalid for "
         f"attribute 'AcquisitionDateTime'. {_DT_FORMAT}"),
        # A '+' sent unencoded arrives as a space: Azure re-encodes it and recognizes the UTC offset.
        ("20200101120000 0500", "Invalid query: specified DateTime value '20200101120000+0500' for attribute "
         "AcquisitionDateTime contains offset which is not supported."),
        ("2020 05:00", "Invalid query: specified DateTime value '2020+05%3A00' is invalid for attribute "
         f"'AcquisitionDateTime'. {_DT_FORMAT}"),
        ("20200101 1", "Invalid query: specified DateTime value '20200101+1' is invalid for attribute "
         f"'AcquisitionDateTime'. {_DT_FORMAT}"),
        # '-' splits a range first: a negative offset becomes a range whose second part is a year.
        ("20200101120000-0500", "Invalid query: specified date range '20200101120000-0500' is invalid.\n"
         "The first part DateTime 20200101120000 should be lesser than or equal to the second part DateTime 0500."),
        ("202006-2020", "Invalid query: specified date range '202006-2020' is invalid.\n"
         "The first part DateTime 202006 should be lesser than or equal to the second part DateTime 2020."),
        ("2020-01-01", "Invalid query: specified DateTime value '2020-01-01' is invalid for attribute "
         f"'AcquisitionDateTime'. {_DT_FORMAT}"),
    ],
)  # fmt: skip
def test_datetime_errors(value: str, message: str) -> None:
    assert error_of([("AcquisitionDateTime", value)]) == message


# ---------------------------------------------------------------------------------------------------------------
# Matching: TM (azure-behaviour §4.4)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loose", [False, True])
@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("12", "120000.000000", "120000.000000"),
        ("1230", "123000.000000", "123000.000000"),
        ("123015", "123015.000000", "123015.000000"),
        ("123015.5", "123015.500000", "123015.500000"),
        ("123015.123456", "123015.123456", "123015.123456"),
        ("1230151", "123015.100000", "123015.100000"),  # fo-dicom also accepts the fraction without '.'
        ("12:30", "123000.000000", "123000.000000"),
        ("12:30:15.25", "123015.250000", "123015.250000"),
        ("12.30.15", "123015.000000", "123015.000000"),
        ("010203-020304", "010203.000000", "020304.000000"),
        ("-020304", None, "020304.000000"),
        ("010203-", "010203.000000", None),
        ("12-12", "120000.000000", "120000.000000"),
        ("12\\13", "120000.000000", "120000.000000"),  # several values: all valid, the first is used
    ],
)
def test_time(value: str, low: str | None, high: str | None, loose: bool) -> None:
    assert only([("StudyTime", value)], R.ALL_STUDIES, loose=loose) == DateRange(EQT_TM, low, high)


_TM_FORMAT = "Time should be valid and formatted as HHmmss.FFFFFF where HH is mandatory."


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-", BOTH_EMPTY),
        ("1", f"Invalid query: specified Time value '1' is invalid for parameter 'StudyTime'. {_TM_FORMAT}"),
        ("24", f"Invalid query: specified Time value '24' is invalid for parameter 'StudyTime'. {_TM_FORMAT}"),
        ("1260", f"Invalid query: specified Time value '1260' is invalid for parameter 'StudyTime'. {_TM_FORMAT}"),
        ("123015.", f"Invalid query: specified Time value '123015.' is invalid for parameter 'StudyTime'. "
         f"{_TM_FORMAT}"),
        ("123015.1234567", "Invalid query: specified Time value '123015.1234567' is invalid for parameter "
         f"'StudyTime'. {_TM_FORMAT}"),
        ("12\\x", f"Invalid query: specified Time value '12\\x' is invalid for parameter 'StudyTime'. {_TM_FORMAT}"),
        ("010203-0102", "Invalid query: specified date range '010203-0102' is invalid.\n"
         "The first part time 010203 should be lesser than or equal to the second part time 0102."),
        ("02-01", "Invalid query: specified date range '02-01' is invalid.\n"
         "The first part time 02 should be lesser than or equal to the second part time 01."),
    ],
)  # fmt: skip
def test_time_errors(value: str, message: str) -> None:
    assert error_of([("StudyTime", value)], R.ALL_STUDIES) == message


# ---------------------------------------------------------------------------------------------------------------
# Matching: binary numbers (azure-behaviour §4.4)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loose", [False, True])
@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("Rows", "512", SingleValue(EQT_US, 512)),
        ("Rows", "-3", SingleValue(EQT_US, -3)),  # Azure parses every integer VR as a long
        ("ReferencePixelX0", "+7", SingleValue(EQT_SL, 7)),
        ("ReferencePixelX0", "9223372036854775807", SingleValue(EQT_SL, 9223372036854775807)),
        ("DiffusionBValue", "1.5", SingleValue(EQT_FD, 1.5)),
        ("DiffusionBValue", "1e3", SingleValue(EQT_FD, 1000.0)),
        ("DiffusionBValue", "-.5", SingleValue(EQT_FD, -0.5)),
        ("DiffusionBValue", "1,000.5", SingleValue(EQT_FD, 1000.5)),
        ("DiffusionBValue", "7", SingleValue(EQT_FD, 7.0)),
        ("DiffusionBValue", "Infinity", SingleValue(EQT_FD, float("inf"))),
    ],
)
def test_numbers(key: str, value: str, expected: SingleValue, loose: bool) -> None:
    condition = only([(key, value)], loose=loose)
    assert condition == expected
    assert type(condition.value) is type(expected.value)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("Rows", "1.5", "Invalid query: specified value '1.5' extended query tag with path 'Rows' is not a valid "
         "long value."),
        ("Rows", "abc", "Invalid query: specified value 'abc' extended query tag with path 'Rows' is not a valid "
         "long value."),
        ("ReferencePixelX0", "9223372036854775808", "Invalid query: specified value '9223372036854775808' extended "
         "query tag with path 'ReferencePixelX0' is not a valid long value."),
        ("Rows", "1*", "Invalid query: specified value '1*' extended query tag with path 'Rows' is not a valid "
         "long value."),
        ("DiffusionBValue", "abc", "Invalid query: specified value 'abc' extended query tag with path "
         "'DiffusionBValue' is not a valid double value."),
        ("DiffusionBValue", "1e", "Invalid query: specified value '1e' extended query tag with path "
         "'DiffusionBValue' is not a valid double value."),
        ("DiffusionBValue", "1_000", "Invalid query: specified value '1_000' extended query tag with path "
         "'DiffusionBValue' is not a valid double value."),
        ("DiffusionBValue", ".", "Invalid query: specified value '.' extended query tag with path "
         "'DiffusionBValue' is not a valid double value."),
    ],
)  # fmt: skip
def test_number_errors(key: str, value: str, message: str) -> None:
    assert error_of([(key, value)], loose=True) == message


def test_private_tag_name_in_messages_is_the_path() -> None:
    private_long = QueryTag(0x12051002, "", "SL", Level.INSTANCE, extended=True)
    message = error_of([("12051002", "x")], extended_tags=(private_long,))
    assert (
        message
        == "Invalid query: specified value 'x' extended query tag with path '12051002' is not a valid long value."
    )


# ---------------------------------------------------------------------------------------------------------------
# Whole query
# ---------------------------------------------------------------------------------------------------------------


def test_full_query() -> None:
    parsed = parse(
        [
            ("PatientName", "Doe"),
            ("StudyDate", "20200101-20201231"),
            ("ModalitiesInStudy", "ct"),
            ("00080060", "MR"),
            ("fuzzymatching", "true"),
            ("limit", "10"),
            ("offset", "20"),
            ("includefield", "StudyTime,00201208"),
        ],
        R.ALL_SERIES,
    )
    assert parsed == ParsedQuery(
        resource=R.ALL_SERIES,
        conditions=(
            FuzzyName(CORE["PatientName"], ("DOE",)),
            DateRange(CORE["StudyDate"], "20200101", "20201231"),
            SingleValue(CORE["ModalitiesInStudy"], "CT"),
            SingleValue(CORE["Modality"], "MR"),
        ),
        limit=10,
        offset=20,
        fuzzy=True,
        include_all=False,
        include_tags=(0x00080030, 0x00201208),
        filter_keys={0x00100010: "PatientName", 0x00080020: "StudyDate", 0x00080061: "ModalitiesInStudy",
                     0x00080060: "00080060"},
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Normalization helpers (used at index time)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "vr", "expected"),
    [
        ("abc  ", "LO", "ABC"),
        ("1.2.3\0", "UI", "1.2.3"),
        ("  lead", "LO", "  LEAD"),
        ("Müller^Zoë", "PN", "MULLER^ZOE"),
        ("Müller", "LO", "MÜLLER"),
        ("ct", "CS", "CT"),
        ("", "PN", ""),
    ],
)
def test_normalize_string(value: str, vr: str, expected: str) -> None:
    assert normalize_string(value, vr) == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("Doe^John", ("DOE", "JOHN")),
        ("Doe^John^^Dr", ("DOE", "JOHN", "DR")),
        ("Doe^John=Dö^Jon", ("DOE", "JOHN", "DO", "JON")),
        ("  van der Berg^Ánna  ", ("VAN", "DER", "BERG", "ANNA")),
        ("^", ()),
        ("", ()),
    ],
)
def test_person_name_words(value: str, words: tuple[str, ...]) -> None:
    assert person_name_words(value) == words


@pytest.mark.parametrize(
    ("value", "expected"),
    [("20200101", "20200101"), ("20200101 ", "20200101"), ("20200230", None), ("2020", None), ("2020.01.01", None),
     ("", None), ("abcdefgh", None)],
)  # fmt: skip
def test_normalize_date(value: str, expected: str | None) -> None:
    assert normalize_date(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020", "20200101000000.000000"),
        ("202002", "20200201000000.000000"),
        ("20200228123015.5", "20200228123015.500000"),
        ("20200228123015.123456 ", "20200228123015.123456"),
        ("20200101120000+0500", "20200101070000.000000"),
        ("20200101120000-0130", "20200101133000.000000"),
        ("2020+0000", "20200101000000.000000"),
        ("20200230", None),
        ("202", None),
        ("20200101120000+05", None),
        ("20200101120000+0560", None),
        ("", None),
    ],
)
def test_normalize_datetime(value: str, expected: str | None) -> None:
    assert normalize_datetime(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", "120000.000000"),
        ("1230", "123000.000000"),
        ("123015.5 ", "123015.500000"),
        ("235959.999999", "235959.999999"),
        ("12:30:15", "123015.000000"),
        ("24", None),
        ("1", None),
        ("", None),
    ],
)
def test_normalize_time(value: str, expected: str | None) -> None:
    assert normalize_time(value) == expected


def test_query_bounds_compare_with_normalized_stored_values() -> None:
    # Azure parses DT query values into one DateTime with missing parts at their minimum: an exact value
    # matches only that instant, and a range ends at the upper value's first instant (BaseQueryParser).
    condition = only([("AcquisitionDateTime", "2020")])
    assert isinstance(condition, DateRange)
    assert condition.low is not None and condition.high is not None

    def inside(stored: str) -> bool:
        normalized = normalize_datetime(stored)
        assert normalized is not None
        return condition.low <= normalized <= condition.high  # type: ignore[operator]

    assert inside("2020") and inside("20200101000000")
    assert not inside("20200615")
    condition = only([("AcquisitionDateTime", "2019-2020")])
    assert isinstance(condition, DateRange)
    assert inside("20190615") and inside("2020")
    assert not inside("20200601")
