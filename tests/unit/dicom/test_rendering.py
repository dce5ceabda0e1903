"""Rendering (dicom/rendering.py): modality LUT, VOI window/LUT, inversion, colour, viewport, encoding."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicom_emulator.dicom.rendering import (
    IMAGE_JPEG,
    IMAGE_PNG,
    RenderingError,
    Viewport,
    Window,
    apply_window,
    fit_viewport,
    grayscale_to_8bit,
    render_frame,
    to_display,
)


def ct_header(**extra: object) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns = 1, 6
    ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation = 16, 12, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def linear(x: float, center: float, width: float) -> int:
    """PS3.3 §C.11.2.1.2.1, written out independently of the implementation."""
    if x <= center - 0.5 - (width - 1) / 2:
        return 0
    if x > center - 0.5 + (width - 1) / 2:
        return 255
    return round(((x - (center - 0.5)) / (width - 1) + 0.5) * 255)


HU = [-1000, -160, 0, 40, 239, 1000]  # air, window bottom, water, center, just below top, bone


def test_ct_window_gives_the_standard_grey_levels() -> None:
    stored = np.array([[h + 1024 for h in HU]], dtype=np.uint16)
    out = grayscale_to_8bit(stored, ct_header())
    assert out.tolist() == [[linear(h, 40, 400) for h in HU]]
    assert out.tolist() == [[0, 0, 102, 128, 255, 255]]


def test_monochrome1_is_inverted() -> None:
    stored = np.array([[h + 1024 for h in HU]], dtype=np.uint16)
    out = grayscale_to_8bit(stored, ct_header(PhotometricInterpretation="MONOCHROME1"))
    assert out.tolist() == [[255 - linear(h, 40, 400) for h in HU]]


def test_presentation_lut_shape_inverse() -> None:
    stored = np.array([[h + 1024 for h in HU]], dtype=np.uint16)
    out = grayscale_to_8bit(stored, ct_header(PresentationLUTShape="INVERSE"))
    assert out[0, 0] == 255 and out[0, -1] == 0


def test_window_override_and_functions() -> None:
    values = np.array([[0.0, 50.0, 100.0]])
    assert apply_window(values, Window(50, 100, "LINEAR_EXACT")).round().tolist() == [[0, 128, 255]]
    sigmoid = apply_window(values, Window(50, 100, "SIGMOID"))
    assert sigmoid[0, 1] == pytest.approx(127.5)
    assert sigmoid[0, 0] == pytest.approx(255 / (1 + math.exp(2)))
    stored = np.array([[h + 1024 for h in HU]], dtype=np.uint16)
    out = grayscale_to_8bit(stored, ct_header(), window=Window(0, 2000))
    assert out.tolist() == [[linear(h, 0, 2000) for h in HU]]


def test_functional_group_window_and_rescale() -> None:
    ds = Dataset()
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored = 1, 3, 16, 16
    ds.PhotometricInterpretation = "MONOCHROME2"
    frame_voi = Dataset()
    frame_voi.WindowCenter, frame_voi.WindowWidth = 100, 101
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = 2, 0
    shared = Dataset()
    shared.PixelValueTransformationSequence = [transform]
    per_frame = [Dataset(), Dataset()]
    per_frame[1].FrameVOILUTSequence = [frame_voi]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = per_frame
    stored = np.array([[0, 25, 75]], dtype=np.uint16)  # modality values 0, 50, 150
    out = grayscale_to_8bit(stored, ds, frame_index=1)
    assert out.tolist() == [[linear(v, 100, 101) for v in (0, 50, 150)]]


def test_voi_lut_sequence() -> None:
    ds = ct_header()
    del ds.WindowCenter, ds.WindowWidth
    del ds.RescaleSlope, ds.RescaleIntercept
    item = Dataset()
    item.LUTDescriptor = [4, 0, 8]  # 4 entries starting at 0, 8 bits
    item.LUTData = [0, 10, 200, 255]
    ds.VOILUTSequence = [item]
    out = grayscale_to_8bit(np.array([[0, 1, 2, 3, 9]], dtype=np.uint16), ds)
    assert out.tolist() == [[0, 10, 200, 255, 255]]


def test_min_max_window_without_voi() -> None:
    ds = ct_header()
    del ds.WindowCenter, ds.WindowWidth
    out = grayscale_to_8bit(np.array([[1000, 1500, 2000]], dtype=np.uint16), ds)
    assert out[0, 0] == 0 and out[0, 2] == 255 and 126 <= out[0, 1] <= 129


def test_smallest_largest_pixel_values() -> None:
    ds = ct_header(SmallestImagePixelValue=1024, LargestImagePixelValue=2048)
    del ds.WindowCenter, ds.WindowWidth
    out = grayscale_to_8bit(np.array([[1024, 2048, 3000]], dtype=np.uint16), ds)
    assert out.tolist() == [[0, 255, 255]]


def test_rgb_and_16_bit_rgb() -> None:
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    image = to_display(rgb, Dataset(), "RGB")
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 0, 0)
    header = Dataset()
    header.BitsStored = 16
    image16 = to_display((rgb.astype(np.uint16) * 257), header, "RGB")
    assert image16.getpixel((0, 0)) == (255, 0, 0)


def test_palette_colour() -> None:
    path = get_testdata_file("examples_palette.dcm")
    assert path is not None
    ds = dcmread(path)
    image = to_display(ds.pixel_array, ds, "PALETTE COLOR")
    assert image.mode == "RGB" and image.size == (ds.Columns, ds.Rows)


def test_unsupported_photometric_interpretation() -> None:
    with pytest.raises(RenderingError):
        to_display(np.zeros((2, 2, 3), dtype=np.uint8), Dataset(), "HSV")


def test_viewport_keeps_aspect_ratio() -> None:
    image = Image.new("L", (400, 200))
    assert fit_viewport(image, Viewport(100, 100)).size == (100, 50)
    assert fit_viewport(image, Viewport(None, 188)).size == (376, 188)
    assert fit_viewport(image, Viewport(None, None)).size == (400, 200)


@pytest.mark.parametrize("media_type", [IMAGE_JPEG, IMAGE_PNG])
def test_render_frame_encodes(media_type: str) -> None:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    ds = dcmread(path)
    data = render_frame(ds.pixel_array, ds, "MONOCHROME2", media_type, quality=50)
    image = Image.open(io.BytesIO(data))
    assert image.format == ("JPEG" if media_type == IMAGE_JPEG else "PNG")
    assert image.size == (128, 128) and image.mode == "L"


def test_jpeg_quality_changes_size() -> None:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    ds = dcmread(path)
    small = render_frame(ds.pixel_array, ds, "MONOCHROME2", IMAGE_JPEG, quality=5)
    large = render_frame(ds.pixel_array, ds, "MONOCHROME2", IMAGE_JPEG, quality=100)
    assert len(small) < len(large)
