"""Frame byte ranges (dicom/frames.py): native and encapsulated pixel data, offset tables, bit-packed data."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.uid import RLELossless

from dicom_emulator.dicom.frames import (
    FrameLayoutError,
    FrameLocation,
    encapsulated_frames,
    frame_locations,
    frames_from_json,
    frames_json_for,
    frames_to_json,
    geometry_from,
    native_frames,
    read_frame,
    read_pixel_element,
)
from dicom_emulator.dicom.json_model import ViewMemo
from dicom_emulator.dicom.reading import read_instance
from dicom_emulator.dicom.validation import validate_for_store

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def build_instance() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.9.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.9"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.9.2"
    ds.PatientID = "PID-1"
    return ds


def sample(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is not installed"
    return Path(path)


class CountingFile(io.BytesIO):
    """A file that counts the bytes read through it (to prove that pixel data is not read)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def locate(path: Path) -> tuple[Dataset, list[FrameLocation]]:
    """Frames of a file the way retrieval does it: header by pydicom, pixel element and ranges by frames.py."""
    with path.open("rb") as fp:
        header = dcmread(fp, stop_before_pixels=True, force=True)
        implicit, little = header.original_encoding
        element = read_pixel_element(fp, implicit=bool(implicit), little=little is not False)
        encapsulated = header.file_meta.TransferSyntaxUID.is_encapsulated
        return header, frame_locations(fp, header, element, file_size=path.stat().st_size, encapsulated=encapsulated)


def frame_bytes(path: Path, locations: list[FrameLocation]) -> list[bytes]:
    with path.open("rb") as fp:
        return [read_frame(fp, loc) for loc in locations]


@pytest.mark.parametrize(
    "name",
    ["CT_small.dcm", "MR_small_implicit.dcm", "rtdose.dcm", "SC_rgb_small_odd.dcm", "SC_ybr_full_422_uncompressed.dcm"],
)
def test_native_frames_equal_pydicom_pixel_data_slices(name: str) -> None:
    path = sample(name)
    ds = dcmread(path)
    header, locations = locate(path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    assert len(locations) == frames
    size = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
    if ds.PhotometricInterpretation == "YBR_FULL_422":
        size = size // 3 * 2  # two samples per pixel (PS3.3 §C.7.6.3.1.2)
    got = frame_bytes(path, locations)
    assert got == [ds.PixelData[i * size : (i + 1) * size] for i in range(frames)]


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "rtdose_rle.dcm",
        "SC_rgb_rle_2frame.dcm",
        "JPEG2000.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "examples_ybr_color.dcm",
        "JPEGLSNearLossless_16.dcm",
    ],
)
def test_encapsulated_frames_equal_pydicom_frames(name: str) -> None:
    path = sample(name)
    ds = dcmread(path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    _, locations = locate(path)
    expected = list(generate_frames(ds.PixelData, number_of_frames=frames))
    assert frame_bytes(path, locations) == expected


def _locate_bytes(data: bytes) -> tuple[Dataset, list[FrameLocation], CountingFile]:
    fp = CountingFile(data)
    header = dcmread(fp, stop_before_pixels=True, force=True)
    element = read_pixel_element(fp, implicit=False, little=True)
    locations = frame_locations(fp, header, element, file_size=len(data), encapsulated=True)
    return header, locations, fp


def encapsulated_bytes(frames: list[bytes], *, extended: bool = False, **kwargs: Any) -> bytes:
    ds = build_instance()
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = 2, 2, 8, 1
    ds.NumberOfFrames = len(frames)
    if extended:
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(frames)
    else:
        ds.PixelData = encapsulate(frames, **kwargs)
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# JPEG-like frames: SOI ... EOI, odd lengths so that fragments get padded.
JPEG_FRAMES = [b"\xff\xd8" + bytes([i]) * (50 + 7 * i) + b"\xff\xd9" for i in range(1, 5)]


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"fragments_per_frame": 1, "has_bot": True}, "BOT, one fragment per frame"),
        ({"fragments_per_frame": 3, "has_bot": True}, "BOT, three fragments per frame"),
        ({"fragments_per_frame": 1, "has_bot": False}, "no BOT, one fragment per frame"),
        ({"fragments_per_frame": 2, "has_bot": False}, "no BOT, frames found by their EOI marker"),
        ({"extended": True}, "Extended Offset Table"),
    ],
)
def test_encapsulated_offset_tables(kwargs: dict[str, Any], what: str) -> None:
    data = encapsulated_bytes(JPEG_FRAMES, **kwargs)
    _, locations, fp = _locate_bytes(data)
    got = [read_frame(fp, loc) for loc in locations]
    # Fragments are padded to even length (PS3.5 §A.4): the stored frame is the padded bitstream.
    assert [g.rstrip(b"\0") for g in got] == JPEG_FRAMES, what
    assert all(len(g) % 2 == 0 for g in got)


def test_single_frame_spans_all_fragments() -> None:
    frame = b"\x01\x02" * 500
    data = encapsulated_bytes([frame], fragments_per_frame=4, has_bot=False)
    _, locations, fp = _locate_bytes(data)
    assert len(locations) == 1 and len(locations[0].segments) == 4
    assert read_frame(fp, locations[0]) == frame


def test_fragment_walk_reads_headers_only() -> None:
    frames = [b"\xff\xd8" + bytes([i % 251]) * 100_000 + b"\xff\xd9" for i in range(20)]
    data = encapsulated_bytes(frames, fragments_per_frame=1, has_bot=False)
    fp = CountingFile(data)
    header = dcmread(fp, stop_before_pixels=True, force=True)
    element = read_pixel_element(fp, implicit=False, little=True)
    before = fp.bytes_read
    locations = frame_locations(fp, header, element, file_size=len(data), encapsulated=True)
    assert len(locations) == 20
    assert fp.bytes_read - before < 1000  # 8-byte item headers, not 2 MB of fragments


def test_eoi_heuristic_reads_only_fragment_tails() -> None:
    frames = [b"\xff\xd8" + bytes([i % 251]) * 100_001 + b"\xff\xd9" for i in range(5)]
    data = encapsulated_bytes(frames, fragments_per_frame=3, has_bot=False)
    fp = CountingFile(data)
    header = dcmread(fp, stop_before_pixels=True, force=True)
    element = read_pixel_element(fp, implicit=False, little=True)
    before = fp.bytes_read
    locations = frame_locations(fp, header, element, file_size=len(data), encapsulated=True)
    assert fp.bytes_read - before < 1000  # item headers and 3-byte fragment tails only
    assert len(locations) == 5 and all(len(loc.segments) == 3 for loc in locations)
    assert [read_frame(fp, loc).rstrip(b"\0") for loc in locations] == frames


def test_bad_encapsulation_raises() -> None:
    data = encapsulated_bytes(JPEG_FRAMES, fragments_per_frame=1, has_bot=True)
    cut = data[: len(data) - 40]
    fp = CountingFile(cut)
    header = dcmread(fp, stop_before_pixels=True, force=True)
    element = read_pixel_element(fp, implicit=False, little=True)
    with pytest.raises(FrameLayoutError):
        frame_locations(fp, header, element, file_size=len(cut), encapsulated=True)
    # Fewer fragments than frames, no table: no way to split them.
    fp2 = CountingFile(encapsulated_bytes([b"\x00\x01" * 10], fragments_per_frame=1, has_bot=False))
    with pytest.raises(FrameLayoutError):
        encapsulated_frames(fp2, _pixel_value_offset(fp2), len(fp2.getvalue()), number_of_frames=3)


def _pixel_value_offset(fp: CountingFile) -> int:
    fp.seek(0)
    dcmread(fp, stop_before_pixels=True, force=True)
    element = read_pixel_element(fp, implicit=False, little=True)
    assert element is not None
    return element.value_offset


def test_bit_packed_frames_not_on_byte_boundaries() -> None:
    # 3x3 pixels of 1 bit = 9 bits per frame: frames 2 and 3 start inside a byte (PS3.5 §8.1.1).
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, size=27, dtype=np.uint8)
    packed = np.packbits(bits, bitorder="little").tobytes()
    geometry = geometry_from(_header(rows=3, columns=3, bits=1, frames=3))
    assert geometry is not None
    locations = native_frames(geometry, 100, len(packed))
    assert [loc.bit_offset for loc in locations] == [0, 1, 2]
    fp = io.BytesIO(b"\0" * 100 + packed)
    for index, location in enumerate(locations):
        frame = read_frame(fp, location)
        unpacked = np.unpackbits(np.frombuffer(frame, np.uint8), bitorder="little")[:9]
        assert unpacked.tolist() == bits[index * 9 : (index + 1) * 9].tolist()
    assert frames_from_json(frames_to_json(locations)) == locations


def _header(*, rows: int, columns: int, bits: int, frames: int = 1, samples: int = 1) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = rows, columns, bits, samples
    ds.NumberOfFrames = frames
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def test_truncated_native_pixel_data_keeps_whole_frames_only() -> None:
    geometry = geometry_from(_header(rows=2, columns=2, bits=16, frames=4))
    assert geometry is not None
    assert len(native_frames(geometry, 0, 8 * 3 + 5)) == 3


def test_json_shapes() -> None:
    locations = [
        FrameLocation(((10, 20),)),
        FrameLocation(((40, 2), (50, 6))),
        FrameLocation(((60, 3),), 5, 9),
    ]
    text = frames_to_json(locations)
    assert text == "[[10,20],[[40,2],[50,6]],[60,3,5,9]]"
    assert frames_from_json(text) == locations


def test_no_geometry_means_no_frames() -> None:
    header = build_instance()  # no Rows/Columns/BitsAllocated (Azure's TryGetPixelData, §3.4)
    assert frame_locations(io.BytesIO(), header, None, file_size=0, encapsulated=False) == []


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "rtdose.dcm", "MR_small_RLE.dcm", "examples_ybr_color.dcm", "JPEG2000.dcm"]
)
def test_store_time_ranges_match_retrieve_time_ranges(name: str) -> None:
    path = sample(name)
    parsed = read_instance(path)
    with path.open("rb") as fp:
        stored = frames_json_for(fp, parsed)
    assert stored is not None
    _, locations = locate(path)
    assert frames_from_json(stored) == locations
    # The store path reads the geometry from the element views validation built: the same ranges.
    memo, again = ViewMemo(), read_instance(path)
    validate_for_store(
        again.dataset, api_major=2, is_implicit_vr=False, route_study_uid=None, indexed_tags=(), memo=memo
    )
    with path.open("rb") as fp:
        assert frames_json_for(fp, again, memo) == stored


def test_store_time_special_cases(write_dicom: Any, instance: Dataset) -> None:
    # Deflated: offsets are inside the zlib stream, so they are left to retrieval (None).
    deflated = sample("image_dfl.dcm")
    with deflated.open("rb") as fp:
        assert frames_json_for(fp, read_instance(deflated)) is None
    # No pixel data at all: "[]" (known to have no frames).
    path = write_dicom(instance)
    with path.open("rb") as fp:
        assert frames_json_for(fp, read_instance(path)) == "[]"


def test_read_pixel_element_explicit_and_implicit() -> None:
    for name, implicit in (("CT_small.dcm", False), ("MR_small_implicit.dcm", True)):
        path = sample(name)
        with path.open("rb") as fp:
            dcmread(fp, stop_before_pixels=True)
            element = read_pixel_element(fp, implicit=implicit, little=True)
        assert element is not None and element.tag == 0x7FE00010
        assert (element.vr is None) == implicit
        ds = dcmread(path)
        assert element.length == len(ds.PixelData)
        with path.open("rb") as fp:
            fp.seek(element.value_offset)
            assert fp.read(16) == ds.PixelData[:16]


def test_explicit_vr_header_is_not_pixel_data() -> None:
    fp = io.BytesIO(struct.pack("<HH2sH", 0x0008, 0x0016, b"UI", 0))
    assert read_pixel_element(fp, implicit=False, little=True) is None
