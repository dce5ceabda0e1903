"""Unit tests of read_instance: header-only parsing, pixel data location, rejection of bad files."""

from __future__ import annotations

import random
import shutil
import struct
import tracemalloc
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from tests.factories import deflated_instance, make_dataset, to_bytes

from dicom_emulator.dicom import reading
from dicom_emulator.dicom.json_model import dataset_to_json
from dicom_emulator.dicom.reading import (
    PIXEL_DATA_TAGS,
    DeflateBombError,
    InvalidDicomInstanceError,
    ParsedInstance,
    configure_pydicom,
    inflates_beyond,
    read_instance,
)
from dicom_emulator.errors import BadRequestError

ITEM_TAG_LE = b"\xfe\xff\x00\xe0"

# pydicom warns about the truncated files these tests build on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")


def sample(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is not installed"
    return Path(path)


def cut(source: Path, size: int, tmp_path: Path) -> Path:
    target = tmp_path / f"cut-{size}.dcm"
    target.write_bytes(source.read_bytes()[:size])
    return target


def read_error(path: Path) -> str:
    with pytest.raises(InvalidDicomInstanceError) as info:
        read_instance(path)
    return info.value.message


# --- well-formed files ---------------------------------------------------------------------------------


def test_native_explicit_little_endian() -> None:
    path = sample("CT_small.dcm")
    parsed = read_instance(path)
    assert isinstance(parsed, ParsedInstance)
    assert parsed.transfer_syntax == "1.2.840.10008.1.2.1"
    assert parsed.is_implicit_vr is False
    assert parsed.file_size == 39206 == path.stat().st_size
    assert (parsed.pixel_data_offset, parsed.pixel_data_length) == (6300, 32768)
    assert parsed.dataset.SOPInstanceUID == "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    # The pixel data element is gone from the header, its bytes are where the offset says.
    assert all(tag not in parsed.dataset for tag in PIXEL_DATA_TAGS)
    full = pydicom.dcmread(path)
    data = path.read_bytes()
    assert data[6300 : 6300 + 32768] == full.PixelData


def test_implicit_vr_file() -> None:
    parsed = read_instance(sample("MR_small_implicit.dcm"))
    assert parsed.transfer_syntax == "1.2.840.10008.1.2"
    assert parsed.is_implicit_vr is True
    assert (parsed.pixel_data_offset, parsed.pixel_data_length) == (1510, 8192)


def test_big_endian_file() -> None:
    path = sample("MR_small_bigendian.dcm")
    parsed = read_instance(path)
    assert parsed.transfer_syntax == "1.2.840.10008.1.2.2"
    assert parsed.is_implicit_vr is False
    assert (parsed.pixel_data_offset, parsed.pixel_data_length) == (1516, 8192)
    assert parsed.dataset.Rows == 64


def test_multiframe_native_implicit() -> None:
    parsed = read_instance(sample("rtdose.dcm"))
    assert parsed.is_implicit_vr is True
    assert parsed.dataset.NumberOfFrames == 15
    assert (parsed.pixel_data_offset, parsed.pixel_data_length) == (1568, 6000)


@pytest.mark.parametrize(
    ("name", "syntax", "offset"),
    [
        ("JPEG2000.dcm", "1.2.840.10008.1.2.4.91", 3034),
        ("SC_rgb_rle.dcm", "1.2.840.10008.1.2.5", 1318),
        ("SC_rgb_rle_2frame.dcm", "1.2.840.10008.1.2.5", 1328),
        ("examples_ybr_color.dcm", "1.2.840.10008.1.2.4.50", 35052),
    ],
)
def test_encapsulated_pixel_data_points_at_the_offset_table_item(name: str, syntax: str, offset: int) -> None:
    path = sample(name)
    parsed = read_instance(path)
    assert parsed.transfer_syntax == syntax
    assert parsed.pixel_data_offset == offset
    assert parsed.pixel_data_length is None  # undefined length (PS3.5 A.4)
    with path.open("rb") as fh:
        fh.seek(offset)
        assert fh.read(4) == ITEM_TAG_LE
    assert "PixelData" not in parsed.dataset


def test_deflated_file_has_no_pixel_offset() -> None:
    parsed = read_instance(sample("image_dfl.dcm"))
    assert parsed.transfer_syntax == "1.2.840.10008.1.2.1.99"
    assert (parsed.pixel_data_offset, parsed.pixel_data_length) == (None, None)
    assert parsed.dataset.Rows == 512


def test_deflate_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    # 4 MiB of zeros deflate to a few KB; with a 1 MiB limit the file is refused without inflating it whole.
    path = tmp_path / "bomb.dcm"
    path.write_bytes(deflated_instance(4 * 1024 * 1024))
    assert path.stat().st_size < 20_000
    tracemalloc.start()
    try:
        with pytest.raises(DeflateBombError) as info:
            read_instance(path, max_inflated_size=1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (
        info.value.message
        == "The DICOM instance is invalid: the deflated data set inflates to more than 1048576 bytes."
    )
    assert isinstance(info.value, InvalidDicomInstanceError)
    assert peak < 1024 * 1024
    # Under the limit it is read as usual; other transfer syntaxes are never inflated.
    assert read_instance(path, max_inflated_size=5 * 1024 * 1024).dataset.NumberOfFrames == 4
    with path.open("rb") as fp:
        assert inflates_beyond(fp, 4 * 1024 * 1024 - 1) and not inflates_beyond(fp, 5 * 1024 * 1024)
    with sample("CT_small.dcm").open("rb") as fp:
        assert not inflates_beyond(fp, 0)


def test_instance_without_pixel_data() -> None:
    parsed = read_instance(sample("rtplan.dcm"))
    assert (parsed.pixel_data_offset, parsed.pixel_data_length) == (None, None)
    assert parsed.dataset.Modality == "RTPLAN"


def test_dataset_without_preamble_is_accepted(tmp_path: Path, instance: Dataset) -> None:
    path = tmp_path / "raw.dcm"
    pydicom.dcmwrite(path, instance, implicit_vr=False, little_endian=True, enforce_file_format=False)
    assert path.read_bytes()[:2] == b"\x08\x00"
    parsed = read_instance(path)
    assert parsed.transfer_syntax == "1.2.840.10008.1.2.1"  # inferred from the bytes
    assert parsed.is_implicit_vr is False
    assert parsed.dataset.SOPInstanceUID == instance.SOPInstanceUID


def test_implicit_dataset_without_preamble_is_accepted(tmp_path: Path, instance: Dataset) -> None:
    path = tmp_path / "raw-implicit.dcm"
    pydicom.dcmwrite(path, instance, implicit_vr=True, little_endian=True, enforce_file_format=False)
    parsed = read_instance(path)
    assert parsed.transfer_syntax == "1.2.840.10008.1.2"
    assert parsed.is_implicit_vr is True


def test_pixel_data_is_never_loaded(tmp_path: Path, instance: Dataset, write_dicom) -> None:
    size = 40 * 1024 * 1024
    instance.Rows, instance.Columns, instance.BitsAllocated = 4096, 5120, 16
    instance.PixelData = bytes(size)
    path = write_dicom(instance)
    del instance.PixelData
    tracemalloc.start()
    try:
        parsed = read_instance(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024
    assert parsed.pixel_data_length == size
    assert parsed.pixel_data_offset == parsed.file_size - size


def test_large_text_is_read_and_large_binary_stays_out_of_metadata(
    tmp_path: Path, instance: Dataset, write_dicom
) -> None:
    instance.add_new(0x00080119, "UC", "x" * 100_000)  # LongCodeValue, larger than the defer size
    instance.add_new(0x00091010, "OB", bytes(200_000))  # private bulk data, no creator on purpose
    path = write_dicom(instance)
    parsed = read_instance(path)
    assert parsed.dataset.LongCodeValue == "x" * 100_000
    metadata = dataset_to_json(parsed.dataset)
    assert metadata["00080119"] == {"vr": "UC", "Value": ["x" * 100_000]}
    assert "00091010" not in metadata


def test_invalid_values_do_not_break_attribute_access() -> None:
    # badVR.dcm has NumberOfFrames "1A": pydicom would raise on access; configure_pydicom keeps the text.
    configure_pydicom()
    parsed = read_instance(sample("badVR.dcm"))
    assert parsed.dataset.NumberOfFrames == "1A"


def test_configure_pydicom_is_idempotent() -> None:
    configure_pydicom()
    configure_pydicom()
    ds = Dataset()
    ds[0x00200013] = RawDataElement(BaseTag(0x00200013), "IS", 2, b"x1", 0, False, True)
    assert ds.InstanceNumber == "x1"


# --- rejected files ------------------------------------------------------------------------------------


def test_error_is_a_bad_request() -> None:
    assert issubclass(InvalidDicomInstanceError, BadRequestError)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    assert read_error(path) == "The DICOM instance is invalid: the file is empty."


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is not DICOM",
        b"\x00" * 64,
        b"%PDF-1.4\n" + b"x" * 400,
        b"\x00" * 128 + b"DICX" + b"\x00" * 64,
    ],
)
def test_non_dicom_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(content)
    assert read_error(path) == "The DICOM instance is invalid: the file is not DICOM (no 'DICM' prefix at offset 128)."


def test_raw_dataset_without_sop_instance_uid_is_rejected(tmp_path: Path) -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.PatientID = "X"
    path = tmp_path / "raw.dcm"
    pydicom.dcmwrite(path, ds, implicit_vr=False, little_endian=True, enforce_file_format=False)
    assert read_error(path) == (
        "The DICOM instance is invalid: the file is not DICOM (no preamble and no SOP Instance UID)."
    )


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bytes_starting_like_a_dataset_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "almost.dcm"
    path.write_bytes(b"\x08\x00\x05\x00" + bytes(range(256)) * 4)
    assert read_error(path).startswith("The DICOM instance is invalid: ")


def test_preamble_and_file_meta_only(tmp_path: Path) -> None:
    data = sample("CT_small.dcm").read_bytes()
    meta_end = 132 + 12 + struct.unpack_from("<L", data, 140)[0]  # (0002,0000) group length
    path = tmp_path / "meta-only.dcm"
    path.write_bytes(data[:meta_end])
    assert read_error(path) == "The DICOM instance is invalid: the file contains no data set."


@pytest.mark.parametrize(
    ("size", "message"),
    [
        # inside the file meta
        (140, "the file is truncated (a value of 4 bytes at offset 140 ends past the end of the file)."),
        (150, "the file is truncated (element header at offset 144 ends after 6 of 8 bytes)."),
        # inside the data set header
        (1000, "the file is truncated (a value of 72 bytes at offset 994 ends past the end of the file)."),
        (2001, "the file is truncated (7 bytes of an element header at offset 1994)."),
        # inside the Pixel Data element header (12 bytes at 6288)
        (6290, "the file is truncated (2 bytes of an element header at offset 6288)."),
        (6296, "the file is truncated (unpack requires a buffer of 4 bytes)."),
        # inside the pixel data
        (6300, "the file is truncated (a value of 32768 bytes at offset 6300 ends past the end of the file)."),
        (20000, "the file is truncated (a value of 32768 bytes at offset 6300 ends past the end of the file)."),
        # the last element (trailing padding after the pixel data)
        (39205, "the file is truncated (a value of 126 bytes at offset 39080 ends past the end of the file)."),
    ],
)
def test_truncated_native_file(tmp_path: Path, size: int, message: str) -> None:
    path = cut(sample("CT_small.dcm"), size, tmp_path)
    assert read_error(path) == f"The DICOM instance is invalid: {message}"


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (3038, "the file is truncated (item header at offset 3034 ends after 4 of 8 bytes)."),
        (3042, "the file is truncated (item header at offset 3042 ends after 0 of 8 bytes)."),
        (3100, "the file is truncated (a value of 250 bytes at offset 3050 ends past the end of the file)."),
        # all fragments present, the Sequence Delimitation Item missing or cut
        (3300, "the file is truncated (item header at offset 3300 ends after 0 of 8 bytes)."),
        (3307, "the file is truncated (item header at offset 3300 ends after 7 of 8 bytes)."),
    ],
)
def test_truncated_encapsulated_file(tmp_path: Path, size: int, message: str) -> None:
    path = cut(sample("JPEG2000.dcm"), size, tmp_path)
    assert read_error(path) == f"The DICOM instance is invalid: {message}"


@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "rtdose_rle.dcm"])
def test_truncated_at_every_tenth_of_the_file(tmp_path: Path, name: str) -> None:
    source = sample(name)
    data = source.read_bytes()
    for tenth in range(2, 10):
        size = len(data) * tenth // 10
        # A cut exactly between two elements leaves a shorter but well-formed file; move off the boundary.
        path = cut(source, size | 1, tmp_path)
        with pytest.raises(InvalidDicomInstanceError):
            read_instance(path)


def test_known_truncated_samples() -> None:
    assert read_error(sample("MR_truncated.dcm")) == (
        "The DICOM instance is invalid: the file is truncated "
        "(a value of 8192 bytes at offset 1500 ends past the end of the file)."
    )
    assert read_instance(sample("MR_small.dcm")).pixel_data_offset == 1500


def test_fragment_with_a_wrong_item_tag(tmp_path: Path) -> None:
    data = bytearray(sample("JPEG2000.dcm").read_bytes())
    data[3042:3046] = b"\xfe\xff\x00\xe1"  # second item (first fragment) no longer an Item tag
    path = tmp_path / "bad-item.dcm"
    path.write_bytes(bytes(data))
    assert read_error(path) == (
        "The DICOM instance is invalid: the DICOM structure is invalid "
        "(expected an item tag at offset 3042, found (FFFE,E100))."
    )


def test_sequence_item_overrunning_its_sequence(tmp_path: Path, instance: Dataset, write_dicom) -> None:
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    instance.ReferencedImageSequence = [item]
    path = write_dicom(instance)
    data = bytearray(path.read_bytes())
    position = data.index(b"\x08\x00\x40\x11SQ\x00\x00")  # (0008,1140) explicit SQ header
    seq_length = struct.unpack_from("<L", data, position + 8)[0]
    item_length_at = position + 12 + 4
    struct.pack_into("<L", data, item_length_at, seq_length)  # item now longer than its sequence
    bad = tmp_path / "overrun.dcm"
    bad.write_bytes(bytes(data))
    assert read_error(bad).startswith("The DICOM instance is invalid: ")


def test_reading_does_not_modify_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "copy.dcm"
    shutil.copyfile(sample("JPEG2000.dcm"), copy)
    before = copy.read_bytes()
    read_instance(copy)
    assert copy.read_bytes() == before


# --- the one-pass reader of well-formed files, against the general reader ------------------------------------------


def _general(path: Path, monkeypatch: pytest.MonkeyPatch) -> ParsedInstance | Exception:
    with monkeypatch.context() as patch:
        patch.setattr(reading, "_read_simple", lambda fp, size: None)
        try:
            return read_instance(path)
        except InvalidDicomInstanceError as exc:
            return exc


def _same(simple: ParsedInstance, general: ParsedInstance) -> None:
    assert dataset_to_json(simple.dataset) == dataset_to_json(general.dataset)
    assert sorted(simple.dataset.keys()) == sorted(general.dataset.keys())
    assert (simple.transfer_syntax, simple.is_implicit_vr, simple.file_size) == (
        general.transfer_syntax,
        general.is_implicit_vr,
        general.file_size,
    )
    assert (simple.pixel_data_offset, simple.pixel_data_length) == (
        general.pixel_data_offset,
        general.pixel_data_length,
    )
    assert simple.dataset.original_encoding == general.dataset.original_encoding


SAMPLES = sorted(p.name for p in sample("CT_small.dcm").parent.glob("*.dcm"))


# Some samples declare one VR encoding and use the other; pydicom warns as it follows the bytes.
@pytest.mark.filterwarnings("ignore:Expected explicit VR:UserWarning", "ignore:Expected implicit VR:UserWarning")
@pytest.mark.parametrize("name", SAMPLES)
def test_one_pass_reader_matches_the_general_reader_on_pydicoms_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = tmp_path / name
    shutil.copy(sample(name), path)
    general = _general(path, monkeypatch)
    with path.open("rb") as fp:
        simple = reading._read_simple(fp, path.stat().st_size)
    if simple is None:
        return  # the general reader's case: read_instance gives exactly ``general``
    assert isinstance(general, ParsedInstance), (
        f"the one-pass reader accepted what the general reader refuses: {general}"
    )
    _same(simple, general)


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("undefined", [False, True])
def test_one_pass_reader_takes_common_instances_with_sequences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, implicit: bool, undefined: bool
) -> None:
    ds = make_dataset(rows=4, columns=4)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Jürgen"
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-04000", "SRT", "Breast"
    inner = Dataset()
    inner.CodeValue = "X"
    item.ConceptNameCodeSequence = [inner]
    ds.AnatomicRegionSequence = [item, Dataset()]
    ds.AnatomicRegionSequence.is_undefined_length = undefined
    for each in ds.AnatomicRegionSequence:
        each.is_undefined_length_sequence_item = undefined
    path = tmp_path / "instance.dcm"
    path.write_bytes(to_bytes(ds, implicit=implicit))
    with path.open("rb") as fp:
        simple = reading._read_simple(fp, path.stat().st_size)
    assert simple is not None
    general = _general(path, monkeypatch)
    assert isinstance(general, ParsedInstance)
    _same(simple, general)
    assert simple.dataset.PatientName == "Müller^Jürgen"
    assert simple.dataset.AnatomicRegionSequence[0].ConceptNameCodeSequence[0].CodeValue == "X"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_one_pass_reader_on_damaged_headers_agrees_with_the_general_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seeded damage to the header bytes (lengths, VRs, tags, values): whatever the one-pass reader accepts, the
    # general reader reads the same way; the rest it leaves to the general reader.
    ds = make_dataset(rows=4, columns=4)
    item = Dataset()
    item.CodeValue = "T-04000"
    ds.AnatomicRegionSequence = [item]
    good = to_bytes(ds)
    pixel_start = good.rindex(b"\xe0\x7f\x10\x00")
    rng = random.Random(1234)
    path = tmp_path / "damaged.dcm"
    accepted = 0
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(132, pixel_start + 12)] = rng.randrange(256)
        path.write_bytes(bytes(data))
        with path.open("rb") as fp:
            simple = reading._read_simple(fp, len(data))
        if simple is None:
            continue
        general = _general(path, monkeypatch)
        assert isinstance(general, ParsedInstance), general
        try:
            expected = dataset_to_json(general.dataset)
        except Exception:  # noqa: BLE001 - a value pydicom cannot decode fails the same in both datasets
            with pytest.raises(Exception):  # noqa: B017
                dataset_to_json(simple.dataset)
            continue
        assert dataset_to_json(simple.dataset) == expected
        assert (simple.pixel_data_offset, simple.pixel_data_length) == (
            general.pixel_data_offset,
            general.pixel_data_length,
        )
        accepted += 1
    assert accepted > 50  # most damage is to values, which both read alike
