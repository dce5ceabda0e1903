"""Unit tests of the DICOM JSON model as Azure writes and reads it (azure-behaviour §1.4, §3.5)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from dicom_emulator.dicom import json_model
from dicom_emulator.dicom.json_model import (
    InvalidDicomJsonError,
    dataset_to_json,
    element_view,
    filter_json,
    json_to_dataset,
)
from dicom_emulator.dicom.reading import read_instance
from dicom_emulator.errors import BadRequestError


def raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    """An element as pydicom leaves it after reading a file: undecoded bytes."""
    return RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True)


def one(ds: Dataset) -> dict[str, Any]:
    (value,) = dataset_to_json(ds).values()
    return value


def with_element(tag: int, vr: str, value: Any) -> Dataset:
    ds = Dataset()
    ds.add_new(tag, vr, value)
    return ds


def with_raw(tag: int, vr: str, value: bytes) -> Dataset:
    ds = Dataset()
    ds[tag] = raw(tag, vr, value)
    return ds


# --- dataset -> JSON -----------------------------------------------------------------------------------


def test_keys_are_upper_case_hex_in_tag_order(instance: Dataset) -> None:
    instance.add_new(0x0009100A, "LO", "private")
    result = dataset_to_json(instance)
    assert list(result) == sorted(result)
    assert list(result) == [
        "00080016",
        "00080018",
        "00080020",
        "00080060",
        "0009100A",
        "00100010",
        "00100020",
        "0020000D",
        "0020000E",
    ]
    assert result["0009100A"] == {"vr": "LO", "Value": ["private"]}


def test_read_file_excludes_file_meta_and_group_lengths(tmp_path: Path, instance: Dataset, write_dicom) -> None:
    instance.add_new(0x00080000, "UL", 42)  # a (retired) group length inside the data set
    parsed = read_instance(write_dicom(instance))
    result = dataset_to_json(parsed.dataset)
    assert not any(key.startswith("0002") or key.endswith("0000") for key in result)
    assert result["00080018"] == {"vr": "UI", "Value": [instance.SOPInstanceUID]}


def test_real_file_is_valid_json_with_expected_shapes() -> None:
    parsed = read_instance(Path(get_testdata_file("CT_small.dcm")))
    result = dataset_to_json(parsed.dataset)
    json.dumps(result, allow_nan=False)
    assert result["00080008"] == {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]}
    assert result["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "CompressedSamples^CT1"}]}
    assert result["00280010"] == {"vr": "US", "Value": [128]}
    assert result["00280030"] == {"vr": "DS", "Value": [0.661468, 0.661468]}
    assert result["00281052"] == {"vr": "DS", "Value": [-1024]}
    assert result["00091027"] == {"vr": "SL", "Value": [862399669]}  # private element kept, with its VR
    assert result["00091030"] == {"vr": "SH"}  # empty private element
    assert "7FE00010" not in result


@pytest.mark.parametrize("vr", ["OB", "OD", "OF", "OL", "OV", "OW", "UN"])
def test_bulk_data_vrs_are_removed_at_every_depth(vr: str) -> None:
    item = Dataset()
    item.add_new(0x00091011, vr, b"\x00" * 8)
    item.ReferencedSOPInstanceUID = "1.2.3"
    ds = Dataset()
    ds.add_new(0x00091010, vr, b"\x00" * 8)
    ds.ReferencedImageSequence = [item]
    assert dataset_to_json(ds) == {
        "00081140": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]},
    }


def test_pixel_data_and_ambiguous_bulk_vrs_are_removed() -> None:
    ds = Dataset()
    ds.add_new(0x60003000, "OW", b"\x00\x00")  # OverlayData, dictionary VR "OB or OW"
    ds[0x7FE00010] = RawDataElement(BaseTag(0x7FE00010), None, 4, b"\x00" * 4, 0, True, True)
    ds.Rows = 2
    assert dataset_to_json(ds) == {"00280010": {"vr": "US", "Value": [2]}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"12 ", [12]),
        (b"-5\\+7", [-5, 7]),
        (b" 3 ", [3]),
        (b"2147483647", [2147483647]),
        (b"12.0", [12]),
        (b"1A", ["1A"]),
        (b"1\\x", ["1", "x"]),  # one bad value: the whole element as strings
        (b"1\\\\2", ["1", None, "2"]),  # an empty value cannot be a number either
        (b"2147483648", ["2147483648"]),
    ],
)
def test_integer_strings(value: bytes, expected: list[Any]) -> None:
    assert one(with_raw(0x00200013, "IS", value)) == {"vr": "IS", "Value": expected}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"1.5", [1.5]),
        (b"-0.25\\3", [-0.25, 3]),
        (b"+5", [5]),
        (b"007.5", [7.5]),
        (b"1e3", [1000.0]),
        (b".5 ", [0.5]),
        (b"1.5\\\\2", [1.5, None, 2]),  # empty values are null, the others stay numbers
        (b"abc", ["abc"]),
        (b"1\\NaN", ["1", "NaN"]),
        (b"12345678901234567", ["12345678901234567"]),  # longer than 16 characters
    ],
)
def test_decimal_strings(value: bytes, expected: list[Any]) -> None:
    assert one(with_raw(0x00180050, "DS", value)) == {"vr": "DS", "Value": expected}


def test_decimal_strings_built_in_code() -> None:
    assert one(with_element(0x00280030, "DS", ["0.5", "0.25"])) == {"vr": "DS", "Value": [0.5, 0.25]}
    assert one(with_element(0x00200013, "IS", 7)) == {"vr": "IS", "Value": [7]}


def test_multi_valued_strings_are_lists() -> None:
    assert one(with_element(0x00080008, "CS", ["ORIGINAL", "PRIMARY"])) == {
        "vr": "CS",
        "Value": ["ORIGINAL", "PRIMARY"],
    }
    assert one(with_raw(0x00080008, "CS", b"A\\\\B ")) == {"vr": "CS", "Value": ["A", None, "B"]}


def test_single_valued_text_keeps_backslashes() -> None:
    assert one(with_raw(0x00204000, "LT", b"a\\b ")) == {"vr": "LT", "Value": ["a\\b"]}


def test_null_padding_is_preserved_except_for_uids() -> None:
    # azure-behaviour §3.5: NUL padding stays in the metadata; UI is NUL-padded by definition (PS3.5 §9.1).
    assert one(with_raw(0x00100020, "LO", b"123\x00")) == {"vr": "LO", "Value": ["123\x00"]}
    assert one(with_raw(0x00080060, "CS", b"X\x00")) == {"vr": "CS", "Value": ["X\x00"]}
    assert one(with_raw(0x00080018, "UI", b"1.2.3\x00")) == {"vr": "UI", "Value": ["1.2.3"]}


def test_trailing_spaces_are_padding_leading_spaces_are_not() -> None:
    assert one(with_raw(0x00081030, "LO", b" desc  ")) == {"vr": "LO", "Value": [" desc"]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Doe^John", [{"Alphabetic": "Doe^John"}]),
        (b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B", None),
        (b"=Ideo", [{"Ideographic": "Ideo"}]),
        (b"A\\\\B", [{"Alphabetic": "A"}, None, {"Alphabetic": "B"}]),
        (b"==", [{}]),
    ],
)
def test_person_names(value: bytes, expected: list[Any] | None) -> None:
    ds = with_raw(0x00100010, "PN", value)
    if expected is None:  # ISO 2022 IR 87: decoded with the dataset's Specific Character Set
        ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
        expected = [{"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}]
    assert dataset_to_json(ds)["00100010"] == {"vr": "PN", "Value": expected}


def test_utf8_text_is_decoded() -> None:
    ds = with_raw(0x00081030, "LO", "Étude crâne".encode())
    ds.SpecificCharacterSet = "ISO_IR 192"
    assert dataset_to_json(ds)["00081030"] == {"vr": "LO", "Value": ["Étude crâne"]}


def test_nested_items_inherit_the_character_set() -> None:
    item = Dataset()
    item[0x00081030] = raw(0x00081030, "LO", "Ünïcode".encode())
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ReferencedStudySequence = [item]
    assert dataset_to_json(ds)["00081110"]["Value"] == [{"00081030": {"vr": "LO", "Value": ["Ünïcode"]}}]


def test_attribute_tags_are_hex() -> None:
    assert one(with_element(0x00209165, "AT", [0x00100010, 0x7FE00010])) == {
        "vr": "AT",
        "Value": ["00100010", "7FE00010"],
    }


def test_binary_numbers() -> None:
    ds = Dataset()
    ds.add_new(0x00280106, "SS", -5)
    ds.add_new(0x00181310, "US", [0, 256, 256, 0])
    ds.add_new(0x00189219, "FD", [0.5, -1.25])
    ds.add_new(0x00189220, "FL", 0.1)
    ds.add_new(0x00189221, "FL", math.nan)
    result = dataset_to_json(ds)
    assert result["00280106"] == {"vr": "SS", "Value": [-5]}
    assert result["00181310"] == {"vr": "US", "Value": [0, 256, 256, 0]}
    assert result["00189219"] == {"vr": "FD", "Value": [0.5, -1.25]}
    assert result["00189220"] == {"vr": "FL", "Value": [0.1]}  # 32-bit shortest form, not 0.10000000149...
    assert result["00189221"] == {"vr": "FL", "Value": ["NaN"]}


def test_raw_binary_numbers_from_a_file() -> None:
    ds = with_raw(0x00280010, "US", b"\x00\x02")
    assert one(ds) == {"vr": "US", "Value": [512]}


def test_empty_elements_have_no_value() -> None:
    ds = Dataset()
    ds.add_new(0x00100010, "PN", "")
    ds.add_new(0x00080050, "SH", None)
    ds.add_new(0x00200013, "IS", None)
    ds.add_new(0x00280010, "US", None)
    ds.add_new(0x00081140, "SQ", [])
    ds[0x00081030] = raw(0x00081030, "LO", b"  ")
    assert dataset_to_json(ds) == {
        "00080050": {"vr": "SH"},
        "00081030": {"vr": "LO"},
        "00081140": {"vr": "SQ"},
        "00100010": {"vr": "PN"},
        "00200013": {"vr": "IS"},
        "00280010": {"vr": "US"},
    }


def test_sequences_are_recursive_and_keep_empty_items() -> None:
    inner = Dataset()
    inner.CodeValue = "123"
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.ConceptNameCodeSequence = [inner]
    ds = Dataset()
    ds.ReferencedImageSequence = Sequence([item, Dataset()])
    assert dataset_to_json(ds) == {
        "00081140": {
            "vr": "SQ",
            "Value": [
                {
                    "00081155": {"vr": "UI", "Value": ["1.2.3"]},
                    "0040A043": {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": ["123"]}}]},
                },
                {},
            ],
        }
    }


def test_exclude_paths_top_level_and_nested() -> None:
    first = Dataset()
    first.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    first.ReferencedSOPInstanceUID = "1.2.3"
    second = Dataset()
    second.ReferencedSOPInstanceUID = "1.2.4"
    ds = Dataset()
    ds.StudyDate = "bad"
    ds.Modality = "CT"
    ds.ReferencedStudySequence = [first, second]
    result = dataset_to_json(ds, exclude=[(0x00080020,), (0x00081110, 0, 0x00081155), (0x00081110, 1, 0x00081155)])
    assert result == {
        "00080060": {"vr": "CS", "Value": ["CT"]},
        "00081110": {
            "vr": "SQ",
            "Value": [{"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}}, {}],
        },
    }
    assert "00081110" not in dataset_to_json(ds, exclude=[(0x00081110,)])


def test_exclude_path_must_end_with_a_tag() -> None:
    with pytest.raises(ValueError, match="ends with a tag"):
        dataset_to_json(Dataset(), exclude=[(0x00081110, 0)])


def test_raw_sequence_from_a_file_keeps_null_padding(tmp_path: Path, instance: Dataset, write_dicom) -> None:
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.add_new(0x00081030, "LO", "padded\x00")
    instance.ReferencedStudySequence = [item]
    parsed = read_instance(write_dicom(instance))
    assert dataset_to_json(parsed.dataset)["00081110"] == {
        "vr": "SQ",
        "Value": [
            {
                "00081030": {"vr": "LO", "Value": ["padded\x00"]},
                "00081155": {"vr": "UI", "Value": ["1.2.3"]},
            }
        ],
    }


def test_dataset_to_json_does_not_convert_raw_elements() -> None:
    ds = with_raw(0x00100020, "LO", b"123\x00")
    dataset_to_json(ds)
    assert isinstance(ds.get_item(0x00100020), RawDataElement)


def test_element_view_exposes_fo_dicom_values() -> None:
    ds = with_raw(0x00080008, "CS", b"ORIGINAL\\PRIMARY ")
    view = element_view(ds, 0x00080008)
    assert view is not None
    assert (view.vr, view.text, view.values) == ("CS", "ORIGINAL\\PRIMARY", ["ORIGINAL", "PRIMARY"])
    assert element_view(ds, 0x00100010) is None


# --- JSON -> dataset -----------------------------------------------------------------------------------


def test_json_round_trip_of_a_real_file() -> None:
    parsed = read_instance(Path(get_testdata_file("CT_small.dcm")))
    original = dataset_to_json(parsed.dataset)
    assert dataset_to_json(json_to_dataset(original)) == original


def test_keyword_keys_like_the_csharp_client() -> None:
    ds = json_to_dataset(
        {
            "PatientName": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
            "PatientID": {"vr": "LO", "Value": ["P1"]},
            "ScheduledProcedureStepSequence": {
                "vr": "SQ",
                "Value": [{"ScheduledStationAETitle": {"vr": "AE", "Value": ["AE1"]}}],
            },
            "00080060": {"vr": "CS", "Value": ["MR"]},
            "0020000d": {"vr": "UI", "Value": ["1.2.3"]},
        }
    )
    assert ds.PatientName == "Doe^Jane"
    assert ds.PatientID == "P1"
    assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "AE1"
    assert ds.Modality == "MR"
    assert ds.StudyInstanceUID == "1.2.3"


def test_json_values_of_every_kind() -> None:
    ds = json_to_dataset(
        {
            "00080008": {"vr": "CS", "Value": ["A", None, "B"]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "A^B", "Phonetic": "a^b"}, None]},
            "00200013": {"vr": "IS", "Value": ["12"]},
            "00280030": {"vr": "DS", "Value": [0.5, "1.25", 3]},
            "00280010": {"vr": "US", "Value": [512]},
            "00189220": {"vr": "FL", "Value": ["NaN"]},
            "00209165": {"vr": "AT", "Value": ["00100010"]},
            "00091010": {"vr": "OB", "InlineBinary": "AAEC"},
            "00091011": {"vr": "UN"},
            "00081140": {"vr": "SQ", "Value": []},
            "00081030": {"vr": "LO"},
        }
    )
    assert list(ds.ImageType) == ["A", "", "B"]
    assert [str(name) for name in ds.PatientName] == ["A^B==a^b", ""]
    assert ds.InstanceNumber == 12
    assert [float(v) for v in ds.PixelSpacing] == [0.5, 1.25, 3.0]
    assert ds.Rows == 512
    assert math.isnan(ds[0x00189220].value)
    assert ds[0x00209165].value == 0x00100010
    assert ds[0x00091010].value == b"\x00\x01\x02"
    assert ds[0x00091011].value in (b"", None)
    assert len(ds.ReferencedImageSequence) == 0
    assert ds.StudyDescription in ("", None)


def test_json_keeps_invalid_values_as_sent() -> None:
    ds = json_to_dataset({"00080020": {"vr": "DA", "Value": ["NotAValidDate"]}})
    assert ds.StudyDate == "NotAValidDate"


def test_invalid_json_error_is_a_bad_request() -> None:
    assert issubclass(InvalidDicomJsonError, BadRequestError)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "a dataset must be a JSON object."),
        ({"NotAKeyword": {"vr": "LO"}}, "'NotAKeyword' is not a DICOM tag or keyword."),
        ({"0010001": {"vr": "LO"}}, "'0010001' is not a DICOM tag or keyword."),
        ({"00100010": "Doe"}, "the attribute '00100010' must be a JSON object."),
        ({"00100010": {"Value": ["Doe"]}}, "the attribute '00100010' has no 'vr'."),
        ({"00100010": {"vr": "XX"}}, "the attribute '00100010' has an unsupported VR 'XX'."),
        ({"00100020": {"vr": "LO", "Value": "P1"}}, "the 'Value' of attribute '00100020' must be an array."),
        ({"00100020": {"vr": "LO", "Value": [1]}}, "the values of attribute '00100020' must be strings."),
        ({"00200013": {"vr": "IS", "Value": ["x"]}}, "the values of attribute '00200013' must be 32-bit integers."),
        ({"00200013": {"vr": "IS", "Value": [2**31]}}, "the values of attribute '00200013' must be 32-bit integers."),
        ({"00280030": {"vr": "DS", "Value": ["abc"]}}, "the values of attribute '00280030' must be numbers."),
        (
            {"00280010": {"vr": "US", "Value": [-1]}},
            "the values of attribute '00280010' must be integers valid for VR US.",
        ),
        (
            {"00280010": {"vr": "US", "Value": [1.5]}},
            "the values of attribute '00280010' must be integers valid for VR US.",
        ),
        ({"00189219": {"vr": "FD", "Value": ["1"]}}, "the values of attribute '00189219' must be numbers."),
        (
            {"00209165": {"vr": "AT", "Value": ["xyz"]}},
            "the values of attribute '00209165' must be tags as 8 hexadecimal digits.",
        ),
        (
            {"00100010": {"vr": "PN", "Value": [["Doe"]]}},
            "the values of attribute '00100010' must be person name objects.",
        ),
        (
            {"00100010": {"vr": "PN", "Value": [{"Alphabetic": 5}]}},
            "the 'Alphabetic' component group of attribute '00100010' must be a string.",
        ),
        ({"00081140": {"vr": "SQ", "Value": [None]}}, "the items of sequence '00081140' must be JSON objects."),
        (
            {"00091010": {"vr": "OB", "InlineBinary": "***"}},
            "the InlineBinary of attribute '00091010' is not valid base64.",
        ),
        (
            {"00091010": {"vr": "OB", "BulkDataURI": "http://x"}},
            "the attribute '00091010' uses BulkDataURI, which is not supported.",
        ),
        (
            {"00204000": {"vr": "LT", "Value": ["a", "b"]}},
            "the attribute '00204000' with VR LT can have only one value.",
        ),
        (
            {"PatientID": {"vr": "LO"}, "00100020": {"vr": "LO"}},
            "the attribute '00100020' ((0010,0020)) appears more than once.",
        ),
    ],
)
def test_malformed_json(obj: Any, message: str) -> None:
    with pytest.raises(InvalidDicomJsonError) as info:
        json_to_dataset(obj)
    assert info.value.message == f"The DICOM JSON dataset is invalid: {message}"


def test_json_private_elements_get_their_creator() -> None:
    ds = json_to_dataset(
        {
            "00090010": {"vr": "LO", "Value": ["ACME"]},
            "00091001": {"vr": "SH", "Value": ["x"]},
        }
    )
    assert ds[0x00091001].private_creator == "ACME"


# --- filter --------------------------------------------------------------------------------------------


def test_filter_json_keeps_only_requested_top_level_tags(instance: Dataset) -> None:
    stored = dataset_to_json(instance)
    assert filter_json(stored, [0x0020000D, 0x00100010, 0x00081030]) == {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
        "0020000D": {"vr": "UI", "Value": [instance.StudyInstanceUID]},
    }
    assert filter_json(stored, []) == {}


def test_filter_json_ignores_non_tag_keys() -> None:
    assert filter_json({"PatientID": {"vr": "LO"}, "00100020": {"vr": "LO"}}, {0x00100020}) == {
        "00100020": {"vr": "LO"}
    }


def test_data_element_built_values() -> None:
    ds = Dataset()
    ds[0x00100010] = DataElement(0x00100010, "PN", ["A^B", "C^D"])
    assert one(ds) == {"vr": "PN", "Value": [{"Alphabetic": "A^B"}, {"Alphabetic": "C^D"}]}


# --- the shared views of repeated raw string elements -------------------------------------------------------------


def _raw_dataset(raw_elements: list[tuple[int, str, bytes]], charset: bytes | None = None) -> Dataset:
    ds = Dataset()
    if charset is not None:
        ds._dict[BaseTag(0x00080005)] = raw(0x00080005, "CS", charset)
    for tag, vr, value in raw_elements:
        ds._dict[BaseTag(tag)] = raw(tag, vr, value)
    return ds


def test_a_repeated_raw_string_element_gets_one_shared_view_equal_to_a_fresh_one() -> None:
    name = (0x00100010, "PN", b"Doe^Jane")
    first = json_model.element_view(_raw_dataset([name]), 0x00100010)
    again = json_model.element_view(_raw_dataset([name]), 0x00100010)
    assert again is first
    json_model._STRING_VIEWS.clear()
    fresh = json_model.element_view(_raw_dataset([name]), 0x00100010)
    assert fresh == first and fresh is not first
    assert json_model.dataset_to_json(_raw_dataset([name])) == {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}
    }


def test_the_same_bytes_in_another_character_set_are_another_view() -> None:
    raw = (0x00100010, "PN", b"M\xc3\xbcller")
    utf8 = json_model.element_view(_raw_dataset([raw], charset=b"ISO_IR 192"), 0x00100010)
    default = json_model.element_view(_raw_dataset([raw]), 0x00100010)
    assert utf8 is not None and utf8.text == "Müller"
    assert default is not None and default.text == "M\u00c3\u00bcller"  # the same bytes read as Latin-1


def test_long_values_are_not_kept_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    json_model._STRING_VIEWS.clear()
    text = b"x" * (json_model._CACHED_VALUE_LENGTH + 2)
    json_model.element_view(_raw_dataset([(0x00081030, "LO", text)]), 0x00081030)
    assert json_model._STRING_VIEWS == {}
    monkeypatch.setattr(json_model, "_STRING_VIEWS_LIMIT", 3)
    for n in range(5):
        json_model.element_view(_raw_dataset([(0x00200011, "IS", str(n).encode() + b" ")]), 0x00200011)
    assert 1 <= len(json_model._STRING_VIEWS) <= 3
