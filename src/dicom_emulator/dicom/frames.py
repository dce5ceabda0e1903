"""Where each frame of an instance lives in its file: byte ranges computed once, read with seeks.

Frames are served from these ranges (architecture invariant 4, §3.4) instead of decoding the
dataset. Everything here works on an open binary file and header values; it never reads the pixel
data itself, only element and item headers (and, when a multi-fragment frame has to be delimited
without an offset table, the last two bytes of each fragment).

Native pixel data (PS3.5 §8.1.1, §8.2): frame ``i`` is ``frame_size`` bytes at ``value + i * frame_size``,
where ``frame_size = Rows * Columns * SamplesPerPixel * BitsAllocated / 8`` (two samples per pixel for
``YBR_FULL_422``, PS3.3 §C.7.6.3.1.2). With ``BitsAllocated`` 1 the frames are bit-packed and only start
on a byte boundary when ``Rows * Columns * SamplesPerPixel`` is a multiple of 8; other frames carry a bit
offset and are re-packed on read.

Encapsulated pixel data (PS3.5 §A.4): a Basic Offset Table item, then fragment items, then a Sequence
Delimitation Item. Frame boundaries come from, in order: the Extended Offset Table (PS3.3
§C.7.6.3.1.8), a non-empty Basic Offset Table, one fragment per frame, all fragments for a single
frame, or (no table, more fragments than frames) the JPEG/JPEG-LS/JPEG 2000 end-of-image marker
``FFD9`` at the end of a frame's last fragment (as pydicom's ``generate_fragmented_frames`` does).

The ranges are kept in the index as JSON (``Instance.frames_json``), one entry per frame:

- ``[offset, length]``: one contiguous byte range (native frames, single-fragment frames);
- ``[[offset, length], [offset, length], ...]``: fragments whose values are concatenated;
- ``[offset, length, bit_offset, bit_count]``: a bit-packed native frame starting ``bit_offset`` bits
  into its first byte (``BitsAllocated`` 1).

``[]`` means "the instance has no frames" (no Pixel Data, or Rows/Columns/BitsAllocated missing: Azure's
``TryGetPixelData`` condition, §3.4); NULL means "unknown", computed on demand.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from pydicom import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from dicom_emulator import json_text
from dicom_emulator.dicom.json_model import ViewMemo, dataset_encodings
from dicom_emulator.dicom.reading import ParsedInstance
from dicom_emulator.dicom.values import first_of

_ITEM = 0xFFFEE000
_SEQUENCE_DELIMITATION = 0xFFFEE0DD
_UNDEFINED_LENGTH = 0xFFFFFFFF
# PS3.5 §8: Pixel Data, Float Pixel Data, Double Float Pixel Data.
PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
# PS3.5 §7.1.2: explicit VRs with a 2-byte reserved field and a 32-bit length.
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
# JPEG (ITU T.81 B.1.1.3), JPEG-LS (T.87) end-of-image and JPEG 2000 end-of-codestream (T.800 A.4.4).
_END_OF_IMAGE = b"\xff\xd9"
_DEFLATED = str(DeflatedExplicitVRLittleEndian)


class FrameLayoutError(ValueError):
    """The pixel data's structure does not allow frame ranges (truncated, malformed, inconsistent)."""


@dataclass(frozen=True, slots=True)
class FrameLocation:
    """Where one frame's bytes are: segments concatenated in order, optionally bit-shifted (1-bit data)."""

    segments: tuple[tuple[int, int], ...]
    bit_offset: int = 0
    bit_count: int | None = None

    @property
    def stored_length(self) -> int:
        """Bytes read from the file for this frame."""
        return sum(length for _, length in self.segments)

    def to_json(self) -> list[Any]:
        if self.bit_count is not None:
            (offset, length), *_ = self.segments
            return [offset, length, self.bit_offset, self.bit_count]
        if len(self.segments) == 1:
            return list(self.segments[0])
        return [list(segment) for segment in self.segments]

    @classmethod
    def from_json(cls, value: Sequence[Any]) -> FrameLocation:
        if value and isinstance(value[0], list | tuple):
            return cls(tuple((int(o), int(n)) for o, n in value))
        if len(value) == 4:
            return cls(((int(value[0]), int(value[1])),), int(value[2]), int(value[3]))
        if len(value) == 2:
            return cls(((int(value[0]), int(value[1])),))
        raise ValueError(f"not a frame location: {value!r}")


@dataclass(frozen=True, slots=True)
class ImageGeometry:
    """The Image Pixel module values that decide frame sizes (PS3.3 §C.7.6.3)."""

    rows: int
    columns: int
    bits_allocated: int
    samples_per_pixel: int = 1
    number_of_frames: int = 1
    photometric_interpretation: str = ""

    @property
    def frame_size_bits(self) -> int:
        samples = self.samples_per_pixel
        if self.photometric_interpretation == "YBR_FULL_422" and samples == 3:
            samples = 2  # PS3.3 §C.7.6.3.1.2: Cb and Cr are sampled once per two pixels
        return self.rows * self.columns * samples * self.bits_allocated


@dataclass(frozen=True, slots=True)
class PixelElement:
    """The Pixel Data element header: tag, VR (None when implicit), value offset, length (None = undefined)."""

    tag: int
    vr: bytes | None
    value_offset: int
    length: int | None


def _int_value(value: Any) -> int | None:
    value = first_of(value)
    if value is None:
        return None
    try:
        return int(str(value).strip(" \0")) if not isinstance(value, int) else value
    except ValueError:
        return None


_GEOMETRY_TAGS = {
    "Rows": 0x00280010,
    "Columns": 0x00280011,
    "BitsAllocated": 0x00280100,
    "SamplesPerPixel": 0x00280002,
    "NumberOfFrames": 0x00280008,
    "PhotometricInterpretation": 0x00280004,
}


def _by_tag(ds: Dataset) -> Callable[[str], Any]:
    """``ds.get(keyword)`` for the geometry attributes, by tag: pydicom's keyword lookup cost more than the value."""

    def get(keyword: str) -> Any:
        tag = _GEOMETRY_TAGS[keyword]
        return ds[tag].value if tag in ds._dict else None

    return get


def _by_view(ds: Dataset, memo: ViewMemo) -> Callable[[str], Any]:
    """``ds.get(keyword).value`` for the geometry attributes, from the element views validation already built
    (decoding an element again through pydicom cost more than the rest of locating the frames)."""
    encodings = dataset_encodings(ds)

    def get(keyword: str) -> Any:
        view = memo.view(ds, _GEOMETRY_TAGS[keyword], encodings)
        if view is None or not view.values:
            return None
        value = view.values[0]
        return value.strip(" \0") if isinstance(value, str) else value

    return get


def geometry_from(header: Any, memo: ViewMemo | None = None) -> ImageGeometry | None:
    """Frame geometry from a pydicom dataset (header only), or None when Rows/Columns/BitsAllocated are missing.

    Azure's ``TryGetPixelData`` needs BitsAllocated, Columns, Rows and PixelData (azure-behaviour §3.4); a
    missing or zero value means there are no frames. ``NumberOfFrames`` defaults to 1 (PS3.3 §C.7.6.6).
    """
    if isinstance(header, Dataset):
        get = _by_view(header, memo) if memo is not None else _by_tag(header)
    else:
        get = header.get
    rows = _int_value(get("Rows"))
    columns = _int_value(get("Columns"))
    bits = _int_value(get("BitsAllocated"))
    if not rows or not columns or not bits:
        return None
    samples = _int_value(get("SamplesPerPixel")) or 1
    frames = _int_value(get("NumberOfFrames"))
    photometric = get("PhotometricInterpretation") or ""
    return ImageGeometry(
        rows=rows,
        columns=columns,
        bits_allocated=bits,
        samples_per_pixel=samples,
        number_of_frames=frames if frames and frames > 0 else 1,
        photometric_interpretation=str(photometric or "").strip(),
    )


def read_pixel_element(fp: BinaryIO, *, implicit: bool, little: bool) -> PixelElement | None:
    """Parse the element header at the current position if it is a Pixel Data element, else None.

    Used after ``dcmread(fp, stop_before_pixels=True)``, which leaves ``fp`` at the start of the pixel
    data element (PS3.5 §7.1.2 explicit, §7.1.3 implicit element headers).
    """
    start = fp.tell()
    head = fp.read(8)
    if len(head) < 8:
        return None
    endian = "<" if little else ">"
    group, element = struct.unpack(endian + "HH", head[:4])
    tag = group << 16 | element
    if tag not in PIXEL_DATA_TAGS:
        return None
    vr: bytes | None = None
    if implicit or not (b"AA" <= head[4:6] <= b"ZZ"):
        length = struct.unpack(endian + "L", head[4:])[0]
        value_offset = start + 8
    else:
        vr = head[4:6]
        if vr in _LONG_VRS:
            extra = fp.read(4)
            if len(extra) < 4:
                return None
            length = struct.unpack(endian + "L", extra)[0]
            value_offset = start + 12
        else:
            length = struct.unpack(endian + "H", head[6:])[0]
            value_offset = start + 8
    return PixelElement(tag, vr, value_offset, None if length == _UNDEFINED_LENGTH else length)


def native_frames(geometry: ImageGeometry, value_offset: int, value_length: int) -> list[FrameLocation]:
    """Frame ranges of native pixel data; frames that the value is too short to hold are left out."""
    bits = geometry.frame_size_bits
    available_bits = value_length * 8
    locations: list[FrameLocation] = []
    for index in range(geometry.number_of_frames):
        start_bit = index * bits
        if start_bit + bits > available_bits:
            break  # truncated pixel data: the remaining frames do not exist
        first_byte, bit_offset = divmod(start_bit, 8)
        if bits % 8 == 0:
            locations.append(FrameLocation(((value_offset + first_byte, bits // 8),)))
        else:
            # Bit-packed (BitsAllocated 1) frame not on a byte boundary (PS3.5 §8.1.1 packs pixels
            # across frames): keep the covering bytes and the bit offset, re-pack on read.
            length = (bit_offset + bits + 7) // 8
            locations.append(FrameLocation(((value_offset + first_byte, length),), bit_offset, bits))
    return locations


@dataclass(frozen=True, slots=True)
class _Fragment:
    item_offset: int  # file offset of the item tag
    value_offset: int
    length: int


def _walk_fragments(fp: BinaryIO, value_offset: int, file_size: int) -> tuple[bytes, list[_Fragment]]:
    """Read the Basic Offset Table and the fragment item headers (PS3.5 §A.4), seeking over the values."""
    fragments: list[_Fragment] = []
    bot = b""
    pos = value_offset
    first = True
    while True:
        fp.seek(pos)
        head = fp.read(8)
        if len(head) < 8:
            raise FrameLayoutError(f"encapsulated pixel data ends without a sequence delimiter at offset {pos}")
        group, element, length = struct.unpack("<HHL", head)
        tag = group << 16 | element
        if tag == _SEQUENCE_DELIMITATION:
            break
        if tag != _ITEM or length == _UNDEFINED_LENGTH:
            raise FrameLayoutError(f"expected a fragment item at offset {pos}, found ({group:04X},{element:04X})")
        if pos + 8 + length > file_size:
            raise FrameLayoutError(f"a fragment at offset {pos} runs past the end of the file")
        if first:
            bot = fp.read(length) if length else b""  # the offset table is small: 4 bytes per frame
            first = False
        else:
            fragments.append(_Fragment(pos, pos + 8, length))
        pos += 8 + length
    if first:
        raise FrameLayoutError("encapsulated pixel data has no Basic Offset Table item")
    return bot, fragments


def _ends_with_eoi(fp: BinaryIO, fragment: _Fragment) -> bool:
    if fragment.length < 2:
        return False
    tail = min(fragment.length, 3)
    fp.seek(fragment.value_offset + fragment.length - tail)
    data = fp.read(tail).rstrip(b"\0")  # fragments are padded to an even length (PS3.5 §A.4)
    return data.endswith(_END_OF_IMAGE)


def _group_by_offsets(fragments: list[_Fragment], offsets: Sequence[int], what: str) -> list[list[_Fragment]]:
    if not fragments:
        raise FrameLayoutError("encapsulated pixel data has no fragments")
    base = fragments[0].item_offset
    index_by_offset = {fragment.item_offset - base: i for i, fragment in enumerate(fragments)}
    starts: list[int] = []
    for offset in offsets:
        if offset not in index_by_offset:
            raise FrameLayoutError(f"the {what} offset {offset} is not the start of a fragment")
        starts.append(index_by_offset[offset])
    if starts != sorted(starts) or len(set(starts)) != len(starts):
        raise FrameLayoutError(f"the {what} offsets are not increasing")
    ends = [*starts[1:], len(fragments)]
    return [fragments[s:e] for s, e in zip(starts, ends, strict=True)]


def encapsulated_frames(
    fp: BinaryIO,
    value_offset: int,
    file_size: int,
    number_of_frames: int,
    extended_offsets: Sequence[int] | None = None,
) -> list[FrameLocation]:
    """Frame ranges of encapsulated pixel data whose value (the BOT item) starts at ``value_offset``."""
    bot, fragments = _walk_fragments(fp, value_offset, file_size)
    groups: list[list[_Fragment]]
    if extended_offsets:
        groups = _group_by_offsets(fragments, extended_offsets, "Extended Offset Table")
    elif bot:
        if len(bot) % 4:
            raise FrameLayoutError("the Basic Offset Table length is not a multiple of 4")
        offsets = struct.unpack(f"<{len(bot) // 4}L", bot)
        groups = _group_by_offsets(fragments, offsets, "Basic Offset Table")
    elif not fragments:
        raise FrameLayoutError("encapsulated pixel data has no fragments")
    elif number_of_frames == 1:
        groups = [fragments]  # PS3.5 §A.4: a single frame may span several fragments
    elif len(fragments) == number_of_frames:
        groups = [[fragment] for fragment in fragments]
    elif len(fragments) < number_of_frames:
        raise FrameLayoutError(f"{len(fragments)} fragments cannot hold {number_of_frames} frames")
    else:
        groups = []
        current: list[_Fragment] = []
        for fragment in fragments:
            current.append(fragment)
            if _ends_with_eoi(fp, fragment):
                groups.append(current)
                current = []
        if current or len(groups) != number_of_frames:
            raise FrameLayoutError("frame boundaries cannot be found without an offset table")
    return [FrameLocation(tuple((f.value_offset, f.length) for f in group)) for group in groups]


def frame_locations(
    fp: BinaryIO,
    header: Any,
    element: PixelElement | None,
    *,
    file_size: int,
    encapsulated: bool,
    memo: ViewMemo | None = None,
) -> list[FrameLocation]:
    """Frame ranges of an instance, given its header dataset and its pixel data element (None = absent).

    Returns ``[]`` when the instance has no frames in Azure's sense (azure-behaviour §3.4). Raises
    :class:`FrameLayoutError` when the pixel data is malformed. ``memo``: the header's element views, if built.
    """
    geometry = geometry_from(header, memo)
    if geometry is None or element is None:
        return []
    if encapsulated:
        if element.length is not None:
            raise FrameLayoutError("encapsulated pixel data with a defined length")
        extended: list[int] | None = None
        if (0x7FE0, 0x0001) in header:
            raw = header[0x7FE00001].value
            if raw:
                extended = list(struct.unpack(f"<{len(raw) // 8}Q", raw))
        return encapsulated_frames(fp, element.value_offset, file_size, geometry.number_of_frames, extended)
    if element.length is None:
        raise FrameLayoutError("native pixel data with an undefined length")
    if element.value_offset + element.length > file_size:
        raise FrameLayoutError("the pixel data runs past the end of the file")
    return native_frames(geometry, element.value_offset, element.length)


def read_frame(fp: BinaryIO, location: FrameLocation) -> bytes:
    """The stored bytes of one frame (fragments concatenated, bit-packed frames re-aligned to bit 0)."""
    chunks = []
    for offset, length in location.segments:
        fp.seek(offset)
        data = fp.read(length)
        if len(data) != length:
            raise FrameLayoutError(f"the file ends inside a frame at offset {offset}")
        chunks.append(data)
    data = b"".join(chunks)
    if location.bit_count is None:
        return data
    return realign_bits(data, location.bit_offset, location.bit_count)


def realign_bits(data: bytes, bit_offset: int, bit_count: int) -> bytes:
    """Bits ``[bit_offset, bit_offset + bit_count)`` of little-endian-bit-ordered ``data``, packed from bit 0.

    PS3.5 §8.1.1: 1-bit pixels are packed with the first pixel in the least significant bit.
    """
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[bit_offset : bit_offset + bit_count]
    return np.packbits(bits, bitorder="little").tobytes()


def frames_to_json(locations: Sequence[FrameLocation]) -> str:
    return json_text.dumps([location.to_json() for location in locations])


def frames_from_json(text: str) -> list[FrameLocation]:
    return [FrameLocation.from_json(entry) for entry in json_text.loads(text)]


def frames_json_for(fp: BinaryIO, parsed: ParsedInstance, memo: ViewMemo | None = None) -> str | None:
    """The ``frames_json`` of a freshly parsed instance (store time), from ``read_instance``'s offsets.

    ``"[]"`` when it has no frames; None when they cannot be located here (deflated data, whose offsets
    are inside the zlib stream, or malformed pixel data): retrieval then locates them on demand.
    """
    if geometry_from(parsed.dataset, memo) is None:
        return "[]"
    if parsed.pixel_data_offset is None:
        if parsed.transfer_syntax == _DEFLATED:
            return None
        return "[]"  # no Pixel Data element
    element = PixelElement(0x7FE00010, None, parsed.pixel_data_offset, parsed.pixel_data_length)
    encapsulated = UID(parsed.transfer_syntax).is_encapsulated
    try:
        locations = frame_locations(
            fp, parsed.dataset, element, file_size=parsed.file_size, encapsulated=encapsulated, memo=memo
        )
    except (FrameLayoutError, struct.error, OSError):
        return None
    return frames_to_json(locations)
