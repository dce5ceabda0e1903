"""Transcoding (dicom/transcode.py): round trips against pydicom's own decoding, frame by frame, bounded memory."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_encoder
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from dicom_emulator.dicom.transcode import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    JPEG_2000_LOSSLESS,
    TRANSCODING_FAILED,
    TranscodingError,
    convert_frame,
    open_instance,
    resolution_levels,
    transcode_instance,
)

# Lossless sources: decoding after transcoding must give exactly the source pixels.
LOSSLESS = [
    ("MR_small_implicit.dcm", "implicit VR little endian"),
    ("MR_small_bigendian.dcm", "explicit VR big endian"),
    ("rtdose_expb.dcm", "big endian, 32 bit, 15 frames"),
    ("image_dfl.dcm", "deflated explicit VR little endian"),
    ("MR_small_RLE.dcm", "RLE"),
    ("rtdose_rle.dcm", "RLE, 32 bit, 15 frames"),
    ("SC_rgb_rle_2frame.dcm", "RLE RGB, 2 frames"),
    ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS lossless"),
    ("MR_small_jp2klossless.dcm", "JPEG 2000 lossless"),
    ("SC_rgb_jpeg_gdcm.dcm", "JPEG lossless SV1 RGB"),
    ("SC_rgb_small_odd.dcm", "explicit VR little endian, odd length"),
]
# Lossy sources: the transcoded pixels equal pydicom's decoding of the source (same decoder).
LOSSY = [
    ("JPGExtended.dcm", "JPEG extended 12 bit"),
    ("SC_rgb_jpeg_dcmtk.dcm", "JPEG baseline YBR_FULL"),
    ("examples_ybr_color.dcm", "JPEG baseline YBR_FULL_422, 30 frames"),
    ("JPEG2000.dcm", "JPEG 2000"),
    ("JPEGLSNearLossless_16.dcm", "JPEG-LS near lossless"),
]


def sample(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is not installed"
    return Path(path)


def transcode(path: Path, target: str) -> Dataset:
    out = io.BytesIO()
    with path.open("rb") as fp:
        transcode_instance(fp, target, out, file_size=path.stat().st_size)
    out.seek(0)
    return dcmread(out)


@pytest.mark.parametrize(("name", "what"), LOSSLESS + LOSSY)
def test_to_explicit_vr_little_endian(name: str, what: str) -> None:
    source = dcmread(sample(name))
    result = transcode(sample(name), EXPLICIT_VR_LITTLE_ENDIAN)
    assert result.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert result.preamble == b"\0" * 128
    assert result.SOPInstanceUID == source.SOPInstanceUID
    np.testing.assert_array_equal(result.pixel_array, source.pixel_array, err_msg=what)
    if source.get("SamplesPerPixel", 1) == 3:
        assert result.PhotometricInterpretation == "RGB"  # YBR decoded to RGB, interleaved
        assert result.PlanarConfiguration == 0
    assert "ExtendedOffsetTable" not in result


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "CT_small.dcm",
        "image_dfl.dcm",
        "JPGExtended.dcm",
    ],
)
def test_to_jpeg_2000_lossless(name: str) -> None:
    source = dcmread(sample(name))
    result = transcode(sample(name), JPEG_2000_LOSSLESS)
    assert result.file_meta.TransferSyntaxUID == JPEG2000Lossless
    np.testing.assert_array_equal(result.pixel_array, source.pixel_array)


def test_rgb_to_jpeg_2000_without_colour_transform() -> None:
    rows, columns = 80, 96
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(rows, columns, 3), dtype=np.uint8)
    path = write_native(pixels, photometric="RGB")
    result = transcode(path, JPEG_2000_LOSSLESS)
    assert result.PhotometricInterpretation == "RGB"
    np.testing.assert_array_equal(result.pixel_array, pixels)


def test_no_pixel_data_is_reencoded() -> None:
    result = transcode(sample("MR_small_implicit.dcm"), EXPLICIT_VR_LITTLE_ENDIAN)
    assert result.PatientName == dcmread(sample("MR_small_implicit.dcm")).PatientName
    report = transcode(sample("test-SR.dcm"), EXPLICIT_VR_LITTLE_ENDIAN)
    assert "PixelData" not in report and report.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_transcoding_failures_are_406_errors() -> None:
    # 32-bit data cannot be JPEG 2000 encoded by openjpeg.
    with pytest.raises(TranscodingError) as info:
        transcode(sample("rtdose.dcm"), JPEG_2000_LOSSLESS)
    assert info.value.message == TRANSCODING_FAILED == "The specified transcoding is not supported."
    with pytest.raises(TranscodingError):
        transcode(sample("CT_small.dcm"), "1.2.840.10008.1.2.4.50")  # not a target Azure offers


def test_convert_frame_big_endian_and_native_noop() -> None:
    path = sample("MR_small_bigendian.dcm")
    with path.open("rb") as fp:
        opened = open_instance(fp, file_size=path.stat().st_size)
        fp.seek(opened.frames[0].segments[0][0])
        stored = fp.read(opened.frames[0].segments[0][1])
    expected = dcmread(path).pixel_array.astype("<i2").tobytes()
    assert convert_frame(stored, opened.source(), EXPLICIT_VR_LITTLE_ENDIAN) == expected
    assert convert_frame(stored, opened.source(), "*") == stored
    implicit = sample("MR_small_implicit.dcm")
    with implicit.open("rb") as fp:
        opened = open_instance(fp, file_size=implicit.stat().st_size)
    assert convert_frame(b"\x01\x02", opened.source(), EXPLICIT_VR_LITTLE_ENDIAN) == b"\x01\x02"


def write_native(
    pixels: np.ndarray, *, photometric: str = "MONOCHROME2", implicit: bool = False, frames: int = 1
) -> Path:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.78"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.79"
    shape = pixels.shape[1:] if frames > 1 else pixels.shape
    ds.Rows, ds.Columns = shape[0], shape[1]
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = pixels.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = photometric
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = pixels.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = Path(write_native.tmp) / f"native-{photometric}-{frames}-{implicit}.dcm"  # type: ignore[attr-defined]
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(autouse=True)
def _tmp_for_writer(tmp_path: Path) -> None:
    write_native.tmp = tmp_path  # type: ignore[attr-defined]


FRAME_ROWS = FRAME_COLUMNS = 512
FRAME_BYTES = FRAME_ROWS * FRAME_COLUMNS * 2
FRAME_COUNT = 48  # 24 MiB of 16-bit pixels


def _multiframe_pixels() -> np.ndarray:
    ramp = (np.arange(FRAME_ROWS * FRAME_COLUMNS, dtype=np.uint32) % 4096).astype(np.uint16)
    ramp = ramp.reshape(FRAME_ROWS, FRAME_COLUMNS)
    return np.stack([np.roll(ramp, i * 17) for i in range(FRAME_COUNT)])


def _rle_multiframe(tmp_path: Path) -> tuple[Path, np.ndarray]:
    pixels = _multiframe_pixels()
    encoder = get_encoder(RLELossless)
    fragments = [
        encoder.encode(
            pixels[i],
            rows=FRAME_ROWS,
            columns=FRAME_COLUMNS,
            samples_per_pixel=1,
            bits_allocated=16,
            bits_stored=16,
            pixel_representation=0,
            photometric_interpretation="MONOCHROME2",
            number_of_frames=1,
        )
        for i in range(FRAME_COUNT)
    ]
    path = write_native(pixels[:1, :4, :4].copy(), frames=1)
    ds = dcmread(path)
    ds.Rows, ds.Columns, ds.NumberOfFrames = FRAME_ROWS, FRAME_COLUMNS, FRAME_COUNT
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    target = tmp_path / "rle-multiframe.dcm"
    ds.save_as(target, enforce_file_format=True)
    return target, pixels


@pytest.mark.parametrize("source", ["implicit", "rle"])
@pytest.mark.parametrize("target", [EXPLICIT_VR_LITTLE_ENDIAN, JPEG_2000_LOSSLESS])
def test_large_multiframe_is_transcoded_frame_by_frame(tmp_path: Path, source: str, target: str) -> None:
    if source == "implicit":
        pixels = _multiframe_pixels()
        path = write_native(pixels, implicit=True, frames=FRAME_COUNT)
    else:
        path, pixels = _rle_multiframe(tmp_path)
    out_path = tmp_path / "out.dcm"
    tracemalloc.start()
    try:
        with path.open("rb") as fp, out_path.open("wb") as out:
            transcode_instance(fp, target, out, file_size=path.stat().st_size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 24 MiB of pixels; one decoded frame is 0.5 MiB. The peak stays within a few frames.
    assert peak < 8 * FRAME_BYTES, f"peak {peak / 2**20:.1f} MiB"
    result = dcmread(out_path)
    assert int(result.NumberOfFrames) == FRAME_COUNT
    np.testing.assert_array_equal(result.pixel_array[[0, 17, FRAME_COUNT - 1]], pixels[[0, 17, FRAME_COUNT - 1]])


def test_rendering_one_frame_of_a_large_multiframe_reads_one_frame(tmp_path: Path) -> None:
    """The rendered/frames path (services/pixels.py): header, then one frame's bytes, one decode."""
    from dicom_emulator.dicom.frames import read_frame
    from dicom_emulator.dicom.rendering import IMAGE_PNG, render_frame
    from dicom_emulator.dicom.transcode import decode_frame

    path, pixels = _rle_multiframe(tmp_path)
    tracemalloc.start()
    try:
        with path.open("rb") as fp:
            opened = open_instance(fp, file_size=path.stat().st_size)
            array, meta = decode_frame(read_frame(fp, opened.frames[FRAME_COUNT - 1]), opened.source())
            png = render_frame(array, opened.header, str(meta["photometric_interpretation"]), IMAGE_PNG)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Windowing works on float64 copies of the one frame (4x its 16-bit size); all frames are 24 MiB.
    assert peak < 16 * FRAME_BYTES, f"peak {peak / 2**20:.1f} MiB"
    np.testing.assert_array_equal(array, pixels[FRAME_COUNT - 1])
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize(("rows", "columns"), [(1, 1), (4, 4), (16, 31), (31, 64), (2, 300)])
@pytest.mark.parametrize("kind", ["uint8", "uint16", "rgb"])
def test_small_images_encode_to_jpeg_2000(rows: int, columns: int, kind: str) -> None:
    # OpenJPEG through pylibjpeg always uses 6 resolution levels and refused sides under 32 px (406).
    rng = np.random.default_rng(rows * 1000 + columns)
    if kind == "rgb":
        pixels = rng.integers(0, 256, size=(rows, columns, 3), dtype=np.uint8)
    else:
        pixels = rng.integers(0, 256 if kind == "uint8" else 65536, size=(rows, columns), dtype=kind)
    path = write_native(pixels, photometric="RGB" if kind == "rgb" else "MONOCHROME2")
    result = transcode(path, JPEG_2000_LOSSLESS)
    assert result.file_meta.TransferSyntaxUID == JPEG2000Lossless
    np.testing.assert_array_equal(result.pixel_array, pixels)


@pytest.mark.parametrize(
    ("rows", "columns", "levels"), [(1, 1, 1), (2, 9, 2), (16, 16, 5), (31, 500, 5), (32, 32, 6), (512, 4096, 6)]
)
def test_resolution_levels_fit_the_shorter_side(rows: int, columns: int, levels: int) -> None:
    assert resolution_levels(rows, columns) == levels


def test_deflated_file_over_the_inflated_limit_is_not_inflated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Files stored before the store-time check: retrieve refuses (406) instead of inflating a bomb.
    from tests.factories import deflated_instance

    from dicom_emulator.dicom import transcode as module

    path = tmp_path / "bomb.dcm"
    path.write_bytes(deflated_instance(4 * 1024 * 1024))
    monkeypatch.setattr(module, "MAX_INFLATED_SIZE", 1024 * 1024)
    with pytest.raises(TranscodingError):
        transcode(path, EXPLICIT_VR_LITTLE_ENDIAN)
    monkeypatch.setattr(module, "MAX_INFLATED_SIZE", 8 * 1024 * 1024)
    assert transcode(path, EXPLICIT_VR_LITTLE_ENDIAN).NumberOfFrames == 4
