"""Transfer-syntax conversion on retrieve, one frame at a time (azure-behaviour §3.2, §3.4).

Azure transcodes to Explicit VR Little Endian (``1.2.840.10008.1.2.1``) and to JPEG 2000 lossless
(``1.2.840.10008.1.2.4.90``) from the syntaxes its docs list: implicit VR, big endian, deflate, JPEG
baseline/extended, JPEG lossless, JPEG-LS, JPEG 2000 and RLE. Decoding and encoding use pydicom's
pixel decoders/encoders with the installed plugins (pylibjpeg with its libjpeg, openjpeg and rle
plugins, and Pillow); nothing here is a hand-written codec.

Memory: an instance is rewritten as header + pixel data, frame by frame. Only one decoded frame and
its encoded form are in memory at a time; native data in the same byte order is copied in chunks.
The exception is a deflated source, whose whole dataset pydicom has to inflate first.

Decoded colour data comes back as RGB (pydicom converts YBR_FULL/YBR_FULL_422 JPEG to RGB, as
fo-dicom's codecs do), interleaved (Planar Configuration 0); the rewritten header says so.
Failures raise :class:`TranscodingError`, Azure's ``TranscodingException`` (406).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import numpy as np
from PIL import Image
from pydicom import Dataset, FileMetaDataset, dcmread
from pydicom.encaps import encapsulate
from pydicom.filewriter import dcmwrite
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.encoders.base import get_encoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
)

from dicom_emulator.config import MAX_INFLATED_SIZE
from dicom_emulator.dicom.frames import (
    FrameLayoutError,
    FrameLocation,
    PixelElement,
    frame_locations,
    geometry_from,
    read_frame,
    read_pixel_element,
)
from dicom_emulator.dicom.reading import inflates_beyond
from dicom_emulator.dicom.values import first_of
from dicom_emulator.errors import NotAcceptableError

EXPLICIT_VR_LITTLE_ENDIAN = str(ExplicitVRLittleEndian)
JPEG_2000_LOSSLESS = str(JPEG2000Lossless)
# DicomCoreResource.UnsupportedTranscoding, thrown as TranscodingException → 406 (azure-behaviour §3.2).
TRANSCODING_FAILED = "The specified transcoding is not supported."

TARGET_SYNTAXES = frozenset({EXPLICIT_VR_LITTLE_ENDIAN, JPEG_2000_LOSSLESS})
# Native syntaxes whose pixel bytes are little endian: frames are identical in Explicit VR Little Endian.
_NATIVE_LITTLE = frozenset(
    {str(ImplicitVRLittleEndian), EXPLICIT_VR_LITTLE_ENDIAN, str(DeflatedExplicitVRLittleEndian)}
)
_PIXEL_KEYWORDS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
_COPY_CHUNK = 1024 * 1024
# Elements only valid with encapsulated pixel data (PS3.3 §C.7.6.3.1.8): dropped on decompression.
_EXTENDED_OFFSET_TAGS = (0x7FE00001, 0x7FE00002)


class TranscodingError(NotAcceptableError):
    """A frame or instance cannot be converted to the requested transfer syntax (406)."""

    def __init__(self, message: str = TRANSCODING_FAILED) -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class PixelSource:
    """What a decoder needs to know about one instance's pixel data besides the frame bytes."""

    header: Dataset
    transfer_syntax: str
    pixel_keyword: str = "PixelData"
    pixel_vr: str | None = None

    @property
    def uid(self) -> UID:
        return UID(self.transfer_syntax)

    @property
    def is_encapsulated(self) -> bool:
        return self.uid.is_encapsulated


def _int(header: Dataset, keyword: str, default: int | None = None) -> int | None:
    if keyword not in header:
        return default
    value = first_of(header[keyword].value)
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def decode_options(source: PixelSource) -> dict[str, Any]:
    """pydicom decoding options for ONE frame of ``source`` (Image Pixel module, PS3.3 §C.7.6.3)."""
    header = source.header
    geometry = geometry_from(header)
    if geometry is None:
        raise TranscodingError()
    bits_stored = _int(header, "BitsStored", geometry.bits_allocated)
    options: dict[str, Any] = {
        "rows": geometry.rows,
        "columns": geometry.columns,
        "samples_per_pixel": geometry.samples_per_pixel,
        "bits_allocated": geometry.bits_allocated,
        "bits_stored": bits_stored,
        "pixel_representation": _int(header, "PixelRepresentation", 0),
        "photometric_interpretation": geometry.photometric_interpretation or "MONOCHROME2",
        "number_of_frames": 1,
        "pixel_keyword": source.pixel_keyword,
    }
    if geometry.samples_per_pixel > 1:
        options["planar_configuration"] = _int(header, "PlanarConfiguration", 0)
    if source.pixel_vr:
        options["pixel_vr"] = source.pixel_vr
    return options


def decode_frame(frame: bytes, source: PixelSource, *, as_rgb: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode one frame's stored bytes to an array (rows, columns[, samples]) and its pixel properties.

    With ``as_rgb`` (the default), YBR_FULL / YBR_FULL_422 data is converted to RGB (pydicom ``raw=False``).
    Raises :class:`TranscodingError` when no installed plugin can decode it.
    """
    decoder = get_decoder(source.uid)
    if decoder is None or not decoder.is_available:
        raise TranscodingError()
    if source.is_encapsulated:
        buffer = encapsulate([frame])
    else:
        # An odd-length native frame (8-bit, odd pixel count) is padded as its value was (PS3.5 §7.1.1),
        # which big endian OW data needs to be swapped in 16-bit words.
        buffer = frame + b"\0" if len(frame) % 2 else frame
    try:
        array, meta = decoder.as_array(buffer, raw=not as_rgb, **decode_options(source))
    except TranscodingError:
        raise
    except Exception as exc:  # any codec failure is Azure's TranscodingException
        raise TranscodingError() from exc
    return array, dict(meta)


def _little_endian_bytes(array: np.ndarray) -> bytes:
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def _pack_bits(array: np.ndarray) -> bytes:
    # PS3.5 §8.1.1: 1-bit pixels, first pixel in the least significant bit.
    return np.packbits(array.astype(np.uint8).ravel(), bitorder="little").tobytes()


def frame_to_native(frame: bytes, source: PixelSource) -> tuple[bytes, dict[str, Any]]:
    """One frame as Explicit VR Little Endian pixel bytes, with the pixel properties they have."""
    if source.transfer_syntax in _NATIVE_LITTLE:
        return frame, {}  # already little-endian native bytes
    array, meta = decode_frame(frame, source)
    if _int(source.header, "BitsAllocated") == 1:
        return _pack_bits(array), meta
    return _little_endian_bytes(array), meta


def frame_to_jpeg2000(frame: bytes, source: PixelSource) -> tuple[bytes, dict[str, Any]]:
    """One frame as a JPEG 2000 lossless codestream (pylibjpeg-openjpeg through pydicom's encoder)."""
    if source.transfer_syntax == JPEG_2000_LOSSLESS:
        return frame, {}
    array, meta = decode_frame(frame, source)
    encoder = get_encoder(JPEG2000Lossless)
    if not encoder.is_available:
        raise TranscodingError()
    options = decode_options(source)
    photometric = str(meta.get("photometric_interpretation", options["photometric_interpretation"]))
    if min(options["rows"], options["columns"]) < _OPENJPEG_MIN_SIDE:
        meta["photometric_interpretation"] = photometric
        return _small_jpeg2000(array, options), meta
    try:
        encoded = encoder.encode(
            np.ascontiguousarray(array),
            rows=options["rows"],
            columns=options["columns"],
            samples_per_pixel=options["samples_per_pixel"],
            bits_allocated=options["bits_allocated"],
            bits_stored=options["bits_stored"],
            pixel_representation=options["pixel_representation"],
            photometric_interpretation=photometric,
            number_of_frames=1,
            planar_configuration=0,
            # No multiple-component transform: RGB stays RGB (PS3.5 §8.2.4 allows RGB without MCT).
            use_mct=False,
        )
    except Exception as exc:  # e.g. more than 24 bits stored, floating point data
        raise TranscodingError() from exc
    meta["photometric_interpretation"] = photometric
    return encoded, meta


# pylibjpeg-openjpeg always encodes 6 DWT resolution levels, and a level halves each side: sides under
# 2^5 = 32 px make OpenJPEG refuse (opj_start_compress). Smaller images go through Pillow's encoder (the
# same OpenJPEG library), which takes the number of levels.
_OPENJPEG_MIN_SIDE = 32
_MAX_RESOLUTIONS = 6


def resolution_levels(rows: int, columns: int) -> int:
    """The most DWT resolution levels (at most 6) an image of this size allows: 2^(levels-1) <= shorter side."""
    return max(1, min(_MAX_RESOLUTIONS, min(rows, columns).bit_length()))


def _small_jpeg2000(array: np.ndarray, options: dict[str, Any]) -> bytes:
    """A lossless JPEG 2000 codestream of a small unsigned image (8-bit grey or RGB, or up to 16-bit grey)."""
    rows, columns = options["rows"], options["columns"]
    samples, bits = options["samples_per_pixel"], options["bits_allocated"]
    if options["pixel_representation"] != 0:
        raise TranscodingError()  # Pillow encodes no signed samples
    data = np.ascontiguousarray(array)
    if samples == 1 and bits == 8:
        image = Image.frombytes("L", (columns, rows), data.astype(np.uint8).tobytes())
    elif samples == 1 and bits == 16:
        image = Image.frombytes("I;16", (columns, rows), data.astype("<u2").tobytes())
    elif samples == 3 and bits == 8:
        image = Image.frombytes("RGB", (columns, rows), data.astype(np.uint8).tobytes())
    else:
        raise TranscodingError()
    out = io.BytesIO()
    try:
        # A bare codestream (no JP2 box), reversible 5/3 wavelet (lossless), no colour transform (mct=0).
        image.save(
            out,
            format="JPEG2000",
            no_jp2=True,
            irreversible=False,
            mct=0,
            num_resolutions=resolution_levels(rows, columns),
        )
    except (OSError, ValueError) as exc:
        raise TranscodingError() from exc
    return out.getvalue()


def convert_frame(frame: bytes, source: PixelSource, target: str) -> bytes:
    """One frame in ``target`` (Explicit VR Little Endian or JPEG 2000 lossless); '*' = as stored."""
    if target in ("*", source.transfer_syntax):
        return frame
    if target == EXPLICIT_VR_LITTLE_ENDIAN:
        return frame_to_native(frame, source)[0]
    if target == JPEG_2000_LOSSLESS:
        return frame_to_jpeg2000(frame, source)[0]
    raise TranscodingError()


# --- whole instances -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenedInstance:
    """A stored file's header (pixel data excluded), its pixel element and its frames."""

    header: Dataset
    transfer_syntax: str
    element: PixelElement | None
    frames: list[FrameLocation]
    # Inflated dataset bytes for a deflated file (frame offsets point into this, not into the file).
    inflated: BinaryIO | None = None

    def source(self) -> PixelSource:
        tag = self.element.tag if self.element else 0x7FE00010
        vr = self.element.vr.decode("ascii") if self.element and self.element.vr else None
        return PixelSource(self.header, self.transfer_syntax, _PIXEL_KEYWORDS.get(tag, "PixelData"), vr)


def _transfer_syntax(header: Dataset) -> str:
    file_meta = getattr(header, "file_meta", None)
    value = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if value is not None and str(value).strip():
        return str(value).strip(" \0")
    implicit, little = header.original_encoding
    if implicit:
        return str(ImplicitVRLittleEndian)
    return EXPLICIT_VR_LITTLE_ENDIAN if little is not False else str(ExplicitVRBigEndian)


def open_instance(fp: BinaryIO, *, file_size: int, frames: Sequence[FrameLocation] | None = None) -> OpenedInstance:
    """Read the header of the Part 10 file ``fp`` (never its pixel data) and locate its frames.

    ``frames`` are the ranges computed at store time, if known. A deflated file is inflated into memory
    (pydicom cannot read it otherwise); then frame offsets refer to the inflated Pixel Data value.
    """
    fp.seek(0)
    header = dcmread(fp, stop_before_pixels=True, force=True)
    syntax = _transfer_syntax(header)
    if syntax == str(DeflatedExplicitVRLittleEndian):
        # Refused at store time since the bounded check exists; files stored before it are checked here.
        if inflates_beyond(fp, MAX_INFLATED_SIZE):
            raise TranscodingError()
        fp.seek(0)
        full = dcmread(fp, force=True)
        keyword = next((k for k in _PIXEL_KEYWORDS.values() if k in full), None)
        if keyword is None:
            return OpenedInstance(header, syntax, None, [])
        value = full[keyword].value
        tag = int(full[keyword].tag)
        element: PixelElement | None = PixelElement(tag, full[keyword].VR.encode("ascii"), 0, len(value))
        inflated = io.BytesIO(value)
        locations = frame_locations(inflated, header, element, file_size=len(value), encapsulated=False)
        return OpenedInstance(header, syntax, element, locations, inflated)
    implicit, little = header.original_encoding
    element = read_pixel_element(
        fp,
        implicit=bool(implicit) if implicit is not None else syntax == str(ImplicitVRLittleEndian),
        little=little is not False,
    )
    if frames is None:
        encapsulated = UID(syntax).is_encapsulated
        locations = frame_locations(fp, header, element, file_size=file_size, encapsulated=encapsulated)
    else:
        locations = list(frames)
    return OpenedInstance(header, syntax, element, locations)


def _frame_bytes(fp: BinaryIO, opened: OpenedInstance, location: FrameLocation) -> bytes:
    return read_frame(opened.inflated or fp, location)


def _element_header(tag: int, vr: bytes, length: int) -> bytes:
    # PS3.5 §7.1.2: explicit VR little endian, 2 reserved bytes and a 32-bit length for OB/OW/OF/OD/...
    return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr, 0, length)


def _write_header(
    out: BinaryIO, header: Dataset, target: str, changes: dict[int, tuple[str, Any]] | None = None
) -> None:
    """Write the preamble (zeros, §1.4), file meta and the non-pixel elements in ``target``.

    ``changes`` (tag → (VR, value)) replace elements in the written copy only: ``header`` is shared with the
    decoder of the remaining frames and must keep describing the stored pixel data.
    """
    ds = Dataset()
    ds.update(header)
    for tag in _EXTENDED_OFFSET_TAGS:
        if tag in ds:
            del ds[tag]
    for tag, (vr, value) in (changes or {}).items():
        ds.add_new(tag, vr, value)  # a new element: the shared one is left untouched
    ds.file_meta = (
        cast(FileMetaDataset, header.file_meta.copy())
        if getattr(header, "file_meta", None) is not None
        else FileMetaDataset()
    )
    ds.file_meta.add_new(0x00020010, "UI", UID(target))  # new element, as for ``changes``
    if "MediaStorageSOPClassUID" not in ds.file_meta and "SOPClassUID" in ds:
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "MediaStorageSOPInstanceUID" not in ds.file_meta and "SOPInstanceUID" in ds:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.preamble = b"\0" * 128
    # Every target is explicit VR little endian in its dataset encoding (PS3.5 §A.2, §A.4).
    dcmwrite(out, ds, enforce_file_format=True, implicit_vr=False, little_endian=True)


def _pixel_module_changes(header: Dataset, meta: dict[str, Any]) -> dict[int, tuple[str, Any]]:
    """Photometric Interpretation and Planar Configuration of the decoded pixels (PS3.3 §C.7.6.3)."""
    changes: dict[int, tuple[str, Any]] = {}
    photometric = meta.get("photometric_interpretation")
    if photometric and header.get("PhotometricInterpretation") != photometric:
        changes[0x00280004] = ("CS", str(photometric))
    if (_int(header, "SamplesPerPixel", 1) or 1) > 1:
        changes[0x00280006] = ("US", 0)  # decoded colour data is interleaved
    return changes


def transcode_instance(
    fp: BinaryIO,
    target: str,
    out: BinaryIO,
    *,
    file_size: int,
    frames: Sequence[FrameLocation] | None = None,
) -> None:
    """Write the instance ``fp`` to ``out`` as a Part 10 file in ``target``, one frame at a time.

    ``target`` is Explicit VR Little Endian or JPEG 2000 lossless; ``frames`` are the ranges computed at
    store time, if known. Raises :class:`TranscodingError` (406).
    """
    if target not in TARGET_SYNTAXES:
        raise TranscodingError()
    try:
        opened = open_instance(fp, file_size=file_size, frames=frames)
    except FrameLayoutError as exc:
        raise TranscodingError() from exc
    except Exception as exc:
        raise TranscodingError() from exc
    header = opened.header
    source = opened.source()
    element = opened.element
    if element is None:
        # No pixel data: the dataset is only re-encoded (fo-dicom's transcoder does the same).
        _write_header(out, header, target)
        return
    count = len(opened.frames)
    if target == EXPLICIT_VR_LITTLE_ENDIAN:
        _write_native(fp, opened, source, header, out, count)
    else:
        _write_jpeg2000(fp, opened, source, header, out, count)


def _write_native(
    fp: BinaryIO,
    opened: OpenedInstance,
    source: PixelSource,
    header: Dataset,
    out: BinaryIO,
    count: int,
) -> None:
    element = opened.element
    assert element is not None
    if source.transfer_syntax in _NATIVE_LITTLE and element.length is not None:
        # Same pixel bytes in Explicit VR Little Endian: copy the value in chunks.
        _write_header(out, header, EXPLICIT_VR_LITTLE_ENDIAN)
        out.write(_element_header(element.tag, element.vr or _implicit_vr(header, element.tag), element.length))
        reader = opened.inflated or fp
        reader.seek(element.value_offset)
        remaining = element.length
        while remaining > 0:
            chunk = reader.read(min(_COPY_CHUNK, remaining))
            if not chunk:
                raise TranscodingError()
            out.write(chunk)
            remaining -= len(chunk)
        return
    if count == 0:
        raise TranscodingError()
    bit_packed = _int(header, "BitsAllocated") == 1
    first, meta = frame_to_native(_frame_bytes(fp, opened, opened.frames[0]), source)
    if bit_packed and count > 1:
        raise TranscodingError()  # multi-frame 1-bit data would need frames packed across byte boundaries
    total = len(first) * count
    _write_header(out, header, EXPLICIT_VR_LITTLE_ENDIAN, _pixel_module_changes(header, meta))
    out.write(_element_header(element.tag, _implicit_vr(header, element.tag), total + (total % 2)))
    out.write(first)
    for location in opened.frames[1:]:
        data, _ = frame_to_native(_frame_bytes(fp, opened, location), source)
        if len(data) != len(first):
            raise TranscodingError()
        out.write(data)
    if total % 2:
        out.write(b"\0")  # PS3.5 §7.1.1: values have an even length


def _implicit_vr(header: Dataset, tag: int) -> bytes:
    if tag == 0x7FE00008:
        return b"OF"
    if tag == 0x7FE00009:
        return b"OD"
    # PS3.5 §A.2: OB for pixel data of at most 8 bits allocated, OW otherwise.
    return b"OB" if (_int(header, "BitsAllocated", 8) or 8) <= 8 else b"OW"


def _write_jpeg2000(
    fp: BinaryIO,
    opened: OpenedInstance,
    source: PixelSource,
    header: Dataset,
    out: BinaryIO,
    count: int,
) -> None:
    element = opened.element
    assert element is not None
    if element.tag != 0x7FE00010 or count == 0:
        raise TranscodingError()  # float pixel data cannot be encapsulated (PS3.5 §8.2)
    first, meta = frame_to_jpeg2000(_frame_bytes(fp, opened, opened.frames[0]), source)
    _write_header(out, header, JPEG_2000_LOSSLESS, _pixel_module_changes(header, meta))
    # PS3.5 §A.4: undefined length OB, an empty Basic Offset Table, one fragment per frame, delimiter.
    out.write(_element_header(0x7FE00010, b"OB", 0xFFFFFFFF))
    out.write(struct.pack("<HHL", 0xFFFE, 0xE000, 0))
    frame = first
    for index in range(count):
        if index:
            frame, _ = frame_to_jpeg2000(_frame_bytes(fp, opened, opened.frames[index]), source)
        padded = frame + b"\0" if len(frame) % 2 else frame
        out.write(struct.pack("<HHL", 0xFFFE, 0xE000, len(padded)))
        out.write(padded)
    out.write(struct.pack("<HHL", 0xFFFE, 0xE0DD, 0))
