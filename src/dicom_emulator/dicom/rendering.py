"""Render one decoded frame as a JPEG or PNG image (azure-behaviour §3.6; PS3.3 §C.11, PS3.18 §8.3.5).

Azure renders with fo-dicom's ``DicomImage.RenderImage`` and ImageSharp; this module follows the same
grayscale pipeline (``GrayscaleRenderOptions.FromDataset``), written against the standard:

1. Modality LUT (PS3.3 §C.11.1): Rescale Slope/Intercept, from the top level or the frame's
   Pixel Value Transformation functional group, or a Modality LUT Sequence (pydicom
   ``apply_modality_lut``). As fo-dicom does, a Modality LUT Sequence is not applied for display on
   XA/XRF images (it maps to X-ray intensity, not to the VOI input space).
2. VOI LUT (PS3.3 §C.11.2), first match wins: an explicit window (emulator extension, ``--loose``);
   a VOI LUT Sequence (pydicom ``apply_voi``); the first Window Center/Width at the top level or in the
   frame's Frame VOI LUT functional group, with VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID;
   Smallest/Largest Image Pixel Value; else the frame's own minimum and maximum (pixel padding
   excluded). Output is 8 bits (0..255), as fo-dicom renders.
3. MONOCHROME1, or Presentation LUT Shape INVERSE (PS3.3 §C.11.6), is inverted.

Colour: RGB (YBR data arrives already converted to RGB by the decoder) is scaled from Bits Stored to
8 bits; PALETTE COLOR goes through its palette (pydicom ``apply_color_lut``). The image is then
optionally fitted into a viewport (thumbnails, PS3.18 §8.3.5.1.3) and encoded with Pillow: JPEG with
``quality`` (1..100), PNG lossless; greyscale images are mode ``L``, colour ``RGB``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi

from dicom_emulator.dicom.values import first_of

IMAGE_JPEG = "image/jpeg"
IMAGE_PNG = "image/png"
# SOP classes whose Modality LUT is not used for display (fo-dicom, after D. Clunie, 2000).
_XA_XRF_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic Image Storage
        "1.2.840.10008.5.1.4.1.1.12.2",  # X-Ray Radiofluoroscopic Image Storage
        "1.2.840.10008.5.1.4.1.1.12.3",  # X-Ray Angiographic Bi-Plane Image Storage (retired)
    }
)
_WINDOW_FUNCTIONS = frozenset({"LINEAR", "LINEAR_EXACT", "SIGMOID"})
_MONOCHROME = frozenset({"MONOCHROME1", "MONOCHROME2"})


class RenderingError(ValueError):
    """The frame cannot be turned into an image (unsupported photometric interpretation, bad LUT...)."""


@dataclass(frozen=True, slots=True)
class Window:
    """A VOI window (PS3.3 §C.11.2.1.2): center, width and VOI LUT Function."""

    center: float
    width: float
    function: str = "LINEAR"


@dataclass(frozen=True, slots=True)
class Viewport:
    """Target size in pixels; a missing side keeps the aspect ratio (PS3.18 §8.3.5.1.3)."""

    width: int | None
    height: int | None


def _first_number(value: Any) -> float | None:
    value = first_of(value)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _functional_item(header: Dataset, sequence: str, frame_index: int) -> Dataset | None:
    """The item of functional group ``sequence`` for a frame: per-frame first, then shared (PS3.3 §C.7.6.16)."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame_index), ("SharedFunctionalGroupsSequence", 0)):
        items = header.get(groups)
        if not items or index >= len(items):
            continue
        inner = items[index].get(sequence)
        if inner:
            return inner[0]  # type: ignore[no-any-return]
    return None


def _rescale(header: Dataset, frame_index: int) -> tuple[float, float] | None:
    """Rescale Slope and Intercept (PS3.3 §C.11.1.1.2), top level first as fo-dicom reads them."""
    slope = _first_number(header.get("RescaleSlope"))
    intercept = _first_number(header.get("RescaleIntercept"))
    if slope is None and intercept is None:
        item = _functional_item(header, "PixelValueTransformationSequence", frame_index)
        if item is not None:
            slope = _first_number(item.get("RescaleSlope"))
            intercept = _first_number(item.get("RescaleIntercept"))
    if slope is None and intercept is None:
        return None
    return (slope if slope is not None else 1.0), (intercept if intercept is not None else 0.0)


def modality_transform(array: np.ndarray, header: Dataset, frame_index: int = 0) -> np.ndarray:
    """Stored values → modality values (float64)."""
    values = array.astype(np.float64)
    has_lut_sequence = bool(header.get("ModalityLUTSequence"))
    if has_lut_sequence:
        if str(header.get("SOPClassUID", "")) in _XA_XRF_SOP_CLASSES:
            return values
        try:
            return np.asarray(apply_modality_lut(array, header), dtype=np.float64)
        except Exception as exc:  # malformed LUT descriptor/data
            raise RenderingError(f"invalid Modality LUT: {exc}") from exc
    rescale = _rescale(header, frame_index)
    if rescale is None:
        return values
    slope, intercept = rescale
    return values * slope + intercept


def _dataset_window(header: Dataset, frame_index: int) -> Window | None:
    function = str(header.get("VOILUTFunction") or "LINEAR").strip().upper()
    center = _first_number(header.get("WindowCenter"))
    width = _first_number(header.get("WindowWidth"))
    if center is None or width is None or width < 1:
        item = _functional_item(header, "FrameVOILUTSequence", frame_index)
        if item is None:
            return None
        center = _first_number(item.get("WindowCenter"))
        width = _first_number(item.get("WindowWidth"))
        function = str(item.get("VOILUTFunction") or function).strip().upper()
        if center is None or width is None or width < 1:
            return None
    return Window(center, width, function if function in _WINDOW_FUNCTIONS else "LINEAR")


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Window ``values`` to 0..255 (float), PS3.3 §C.11.2.1.2.1 (LINEAR), §C.11.2.1.3 (LINEAR_EXACT, SIGMOID)."""
    center, width = window.center, window.width
    if window.function == "SIGMOID":
        return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / max(width, 1e-9)))
    if window.function == "LINEAR_EXACT":
        width = max(width, 1e-9)
        return np.clip(((values - center) / width + 0.5) * 255.0, 0.0, 255.0)
    if width <= 1:
        # LINEAR with width 1 is a threshold at center - 0.5 (the formula's w - 1 is zero).
        return np.where(values > center - 0.5, 255.0, 0.0)
    scaled = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    return np.clip(scaled, 0.0, 255.0)


def _min_max_window(values: np.ndarray, stored: np.ndarray, header: Dataset) -> Window:
    padding = _first_number(header.get("PixelPaddingValue"))
    selected = values if padding is None else values[stored != padding]
    if selected.size == 0:
        selected = values
    low, high = float(selected.min()), float(selected.max())
    # fo-dicom FromMinMax: width = max(1, |max - min|), center = (max + min) / 2.
    return Window((high + low) / 2.0, max(1.0, abs(high - low)))


def _pixel_value_window(header: Dataset, frame_index: int) -> Window | None:
    smallest = _first_number(header.get("SmallestImagePixelValue"))
    largest = _first_number(header.get("LargestImagePixelValue"))
    if smallest is None or largest is None or smallest >= largest:
        return None
    rescale = _rescale(header, frame_index) or (1.0, 0.0)
    low, high = smallest * rescale[0] + rescale[1], largest * rescale[0] + rescale[1]
    function = str(header.get("VOILUTFunction") or "LINEAR").strip().upper()
    return Window((high + low) / 2.0, abs(high - low), function if function in _WINDOW_FUNCTIONS else "LINEAR")


def _voi_lut(values: np.ndarray, header: Dataset) -> np.ndarray | None:
    sequence = header.get("VOILUTSequence")
    if not sequence:
        return None
    # The LUT is indexed by (integer) modality values (PS3.3 §C.11.2.1.1).
    indices = np.rint(values).astype(np.int64)
    try:
        output = apply_voi(indices, header, index=0)
        descriptor = sequence[0].LUTDescriptor
        bits = int(descriptor[2])
    except Exception as exc:  # malformed VOI LUT
        raise RenderingError(f"invalid VOI LUT: {exc}") from exc
    top = float(2**bits - 1) if 8 <= bits <= 16 else float(np.max(output) or 1)
    return np.clip(np.asarray(output, dtype=np.float64) / top * 255.0, 0.0, 255.0)


def grayscale_to_8bit(
    array: np.ndarray, header: Dataset, *, frame_index: int = 0, window: Window | None = None
) -> np.ndarray:
    """Monochrome stored values → display values 0..255 (uint8), steps 1-3 of the module docstring."""
    values = modality_transform(array, header, frame_index)
    output: np.ndarray | None = None
    if window is None:
        output = _voi_lut(values, header)
        if output is None:
            window = _dataset_window(header, frame_index) or _pixel_value_window(header, frame_index)
    if output is None:
        output = apply_window(values, window or _min_max_window(values, array, header))
    photometric = str(header.get("PhotometricInterpretation") or "MONOCHROME2").strip()
    shape = str(header.get("PresentationLUTShape") or "").strip().upper()
    if photometric == "MONOCHROME1" or shape == "INVERSE":
        output = 255.0 - output
    return np.rint(output).astype(np.uint8)


def _scale_to_8bit(array: np.ndarray, bits: int) -> np.ndarray:
    if array.dtype == np.uint8 and bits <= 8:
        return array
    top = float(2**bits - 1) if bits > 0 else float(array.max() or 1)
    return np.rint(np.clip(array.astype(np.float64) / top * 255.0, 0.0, 255.0)).astype(np.uint8)


def to_display(
    array: np.ndarray,
    header: Dataset,
    photometric: str,
    *,
    frame_index: int = 0,
    window: Window | None = None,
) -> Image.Image:
    """A decoded frame (``photometric`` as the decoder returned it) → a Pillow image (L or RGB)."""
    photometric = photometric.strip().upper()
    if photometric in _MONOCHROME:
        if array.ndim != 2:
            raise RenderingError(f"a {photometric} frame must have one sample per pixel")
        return Image.fromarray(grayscale_to_8bit(array, header, frame_index=frame_index, window=window), mode="L")
    if photometric == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(array, header)
        except Exception as exc:
            raise RenderingError(f"invalid palette: {exc}") from exc
        bits = 8 if rgb.dtype == np.uint8 else 16
        return Image.fromarray(_scale_to_8bit(rgb, bits), mode="RGB")
    if photometric == "RGB":
        if array.ndim != 3 or array.shape[2] != 3:
            raise RenderingError("an RGB frame must have three samples per pixel")
        stored = int(_first_number(header.get("BitsStored")) or array.dtype.itemsize * 8)
        return Image.fromarray(np.ascontiguousarray(_scale_to_8bit(array, stored)), mode="RGB")
    raise RenderingError(f"photometric interpretation {photometric!r} cannot be rendered")


def fit_viewport(image: Image.Image, viewport: Viewport) -> Image.Image:
    """Scale ``image`` to fit inside ``viewport``, keeping its aspect ratio (never upscaling beyond it)."""
    width, height = image.size
    scales = []
    if viewport.width:
        scales.append(viewport.width / width)
    if viewport.height:
        scales.append(viewport.height / height)
    if not scales:
        return image
    scale = min(scales)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def encode_image(image: Image.Image, media_type: str, quality: int = 100) -> bytes:
    """Encode as ``image/jpeg`` (with ``quality`` 1..100) or ``image/png``."""
    out = io.BytesIO()
    if media_type == IMAGE_PNG:
        image.save(out, format="PNG")
    else:
        image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def render_frame(
    array: np.ndarray,
    header: Dataset,
    photometric: str,
    media_type: str,
    *,
    quality: int = 100,
    frame_index: int = 0,
    window: Window | None = None,
    viewport: Viewport | None = None,
) -> bytes:
    """Render a decoded frame to JPEG/PNG bytes. Raises :class:`RenderingError`."""
    image = to_display(array, header, photometric, frame_index=frame_index, window=window)
    if viewport is not None:
        image = fit_viewport(image, viewport)
    return encode_image(image, media_type, quality)
