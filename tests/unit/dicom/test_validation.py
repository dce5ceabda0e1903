"""Unit tests of validate_for_store against Azure's StoreDatasetValidator behaviour (azure-behaviour §2.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicom_emulator.dicom import status
from dicom_emulator.dicom.reading import read_instance
from dicom_emulator.dicom.tags import tag_text
from dicom_emulator.dicom.validation import (
    MISMATCH_STUDY_MESSAGE,
    StoreValidation,
    error_comment,
    validate_for_store,
)

PATIENT_ID = 0x00100020
STUDY_UID_TAG = 0x0020000D
REVIEW_DATE = 0x300E0004
UID_ERROR = (
    "failed validation for VR 'UI': DICOM Identifier is invalid. Value length should not exceed the maximum "
    "length of 64 characters. Value should contain characters in '0'-'9' and '.'. Each component must start "
    "with non-zero number."
)


def validate(
    ds: Dataset,
    api_major: int = 2,
    *,
    implicit: bool = False,
    study: str | None = None,
    indexed: tuple[int, ...] = (),
) -> StoreValidation:
    return validate_for_store(
        ds, api_major=api_major, is_implicit_vr=implicit, route_study_uid=study, indexed_tags=indexed
    )


def raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True)


def set_raw(ds: Dataset, tag: int, vr: str, value: bytes) -> None:
    ds[tag] = raw(tag, vr, value)


def missing(tag: int) -> str:
    return f"DICOM100: {tag_text(tag)} - The required tag '{tag_text(tag)}' is missing."


def assert_clean(result: StoreValidation) -> None:
    assert result == StoreValidation(failed=False, failure_code=None)


# --- success -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api_major", [1, 2])
def test_valid_instance(instance: Dataset, api_major: int) -> None:
    assert_clean(validate(instance, api_major))


@pytest.mark.parametrize("api_major", [1, 2])
def test_implicit_vr_gives_warning_reason_45063(instance: Dataset, api_major: int) -> None:
    result = validate(instance, api_major, implicit=True)
    assert result.failed is False
    assert result.warning_reason == status.DATASET_DOES_NOT_MATCH_SOP_CLASS == 45063


def test_comment_format() -> None:
    assert tag_text(0x300E0004) == "(300e,0004)"
    assert error_comment(0x0020000D, "x") == "DICOM100: (0020,000d) - x"


# --- step 2: required tags -----------------------------------------------------------------------------


@pytest.mark.parametrize("api_major", [1, 2])
@pytest.mark.parametrize(
    "keyword", ["SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID"]
)
def test_missing_required_tag_fails(instance: Dataset, api_major: int, keyword: str) -> None:
    tag = instance.data_element(keyword).tag
    delattr(instance, keyword)
    result = validate(instance, api_major)
    assert result.failed is True
    assert result.failure_code == status.VALIDATION_FAILURE == 43264
    assert result.failure_comments == [missing(tag)]
    assert (result.warning_comments, result.invalid_paths, result.warning_reason) == ([], [], None)


@pytest.mark.parametrize("api_major", [1, 2])
def test_required_uid_without_value_is_missing(instance: Dataset, api_major: int) -> None:
    instance.SeriesInstanceUID = ""
    assert validate(instance, api_major).failure_comments == [missing(0x0020000E)]


def test_only_the_first_missing_required_tag_is_reported(instance: Dataset) -> None:
    del instance.StudyInstanceUID
    del instance.SOPClassUID
    del instance.PatientID
    assert validate(instance, 1).failure_comments == [missing(0x00080016)]


def test_multi_valued_required_uid_is_missing(instance: Dataset) -> None:
    instance.SOPInstanceUID = ["1.2.3", "1.2.4"]
    assert validate(instance, 1).failure_comments[0] == missing(0x00080018)


@pytest.mark.parametrize("value", ["", "   "])
def test_v1_empty_patient_id_fails(instance: Dataset, value: str) -> None:
    set_raw(instance, PATIENT_ID, "LO", value.encode())
    result = validate(instance, 1)
    assert result.failed is True
    assert result.failure_comments == [missing(PATIENT_ID)]


@pytest.mark.parametrize("value", [b"", b"    "])
def test_v2_empty_patient_id_is_a_warning_and_dropped(instance: Dataset, value: bytes) -> None:
    set_raw(instance, PATIENT_ID, "LO", value)
    result = validate(instance, 2)
    assert result.failed is False
    assert result.warning_comments == [missing(PATIENT_ID)]
    assert result.warning_reason == status.DATASET_HAS_VALIDATION_WARNINGS == 1
    assert result.invalid_paths == [(PATIENT_ID,)]


def test_v2_patient_id_of_control_characters_fails(instance: Dataset) -> None:
    # Trailing spaces are padding; the TAB left over fails the lenient LO rule, so this is no "missing" warning.
    set_raw(instance, PATIENT_ID, "LO", b"\t ")
    assert validate(instance, 2).failure_comments == [
        "DICOM100: (0010,0020) - Dicom element 'PatientID' failed validation for VR 'LO': "
        "Value contains invalid character."
    ]


# --- step 3: route study UID ---------------------------------------------------------------------------


@pytest.mark.parametrize("api_major", [1, 2])
def test_study_uid_must_match_the_route(instance: Dataset, api_major: int) -> None:
    result = validate(instance, api_major, study="1.2.3.4.5")
    assert result.failed is True
    assert result.failure_code == 43264  # not 43265 (azure-behaviour §2.3 step 3)
    assert result.failure_comments == [
        "DICOM100: (0020,000d) - The StudyInstanceUid in the payload does not match the specified StudyInstanceUid."
    ]
    assert MISMATCH_STUDY_MESSAGE in result.failure_comments[0]


@pytest.mark.parametrize(("stored", "route"), [(" ", ""), ("", "  "), (" ", " "), ("", "")])
def test_study_uid_match_ignores_trailing_spaces(instance: Dataset, stored: str, route: str) -> None:
    uid = instance.StudyInstanceUID
    set_raw(instance, STUDY_UID_TAG, "UI", (uid + stored).encode())
    assert validate(instance, 1, study=uid + route).failed is False


def test_study_uid_mismatch_is_reported_before_patient_id(instance: Dataset) -> None:
    del instance.PatientID
    assert validate(instance, 1, study="9.9").failure_comments == [f"DICOM100: (0020,000d) - {MISMATCH_STUDY_MESSAGE}"]


# --- step 4, v1: indexed tags --------------------------------------------------------------------------


def test_v1_invalid_core_uid(instance: Dataset) -> None:
    instance.StudyInstanceUID = "1.2.abc"
    result = validate(instance, 1)
    assert result.failure_comments == [f"DICOM100: (0020,000d) - Dicom element 'StudyInstanceUID' {UID_ERROR}"]


def test_v1_uid_with_leading_zero_component_is_accepted(instance: Dataset) -> None:
    instance.SeriesInstanceUID = "1.2.03.4"  # Azure's UID regex allows it, fo-dicom's does not
    assert validate(instance, 1).failed is False


@pytest.mark.parametrize(
    ("keyword", "vr", "value", "message"),
    [
        ("Modality", "CS", "01234567890123456789", "Dicom element 'Modality' failed validation for VR 'CS': "
         "Value length exceeds maximum length of 16."),
        ("PatientID", "LO", "Before Null Character, \0", "Dicom element 'PatientID' failed validation for VR 'LO': "
         "Value contains invalid character."),
        ("PatientID", "LO", "x" * 65, "Dicom element 'PatientID' failed validation for VR 'LO': "
         "Value length exceeds maximum length of 64."),
        ("StudyDate", "DA", "20240230", "Dicom element 'StudyDate' failed validation for VR 'DA': "
         "Value cannot be parsed as a valid date."),
        ("AccessionNumber", "SH", "x" * 17, "Dicom element 'AccessionNumber' failed validation for VR 'SH': "
         "Value length exceeds maximum length of 16."),
        ("PatientName", "PN", "a=b=c=d", "Dicom element 'PatientName' failed validation for VR 'PN': "
         "Value contains more than 5 components."),
        ("PatientName", "PN", "a^b^c^d^e^f", "Dicom element 'PatientName' failed validation for VR 'PN': "
         "Value contains more than 5 components."),
        ("PatientName", "PN", "x" * 65, "Dicom element 'PatientName' failed validation for VR 'PN': "
         "One or more group of person name exceeds maxium length of 64."),
        ("ReferringPhysicianName", "PN", "a\x01b", "Dicom element 'ReferringPhysicianName' failed validation for "
         "VR 'PN': Value contains invalid character."),
    ],
)  # fmt: skip
def test_v1_indexed_tag_errors(instance: Dataset, keyword: str, vr: str, value: str, message: str) -> None:
    instance.add_new(instance.data_element(keyword).tag if keyword in instance else _tag(keyword), vr, value)
    result = validate(instance, 1)
    assert result.failed is True
    tag = _tag(keyword)
    assert result.failure_comments == [f"DICOM100: {tag_text(tag)} - {message}"]


def _tag(keyword: str) -> int:
    ds = Dataset()
    setattr(ds, keyword, "")
    return int(ds.data_element(keyword).tag)


def test_v1_empty_indexed_value_is_valid(instance: Dataset) -> None:
    instance.ReferringPhysicianName = ""
    instance.StudyDate = ""
    assert validate(instance, 1).failed is False


def test_v1_extended_query_tag_is_validated(instance: Dataset) -> None:
    instance.add_new(0x21000140, "AE", "01234567890123456")  # DestinationAE
    assert validate(instance, 1).failed is False  # not indexed: ignored
    result = validate(instance, 1, indexed=(0x21000140,))
    assert result.failure_comments == [
        "DICOM100: (2100,0140) - Dicom element 'DestinationAE' failed validation for VR 'AE': "
        "Value length exceeds maximum length of 16."
    ]


def test_v1_extended_query_tag_with_unexpected_vr(instance: Dataset) -> None:
    instance.add_new(0x00080023, "DT", "20240101120000")  # ContentDate is DA
    result = validate(instance, 1, indexed=(0x00080023,))
    assert result.failure_comments == [
        "DICOM100: (0008,0023) - Dicom element 'ContentDate' failed validation for VR 'DT': "
        "The extended query tag 'ContentDate' is expected to have VR 'DA' but has 'DT' in file."
    ]


@pytest.mark.parametrize(
    ("tag", "vr", "value", "message"),
    [
        (0x00200013, "IS", b"12a", "Dicom element 'InstanceNumber' failed validation for VR 'IS': "
         "Value cannot be parsed as a valid integer string."),
        (0x00080030, "TM", b"2500", "Dicom element 'StudyTime' failed validation for VR 'TM': "
         "Value cannot be parsed as a valid Time."),
        (0x0008002A, "DT", b"2024013", "Dicom element 'AcquisitionDateTime' failed validation for VR 'DT': "
         "Value cannot be parsed as a valid DateTime."),
        (0x00101010, "AS", b"12", "Dicom element 'PatientAge' failed validation for VR 'AS': "
         "Value length is not 4."),
        (0x00280010, "US", b"", "Dicom element 'Rows' failed validation for VR 'US': Value length is not 2."),
        (0x00091001, "IS", b"0123456789123", "Dicom element '00091001' failed validation for VR 'IS': "
         "Value cannot be parsed as a valid integer string."),
    ],
)  # fmt: skip
def test_v1_extended_query_tag_rules(instance: Dataset, tag: int, vr: str, value: bytes, message: str) -> None:
    set_raw(instance, tag, vr, value)
    assert validate(instance, 1, indexed=(tag,)).failure_comments == [f"DICOM100: {tag_text(tag)} - {message}"]


def test_v1_reports_every_invalid_indexed_tag_in_order(instance: Dataset) -> None:
    instance.Modality = "x" * 17
    instance.StudyDate = "2024"
    del instance.PatientID
    result = validate(instance, 1)
    assert [c.split(" - ")[0] for c in result.failure_comments] == [
        "DICOM100: (0010,0020)",
        "DICOM100: (0008,0020)",
        "DICOM100: (0008,0060)",
    ]


def test_v1_ignores_invalid_non_indexed_tags(instance: Dataset) -> None:
    instance.ReviewDate = "NotAValidReviewDate"
    assert_clean(validate(instance, 1))


def test_v1_multiple_values_in_an_indexed_tag(instance: Dataset) -> None:
    instance.StudyDescription = ["Value1,", "Value2"]
    result = validate(instance, 1)
    assert result.failed is False
    assert result.multiple_values_in_indexed_tag is True
    assert result.warning_reason is None


def test_v1_multiple_values_flag_survives_a_failure(instance: Dataset) -> None:
    instance.StudyDescription = ["A", "B"]
    instance.Modality = "x" * 17
    result = validate(instance, 1)
    assert (result.failed, result.multiple_values_in_indexed_tag) == (True, True)


# --- step 4, v2: lenient core tags, warnings for the rest ----------------------------------------------


def test_v2_invalid_core_uid_fails(instance: Dataset) -> None:
    instance.SOPInstanceUID = "1.2.abc"
    result = validate(instance, 2)
    assert result.failed is True
    # The strict rule fails too, but only the first error per tag is kept.
    assert result.failure_comments == [f"DICOM100: (0008,0018) - Dicom element 'SOPInstanceUID' {UID_ERROR}"]


def test_v2_invalid_sop_class_uid_fails(instance: Dataset) -> None:
    instance.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.x"
    result = validate(instance, 2)
    assert result.failure_comments == [f"DICOM100: (0008,0016) - Dicom element 'SOPClassUID' {UID_ERROR}"]


def test_v2_failure_lists_warnings_too(instance: Dataset) -> None:
    instance.StudyInstanceUID = "abc"
    instance.ReviewDate = "NotAValidReviewDate"
    result = validate(instance, 2)
    assert result.failed is True
    assert result.failure_comments == [
        f"DICOM100: (0020,000d) - Dicom element 'StudyInstanceUID' {UID_ERROR}",
        'DICOM100: (300e,0004) - Content "NotAValidReviewDate" does not validate VR DA: '
        "one of the date values does not match the pattern YYYYMMDD",
    ]


def test_v2_core_uid_with_leading_zero_is_a_warning_not_dropped(instance: Dataset) -> None:
    instance.StudyInstanceUID = "1.3.6.1.4.1.55648.014924617884283217793330176991551322645.2.1"
    result = validate(instance, 2)
    assert result.failed is False
    assert result.warning_comments == [
        'DICOM100: (0020,000d) - Content "1.3.6.1.4.1.55648.014924617884283217793330176991551322645.2.1" '
        "does not validate VR UI: components must not have leading zeros"
    ]
    assert result.invalid_paths == []  # Study/Series/SOP Instance UIDs are never dropped
    assert result.warning_reason == 1


def test_v2_invalid_non_core_tag_is_a_warning(instance: Dataset) -> None:
    instance.ReviewDate = "NotAValidReviewDate"
    result = validate(instance, 2)
    assert result.failed is False
    assert result.failure_code is None
    assert result.warning_comments == [
        'DICOM100: (300e,0004) - Content "NotAValidReviewDate" does not validate VR DA: '
        "one of the date values does not match the pattern YYYYMMDD"
    ]
    assert result.invalid_paths == [(REVIEW_DATE,)]
    assert result.warning_reason == status.DATASET_HAS_VALIDATION_WARNINGS


def test_v2_invalid_indexed_tag_is_only_a_warning(instance: Dataset) -> None:
    instance.Modality = "01234567890123456789"
    result = validate(instance, 2)
    assert result.failed is False
    assert result.warning_comments == [
        'DICOM100: (0008,0060) - Content "01234567890123456789" does not validate VR CS: '
        "value exceeds maximum length of 16 characters"
    ]
    assert result.invalid_paths == [(0x00080060,)]


def test_v2_private_tag_is_validated(instance: Dataset) -> None:
    instance.add_new(0x00070008, "AS", "Invalid Private Age Tag")
    assert validate(instance, 2).warning_comments == [
        'DICOM100: (0007,0008) - Content "Invalid Private Age Tag" does not validate VR AS: '
        "value does not have pattern 000[DWMY]"
    ]


def test_v2_implicit_vr_takes_precedence_over_warning_code(instance: Dataset) -> None:
    instance.ReviewDate = "NotAValidReviewDate"
    result = validate(instance, 2, implicit=True)
    assert result.warning_reason == 45063
    assert len(result.warning_comments) == 1


@pytest.mark.parametrize("value", ["X\0\0\0\0", "\0", "X"])
def test_v2_null_padding_is_not_a_warning(instance: Dataset, value: str) -> None:
    instance.Modality = value
    assert_clean(validate(instance, 2))


@pytest.mark.parametrize("value", ["Before Null Character, \0\0\0\0", "Before Null Character, \0", "123,345"])
def test_v2_patient_id_padding_is_not_a_warning(instance: Dataset, value: str) -> None:
    instance.PatientID = value
    assert_clean(validate(instance, 2))


def test_v2_embedded_null_is_a_warning(instance: Dataset) -> None:
    instance.Modality = "X\0X"
    result = validate(instance, 2)
    assert result.warning_comments == [
        'DICOM100: (0008,0060) - Content "X\0X" does not validate VR CS: value contains invalid character. '
        "Only uppercase character, digits, space and underscore alre allowed"
    ]


def test_v2_patient_id_with_leading_null_fails(instance: Dataset) -> None:
    instance.PatientID = "\0123\0"
    result = validate(instance, 2)
    assert result.failed is True
    assert result.failure_comments == [
        "DICOM100: (0010,0020) - Dicom element 'PatientID' failed validation for VR 'LO': "
        "Value contains invalid character."
    ]


def test_v2_null_padding_read_from_a_file(tmp_path: Path, instance: Dataset, write_dicom) -> None:
    instance.PatientID = "123\0"
    instance.add_new(0x00081030, "LO", "Study\0")
    parsed = read_instance(write_dicom(instance))
    assert_clean(validate(parsed.dataset, 2))
    # v1 validates indexed tags strictly: NUL padding is an invalid character there.
    assert validate(parsed.dataset, 1).failure_comments == [
        "DICOM100: (0010,0020) - Dicom element 'PatientID' failed validation for VR 'LO': "
        "Value contains invalid character.",
        "DICOM100: (0008,1030) - Dicom element 'StudyDescription' failed validation for VR 'LO': "
        "Value contains invalid character.",
    ]


def test_v2_null_values_in_non_required_tags(instance: Dataset) -> None:
    instance.add_new(0x0008002A, "DT", None)
    instance.PatientName = None
    instance.add_new(0x00281055, "LO", None)
    instance.add_new(0x0010A002, "SL", [])  # empty binary element
    assert_clean(validate(instance, 2))


def test_v2_nested_invalid_value_is_a_warning_left_in_metadata(instance: Dataset) -> None:
    inner = Dataset()
    inner.ReviewDate = "NotAValidReviewDate"
    item = Dataset()
    item.PatientName = "Test^Patient"
    item.RegistrationSequence = [inner]
    instance.RegistrationSequence = [item]
    result = validate(instance, 2)
    assert result.failed is False
    assert result.warning_comments == [
        'DICOM100: (300e,0004) - Content "NotAValidReviewDate" does not validate VR DA: '
        "one of the date values does not match the pattern YYYYMMDD"
    ]
    # Azure removes failing tags from the top-level dataset only (StoreService.DropInvalidMetadata).
    assert result.invalid_paths == []
    assert result.warning_reason == 1


def test_v2_nested_and_top_level_same_tag_keeps_first_error(instance: Dataset) -> None:
    inner = Dataset()
    inner.ReviewDate = "19991399"
    instance.RegistrationSequence = [inner]
    instance.ReviewDate = "NotAValidReviewDate"
    result = validate(instance, 2)
    assert result.warning_comments == [
        'DICOM100: (300e,0004) - Content "NotAValidReviewDate" does not validate VR DA: '
        "one of the date values does not match the pattern YYYYMMDD"
    ]
    assert result.invalid_paths == [(REVIEW_DATE,)]


def test_v2_valid_sequences_with_bulk_data(instance: Dataset) -> None:
    item = Dataset()
    item.PatientName = "Test^Patient"
    item.add_new(0x7FE00010, "OB", b"\x01\x02\x03")
    item.add_new(0x0008002A, "DT", None)
    instance.RegistrationSequence = [item]
    assert_clean(validate(instance, 2))


def test_v2_value_multiplicity(instance: Dataset) -> None:
    instance.Modality = ["CT", "MR"]
    instance.ImageType = "ORIGINAL"
    result = validate(instance, 2)
    assert result.warning_comments == [
        'DICOM100: (0008,0008) - Content "(0008,0008) CS Image Type" does not validate VR CS: '
        "Number of items 1 does not match ValueMultiplicity 2-n",
        'DICOM100: (0008,0060) - Content "(0008,0060) CS Modality" does not validate VR CS: '
        "Number of items 2 does not match ValueMultiplicity 1",
    ]


def test_v2_binary_value_multiplicity(instance: Dataset) -> None:
    instance.add_new(0x00280010, "US", [1, 2])
    assert validate(instance, 2).warning_comments == [
        'DICOM100: (0028,0010) - Content "(0028,0010) US Rows" does not validate VR US: '
        "Number of items 2 does not match ValueMultiplicity 1"
    ]


def test_v2_multiple_values_only_checked_on_required_core_tags(instance: Dataset) -> None:
    instance.StudyDescription = ["A", "B"]  # an indexed tag, but v2 only looks at the required core tags
    assert validate(instance, 2).multiple_values_in_indexed_tag is False
    instance.PatientID = ["P1", "P2"]
    assert validate(instance, 2).multiple_values_in_indexed_tag is True


def test_v2_warnings_follow_azure_traversal_order(instance: Dataset) -> None:
    first = Dataset()
    first.ReviewDate = "a"
    second = Dataset()
    second.add_new(0x00080030, "TM", "9999")
    instance.ReferencedStudySequence = [first]
    instance.RegistrationSequence = [second]
    instance.add_new(0x00080021, "DA", "x")
    result = validate(instance, 2)
    # top level first, then the items of the last sequence first (a stack)
    assert [c.split(" - ")[0] for c in result.warning_comments] == [
        "DICOM100: (0008,0021)",
        "DICOM100: (0008,0030)",
        "DICOM100: (300e,0004)",
    ]


# --- fo-dicom string rules, through v2 warnings --------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "vr", "value", "shown", "reason"),
    [
        (0x00080054, "AE", b"A\\  ", "", "value may not consist only of spaces"),
        (0x00080054, "AE", b"  ", None, None),  # trailing spaces are padding: an empty element
        (0x00080054, "AE", b"x" * 17, "x" * 17, "value exceeds maximum length of 16 characters"),
        (0x00080020, "DA", b"20241301", "20241301", "month component exceeds the value 12"),
        (0x00080020, "DA", b"20240132", "20240132", "day component exceeds the value 31"),
        (0x00080020, "DA", b"1-2-3", "1-2-3", "value contains too many range separators '-'"),
        (0x00180050, "DS", b" 1.5x", "1.5x", "value is no decimal string"),
        (0x00180050, "DS", b"12345678901234567", "12345678901234567", "value exceeds maximum length of 16 characters"),
        (0x0008002A, "DT", b"2024010112", None, None),
        (0x0008002A, "DT", b"20240101-0500", None, None),
        (0x0008002A, "DT", b"2024-", None, None),
        (0x0008002A, "DT", b"202401011260", "202401011260", "minutes component exceeds 59"),
        (0x0008002A, "DT", b"20240101+1500", "20240101+1500", "positive UTC hours component exceeds 14 "
         "(allowed range is -1200 to +1400)"),
        (0x0008002A, "DT", b"2024-0000", "2024-0000", "negative UTC hours component with value -0000 is not allowed"),
        (0x0008002A, "DT", b"20240100", "20240100", "day component cannot be 0"),
        (0x0008002A, "DT", b"20241", "20241", "value does not mach pattern YYYY[MM[DD[HH[MM[SS[.F{1-6}]]]]]]"),
        (0x00200013, "IS", b" 12 ", None, None),
        (0x00200013, "IS", b"1.0", "1.0", "value is not an integer string"),
        (0x00200013, "IS", b"99999999999", "99999999999", "value too large to fit 32 bit integer"),
        (0x00081030, "LO", b"a\x0bb", "a\x0bb", "value contains invalid character"),
        pytest.param(0x00081030, "LO", b"a\x1bb", None, None,
                     marks=pytest.mark.filterwarnings("ignore:Found unknown escape sequence:UserWarning")),
        (0x00204000, "LT", b"x" * 10241, "x" * 10241, "value exceeds maximum length of 10240 characters"),
        (0x00100010, "PN", b"a=b=c=d", "a=b=c=d", "value contains too many groups"),
        (0x00100010, "PN", b"a^b^c^d^e^f", "a^b^c^d^e^f", "value contains too many components"),
        (0x00100010, "PN", b"a\nb", "a\nb", "value contains invalid control character"),
        (0x00080050, "SH", b"a\x01", "a\x01", "value contains invalid character"),
        (0x00080030, "TM", b"2400", "2400", "hour component exceeds 23"),
        (0x00080030, "TM", b"1261", "1261", "minutes component exceeds 59"),
        (0x00080030, "TM", b"101010.1234567", "101010.1234567",
         "value does not mach pattern HH or HHMM or HHMMSS or HHMMSS.F{1-6}"),
        (0x00080030, "TM", b"101010.123-1212", None, None),
        (0x00081155, "UI", b"1.2..3", "1.2..3", "a component can not be empty"),
        (0x00081155, "UI", b"0.1", "0.1", "components must not have leading zeros"),
        (0x00081155, "UI", b"1.2.3 ", None, None),
        (0x00081155, "UI", b"1" * 65, "1" * 65, "value exceeds maximum length of 64 characters"),
        (0x00080119, "UC", b"\x01anything goes", None, None),  # fo-dicom has no UC rule
        (0x00080119, "UC", b"a\\b", "(0008,0119) UC Long Code Value",
         "Number of items 2 does not match ValueMultiplicity 1"),
    ],
)  # fmt: skip
def test_fo_dicom_rules(
    instance: Dataset, tag: int, vr: str, value: bytes, shown: str | None, reason: str | None
) -> None:
    set_raw(instance, tag, vr, value)
    result = validate(instance, 2)
    if reason is None:
        assert result.warning_comments == []
    else:
        assert result.warning_comments == [
            f'DICOM100: {tag_text(tag)} - Content "{shown}" does not validate VR {vr}: {reason}'
        ]


def test_valid_real_world_values(instance: Dataset) -> None:
    values: dict[int, tuple[str, Any]] = {
        0x00080008: ("CS", ["ORIGINAL", "PRIMARY", "AXIAL"]),
        0x00080030: ("TM", "101010.123456"),
        0x0008002A: ("DT", "20240115101010.123456+0100"),
        0x00101010: ("AS", "045Y"),
        0x00180050: ("DS", "1.25"),
        0x00280030: ("DS", ["0.5", "0.5"]),
        0x00200032: ("DS", ["-1.5e2", "+3", ".5"]),
        0x00080054: ("AE", "STORESCP"),
        0x00100010: ("PN", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    }
    for tag, (vr, value) in values.items():
        instance.add_new(tag, vr, value)
    assert_clean(validate(instance, 2))
