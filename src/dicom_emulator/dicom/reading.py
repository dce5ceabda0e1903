"""Parse a stored DICOM part file into a header dataset without loading its pixel data (azure-behaviour §2.3 step 1)."""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import pydicom
from pydicom import config as pydicom_config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.hooks import hooks as pydicom_hooks
from pydicom.hooks import raw_element_value as _default_raw_element_value
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.valuerep import VR as VR_

from dicom_emulator.config import MAX_INFLATED_SIZE
from dicom_emulator.dicom.json_model import BULK_DATA_VRS, STRING_VRS
from dicom_emulator.errors import BadRequestError

# PS3.5 §8: (7FE0,0010) Pixel Data, (7FE0,0008) Float Pixel Data, (7FE0,0009) Double Float Pixel Data.
PIXEL_DATA_TAGS: tuple[int, ...] = (0x7FE00010, 0x7FE00008, 0x7FE00009)

# Values longer than this are skipped with a seek while parsing instead of being read (pydicom defer_size):
# pixel data and other bulk data can be hundreds of MB.
_DEFER_SIZE = 64 * 1024
_UNDEFINED_LENGTH = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_DELIMITATION = 0xFFFEE00D
_SEQUENCE_DELIMITATION = 0xFFFEE0DD
# PS3.5 §7.1.2: explicit VRs whose header has 2 reserved bytes and a 32-bit length.
_LONG_LENGTH_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_MAX_NESTING = 64


class InvalidDicomInstanceError(BadRequestError):
    """The bytes of a STOW part are not a readable DICOM instance (FailureReason 43264, §2.3)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"The DICOM instance is invalid: {detail}")


@dataclass(frozen=True)
class ParsedInstance:
    """The header of one instance plus where its pixel data lives in the file.

    ``dataset`` holds no pixel data element: its value stays in the file at ``pixel_data_offset``.
    Other bulk-data values (VR OB/OW/...) larger than 64 KiB stay deferred: pydicom reads them from the
    file path on access, so treat ``dataset`` as a header for metadata and validation, never re-serialise it.
    """

    dataset: Dataset
    transfer_syntax: str
    is_implicit_vr: bool
    file_size: int
    # File offset of the first byte of the Pixel Data VALUE (after its element header); for encapsulated
    # pixel data that is the Basic Offset Table item header. None when the instance has no pixel data, and
    # for a deflated transfer syntax whose dataset bytes are compressed.
    pixel_data_offset: int | None
    # Declared value length; None when undefined (encapsulated, PS3.5 §A.4) or when there is no pixel data.
    pixel_data_length: int | None


def configure_pydicom() -> None:
    """Make pydicom read any client bytes leniently. Call once at application start (and in tests).

    pydicom's configuration and hooks are process-global, so this cannot be scoped to one read; Azure
    (fo-dicom, reading without validation) accepts instances whatever their values, and validation is our
    own job (``validation.py``), so pydicom must not refuse invalid values. Writing validation is left as is.
    """
    # Invalid values in a client's file are reported by validate_for_store, not by the parser.
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    # A binary value whose length is not a multiple of its size becomes UN instead of raising on access.
    pydicom_config.convert_wrong_length_to_UN = True
    # PS3.5 §6.2.2: an undefined-length UN is a sequence; an explicit UN for a known tag uses the known VR.
    pydicom_config.settings.infer_sq_for_un_vr = True
    pydicom_config.replace_un_with_known_vr = True
    # pydicom raises on access to an IS/DS value that is not a number (e.g. "1A"); keep it as text instead.
    pydicom_hooks.register_callback("raw_element_value", _lenient_raw_element_value)


def _lenient_raw_element_value(
    raw: RawDataElement, data: dict[str, Any], *, encoding: Any = None, ds: Dataset | None = None, **kwargs: Any
) -> None:
    try:
        _default_raw_element_value(raw, data, encoding=encoding, ds=ds, **kwargs)
    except (ValueError, OverflowError):
        if data.get("VR") not in STRING_VRS:
            raise
        text = (raw.value or b"").decode("latin-1").rstrip(" \0")
        parts = text.split("\\")
        data["value"] = parts[0] if len(parts) == 1 else parts


class DeflateBombError(InvalidDicomInstanceError):
    """A deflated data set that inflates beyond the limit (a zip bomb): refused at store time (43264)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the deflated data set inflates to more than {limit} bytes.")


_INFLATE_CHUNK = 64 * 1024
_DEFLATED = str(DeflatedExplicitVRLittleEndian)


def _deflated_stream_start(fp: BinaryIO) -> int | None:
    """Where the zlib stream of a Deflated Explicit VR Little Endian file starts; None for any other file.

    Walks the file meta group (PS3.10 §7.1: explicit VR little endian, group 0002) from the current
    position without pydicom, which would inflate the whole data set to read it.
    """
    head = fp.read(132)
    start = 132 if len(head) == 132 and head[128:132] == b"DICM" else 0
    fp.seek(start)
    syntax: bytes | None = None
    meta_end: int | None = None  # from the group length (0002,0000), which PS3.10 requires
    while meta_end is None or fp.tell() < meta_end:
        header = fp.read(8)
        if len(header) < 8:
            return None
        group, element = struct.unpack_from("<HH", header)
        if group != 0x0002:
            fp.seek(-8, 1)
            break
        vr = header[4:6]
        if vr in _LONG_LENGTH_VRS:
            extra = fp.read(4)
            if len(extra) < 4:
                return None
            length = struct.unpack("<I", extra)[0]
        else:
            length = struct.unpack_from("<H", header, 6)[0]
        if length == _UNDEFINED_LENGTH:
            return None
        value = fp.read(length)
        if len(value) < length:
            return None  # truncated: the parser reports it
        if element == 0x0000 and length == 4:
            meta_end = fp.tell() + struct.unpack("<I", value)[0]
        if element == 0x0010:
            syntax = value.rstrip(b" \0")
    if syntax is None or syntax.decode("ascii", "replace") != _DEFLATED:
        return None
    return fp.tell()


def inflates_beyond(fp: BinaryIO, limit: int) -> bool:
    """Whether ``fp`` is a deflated file whose data set inflates to more than ``limit`` bytes.

    Streams the zlib data through a bounded inflater (never more than 64 KiB of output at a time, nothing
    kept), so a 1 MB file that would inflate to gigabytes costs no memory to check.
    """
    fp.seek(0)
    start = _deflated_stream_start(fp)
    if start is None:
        return False
    fp.seek(start)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    while chunk := fp.read(_INFLATE_CHUNK):
        data = chunk
        while data:
            try:
                out = inflater.decompress(data, _INFLATE_CHUNK)
            except zlib.error:
                return False  # not a valid stream: the parser reports it
            total += len(out)
            if total > limit:
                return True
            if inflater.eof:
                return False  # bytes after the stream's end are not data set
            data = inflater.unconsumed_tail
    return False


def read_instance(path: Path, *, max_inflated_size: int = MAX_INFLATED_SIZE) -> ParsedInstance:
    """Parse the DICOM file at ``path``, reading the header only, and check it is complete.

    Accepted: a PS3.10 file ('DICM' at offset 128), or a raw little-endian dataset without preamble whose
    first element is in group 0002 or 0008 and that contains a SOP Instance UID (fo-dicom, Azure's parser,
    accepts preamble-less files too; requiring the UID keeps random bytes from passing as a dataset).
    Raises :class:`InvalidDicomInstanceError` for empty, non-DICOM, malformed or truncated files, and
    :class:`DeflateBombError` for a deflated data set larger than ``max_inflated_size`` once inflated.
    """
    with path.open("rb") as fp:
        return read_open_instance(fp, max_inflated_size=max_inflated_size)


def read_open_instance(fp: BinaryIO, *, max_inflated_size: int = MAX_INFLATED_SIZE) -> ParsedInstance:
    """:func:`read_instance` on a file already open for reading (read from its start; it stays open)."""
    file_size = os.fstat(fp.fileno()).st_size
    if file_size == 0:
        raise InvalidDicomInstanceError("the file is empty.")
    fp.seek(0)
    head = fp.read(132)
    has_preamble = len(head) == 132 and head[128:132] == b"DICM"
    if has_preamble:
        simple = _read_simple(fp, file_size)
        if simple is not None:
            return simple
    if not has_preamble and not _looks_like_raw_dataset(head):
        raise InvalidDicomInstanceError("the file is not DICOM (no 'DICM' prefix at offset 128).")
    if inflates_beyond(fp, max_inflated_size):
        raise DeflateBombError(max_inflated_size)
    fp.seek(0)
    try:
        ds = pydicom.dcmread(fp, defer_size=_DEFER_SIZE, force=not has_preamble)
    except Exception as exc:  # any parser failure on client bytes means the bytes are not a DICOM file
        raise InvalidDicomInstanceError(_parse_failure(exc)) from exc
    if not has_preamble and not _has_value(ds, 0x00080018):
        raise InvalidDicomInstanceError("the file is not DICOM (no preamble and no SOP Instance UID).")

    transfer_syntax, is_implicit, read_implicit, read_little = _encoding(ds)
    pixel_offset: int | None = None
    pixel_length: int | None = None
    if transfer_syntax != DeflatedExplicitVRLittleEndian:
        # The dataset bytes of a deflated file are a zlib stream that pydicom has fully inflated.
        walker = _Walker(fp, file_size)
        pixel_offset, pixel_length = walker.walk_file(has_preamble, read_implicit, read_little)
    if len(ds) == 0:
        # e.g. a part holding only a preamble and file meta: nothing Azure could read as an instance.
        raise InvalidDicomInstanceError("the file contains no data set.")
    _strip_pixel_data_and_resolve_deferred(ds, fp)
    return ParsedInstance(
        dataset=ds,
        transfer_syntax=transfer_syntax,
        is_implicit_vr=is_implicit,
        file_size=file_size,
        pixel_data_offset=pixel_offset,
        pixel_data_length=pixel_length,
    )


# --- The common case in one pass ---------------------------------------------------------------------------------

# Bytes read at a time while walking element headers; a value that does not fit is read on its own.
_WINDOW = 64 * 1024
_ENCODED_VRS = frozenset(vr.encode("ascii") for vr in VR_)
_LONG_LENGTH_VR_NAMES = frozenset(EXPLICIT_VR_LENGTH_32)
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHL")
_LENGTH = struct.Struct("<L")


class _NotSimple(Exception):
    """The file is outside what :func:`_read_simple` handles: the general reader takes it, errors included."""


class _Window:
    """Reads of ``fp`` served from a 64 KiB window, so a header of many small elements costs one read."""

    def __init__(self, fp: BinaryIO, size: int) -> None:
        self._fp = fp
        self.size = size
        self._start = 0
        self._data = b""

    def get(self, pos: int, count: int) -> bytes:
        """``count`` bytes at ``pos``, all of them inside the file (else _NotSimple)."""
        if pos + count > self.size:
            raise _NotSimple
        offset = pos - self._start
        if offset < 0 or offset + count > len(self._data):
            self._fp.seek(pos)
            if count > _WINDOW:
                return self._fp.read(count)
            self._start, self._data = pos, self._fp.read(_WINDOW)
            offset = 0
        return self._data[offset : offset + count]


def _read_simple(fp: BinaryIO, file_size: int) -> ParsedInstance | None:
    """The header of a well-formed Part 10 file in one pass, or None for the general reader.

    Covers what modalities and toolkits write nearly always: a little-endian transfer syntax that pydicom knows
    (not deflated), defined-length values (sequences may be of undefined length), uncompressed pixel data.
    Everything the general reader (pydicom's dcmread, then a bounds walk) would do differently, or report as an
    error, returns None instead, so it reads exactly those files as before with the same outcome. The data set
    holds the same RawDataElements dcmread would make (decoded lazily by pydicom, with the same hooks), without
    the file meta group, which the store path does not use.
    """
    window = _Window(fp, file_size)
    try:
        syntax, pos = _simple_meta(window)
        uid = UID(syntax)
        if syntax == DeflatedExplicitVRLittleEndian or not uid.is_transfer_syntax or not uid.is_little_endian:
            return None
        implicit = uid.is_implicit_VR
        if implicit and pos + 6 <= file_size and window.get(pos + 4, 2) in _ENCODED_VRS:
            return None  # explicit bytes under an implicit syntax: pydicom detects and follows them
        elements, pixel = _simple_dataset(fp, window, pos, implicit)
    except (_NotSimple, _Truncated, _Malformed, struct.error, UnicodeDecodeError):
        return None
    if not elements:
        return None
    ds = Dataset(elements)
    charset = elements.get(BaseTag(0x00080005))
    encoding: str | list[str] = default_encoding
    if isinstance(charset, RawDataElement):
        try:
            encoding = convert_encodings(cast(str | list[str] | None, convert_raw_data_element(charset).value))
        except Exception:  # noqa: BLE001 - whatever dcmread makes of it, it is the general reader's case
            return None
    ds.set_original_encoding(implicit, True, encoding)
    return ParsedInstance(
        dataset=ds,
        transfer_syntax=syntax,
        is_implicit_vr=implicit,  # Azure: only Implicit VR Little Endian is implicit (see _encoding)
        file_size=file_size,
        pixel_data_offset=pixel[0] if pixel else None,
        pixel_data_length=pixel[1] if pixel else None,
    )


def _simple_meta(window: _Window) -> tuple[str, int]:
    """The declared transfer syntax and the position after the file meta group (PS3.10 §7.1: explicit VR LE)."""
    pos = 132
    syntax: str | None = None
    while pos + 8 <= window.size:
        group, element, vr, length = _EXPLICIT_HEADER.unpack(window.get(pos, 8))
        if group != 0x0002:
            break
        if vr not in _ENCODED_VRS:
            raise _NotSimple
        pos += 8
        if vr.decode("ascii") in _LONG_LENGTH_VR_NAMES:
            length = _LENGTH.unpack(window.get(pos, 4))[0]
            pos += 4
        if length == _UNDEFINED_LENGTH or length > _WINDOW:
            raise _NotSimple
        value = window.get(pos, length)
        if element == 0x0010:
            syntax = value.rstrip(b" \0").decode("ascii")
        pos += length
    if not syntax:
        raise _NotSimple
    return syntax, pos


def _simple_dataset(
    fp: BinaryIO, window: _Window, pos: int, implicit: bool
) -> tuple[dict[BaseTag, DataElement | RawDataElement], tuple[int, int] | None]:
    elements: dict[BaseTag, DataElement | RawDataElement] = {}
    pixel: tuple[int, int] | None = None
    size = window.size
    walker = _Walker(fp, size)
    while pos < size:
        if implicit:
            group, element, length = _IMPLICIT_HEADER.unpack(window.get(pos, 8))
            vr: str | None = None
            value_pos = pos + 8
        else:
            group, element, raw_vr, length = _EXPLICIT_HEADER.unpack(window.get(pos, 8))
            if raw_vr not in _ENCODED_VRS:
                raise _NotSimple  # an unknown VR, or a switch to implicit VR: pydicom's own rules apply
            vr = raw_vr.decode("ascii")
            value_pos = pos + 8
            if vr in _LONG_LENGTH_VR_NAMES:
                length = _LENGTH.unpack(window.get(value_pos, 4))[0]
                value_pos += 4
        tag = group << 16 | element
        if group in (0x0002, 0xFFFE):
            raise _NotSimple  # file meta inside the data set, a stray item or delimiter
        is_sequence = vr == "SQ" if vr is not None else _dictionary_vr(tag) == "SQ"
        if length == _UNDEFINED_LENGTH:
            if not is_sequence:
                raise _NotSimple  # encapsulated pixel data, an undefined-length UN: the general reader
            # The items up to the Sequence Delimitation Item, checked like the general reader's walk; the value
            # handed to pydicom is the items themselves, so it reads the sequence as a defined-length one.
            end = walker._walk_items(value_pos, None, implicit, True, 0, fragments=False)
            length = end - 8 - value_pos
            elements[BaseTag(tag)] = RawDataElement(
                BaseTag(tag), vr, length, window.get(value_pos, length), value_pos, implicit, True
            )
            pos = end
            continue
        end = value_pos + length
        if end > size:
            raise _NotSimple
        if tag in PIXEL_DATA_TAGS:
            if pixel is not None:
                raise _NotSimple  # several pixel data elements: the general reader picks one
            pixel = (value_pos, length)
        elif length > _DEFER_SIZE:
            raise _NotSimple  # a large value: dcmread defers or reads it by its VR
        else:
            if is_sequence and length:
                walker._walk_items(value_pos, end, implicit, True, 0, fragments=False)
            value = window.get(value_pos, length) if length else empty_value_for_VR(vr, raw=True)
            elements[BaseTag(tag)] = RawDataElement(
                BaseTag(tag), vr, length, cast(bytes | None, value), value_pos, implicit, True
            )
        pos = end
    return elements, pixel


def _dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _looks_like_raw_dataset(head: bytes) -> bool:
    # A dataset without preamble starts with its lowest tag: file meta (0002) or, commonly, group 0008.
    return len(head) >= 8 and struct.unpack_from("<H", head)[0] in (0x0002, 0x0008)


def _parse_failure(exc: Exception) -> str:
    # pydicom reports a short read as EOFError, or as struct.error when a header is cut short.
    if isinstance(exc, EOFError | struct.error):
        return f"the file is truncated ({exc})."
    return f"the file could not be parsed ({type(exc).__name__}: {exc})."


def _has_value(ds: Dataset, tag: int) -> bool:
    elem = ds.get_item(tag, keep_deferred=True)
    if elem is None:
        return False
    value = elem.value
    if isinstance(value, bytes):
        return bool(value.strip(b" \0"))
    return bool(value)


def _encoding(ds: Dataset) -> tuple[str, bool, bool, bool]:
    """Return (transfer syntax UID, implicit VR for Azure?, read as implicit VR?, read as little endian?).

    pydicom detects the encoding actually used by the bytes, which can contradict the declared syntax.
    """
    detected_implicit, detected_little = ds.original_encoding
    file_meta = getattr(ds, "file_meta", None)
    declared = file_meta.get(0x00020010) if file_meta is not None else None
    syntax = str(declared.value).rstrip(" \0") if declared is not None and declared.value else ""
    if detected_implicit is None or detected_little is None:
        detected_implicit, detected_little = syntax == ImplicitVRLittleEndian, syntax != ExplicitVRBigEndian
    if not syntax:
        # No file meta (a raw dataset): name the transfer syntax after the encoding pydicom detected.
        if detected_implicit:
            syntax = ImplicitVRLittleEndian
        else:
            syntax = ExplicitVRLittleEndian if detected_little else ExplicitVRBigEndian
    # Azure: IsImplicitVR = !TransferSyntax.IsExplicitVR (azure-behaviour §2.3 step 5). Only Implicit VR Little
    # Endian is implicit among the standard transfer syntaxes; an unknown UID falls back to the bytes.
    if syntax == ImplicitVRLittleEndian:
        is_implicit = True
    elif UID(syntax).is_transfer_syntax:
        is_implicit = False
    else:
        is_implicit = bool(detected_implicit)
    return syntax, is_implicit, bool(detected_implicit), bool(detected_little)


def _strip_pixel_data_and_resolve_deferred(ds: Dataset, fp: BinaryIO) -> None:
    for key in list(ds.keys()):
        tag = int(key)
        if tag in PIXEL_DATA_TAGS:
            del ds[tag]  # its location is reported by ParsedInstance.pixel_data_offset instead
            continue
        raw = ds.get_item(tag, keep_deferred=True)
        if not isinstance(raw, RawDataElement) or raw.value is not None or raw.length in (0, _UNDEFINED_LENGTH):
            continue
        data: dict[str, Any] = {}
        pydicom_hooks.raw_element_vr(raw, data, encoding=None, ds=ds)
        if any(part in BULK_DATA_VRS for part in str(data["VR"]).split(" or ")):
            continue  # bulk data: left deferred, never needed for metadata or validation
        # A large text or numeric value: read its bytes now, while the file is open and at this path.
        fp.seek(raw.value_tell)
        ds[tag] = raw._replace(value=fp.read(raw.length))


class _Truncated(Exception):
    pass


class _Malformed(Exception):
    pass


class _Walker:
    """Walks element headers with seeks to prove every value lies inside the file (PS3.5 §7, §A.4).

    pydicom silently returns short values at end of file, so truncation (at any byte) is detected here.
    Sequences (defined or undefined length) and encapsulated pixel data are descended into, reading item and
    element headers only; every other value is skipped after a bounds check, so pixel data is never read.
    """

    def __init__(self, fp: BinaryIO, size: int) -> None:
        self._fp = fp
        self._size = size

    def walk_file(self, has_preamble: bool, implicit: bool, little: bool) -> tuple[int | None, int | None]:
        try:
            pos = self._walk_meta(132 if has_preamble else 0)
            return self._walk_top_level(pos, implicit, little)
        except _Truncated as exc:
            raise InvalidDicomInstanceError(f"the file is truncated ({exc}).") from exc
        except (_Malformed, struct.error) as exc:
            raise InvalidDicomInstanceError(f"the DICOM structure is invalid ({exc}).") from exc

    def _read(self, pos: int, count: int, what: str) -> bytes:
        self._fp.seek(pos)
        data = self._fp.read(count)
        if len(data) < count:
            raise _Truncated(f"{what} at offset {pos} ends after {len(data)} of {count} bytes")
        return data

    def _walk_meta(self, pos: int) -> int:
        # PS3.10 §7.1: the file meta group is always explicit VR little endian.
        while pos + 4 <= self._size and struct.unpack("<H", self._read(pos, 2, "tag"))[0] == 0x0002:
            _, _, length, value_pos = self._header(pos, False, True)
            pos = self._skip(value_pos, length)
        return pos

    def _walk_top_level(self, pos: int, implicit: bool, little: bool) -> tuple[int | None, int | None]:
        pixel: dict[int, tuple[int, int | None]] = {}
        while pos < self._size:
            if self._size - pos < 8:
                raise _Truncated(f"{self._size - pos} bytes of an element header at offset {pos}")
            tag, vr, length, value_pos = self._header(pos, implicit, little)
            if tag == _ITEM_DELIMITATION:
                break  # pydicom stops reading the dataset here as well
            if tag in PIXEL_DATA_TAGS:
                pixel[tag] = (value_pos, None if length == _UNDEFINED_LENGTH else length)
            pos = self._walk_value(tag, vr, length, value_pos, implicit, little, 0)
        for tag in PIXEL_DATA_TAGS:
            if tag in pixel:
                return pixel[tag]
        return None, None

    def _header(self, pos: int, implicit: bool, little: bool) -> tuple[int, bytes | None, int, int]:
        endian = "<" if little else ">"
        head = self._read(pos, 8, "element header")
        group, element = struct.unpack(endian + "HH", head[:4])
        tag = group << 16 | element
        if group == 0xFFFE or implicit:
            return tag, None, struct.unpack(endian + "L", head[4:])[0], pos + 8
        vr = head[4:6]
        if not (b"AA" <= vr <= b"ZZ"):
            # pydicom's assume_implicit_vr_switch: some writers switch to implicit VR inside a dataset.
            return tag, None, struct.unpack(endian + "L", head[4:])[0], pos + 8
        if vr in _LONG_LENGTH_VRS:
            length = struct.unpack(endian + "L", self._read(pos + 8, 4, "element header"))[0]
            return tag, vr, length, pos + 12
        return tag, vr, struct.unpack(endian + "H", head[6:])[0], pos + 8

    def _skip(self, value_pos: int, length: int) -> int:
        end = value_pos + length
        if end > self._size:
            raise _Truncated(f"a value of {length} bytes at offset {value_pos} ends past the end of the file")
        return end

    def _is_sequence(self, tag: int, vr: bytes | None) -> bool:
        if vr is not None:
            return vr == b"SQ"
        try:
            return dictionary_VR(tag) == "SQ"
        except KeyError:
            return False

    def _walk_value(
        self, tag: int, vr: bytes | None, length: int, value_pos: int, implicit: bool, little: bool, depth: int
    ) -> int:
        if depth > _MAX_NESTING:
            raise _Malformed(f"sequences nested deeper than {_MAX_NESTING} levels")
        if length == _UNDEFINED_LENGTH:
            # PS3.5 §7.5 / §A.4: an undefined-length value is a sequence of items or encapsulated fragments;
            # pixel data fragments are defined-length items just like sequence items.
            return self._walk_items(value_pos, None, implicit, little, depth, fragments=tag in PIXEL_DATA_TAGS)
        end = self._skip(value_pos, length)
        if length and tag not in PIXEL_DATA_TAGS and self._is_sequence(tag, vr):
            self._walk_items(value_pos, end, implicit, little, depth, fragments=False)
        return end

    def _walk_items(
        self, pos: int, end: int | None, implicit: bool, little: bool, depth: int, *, fragments: bool
    ) -> int:
        endian = "<" if little else ">"
        while end is None or pos < end:
            head = self._read(pos, 8, "item header")
            group, element, length = struct.unpack(endian + "HHL", head)
            tag = group << 16 | element
            if tag == _SEQUENCE_DELIMITATION:
                pos += 8
                if end is None:
                    return pos
                continue
            if tag != _ITEM:
                raise _Malformed(f"expected an item tag at offset {pos}, found ({group:04X},{element:04X})")
            if length == _UNDEFINED_LENGTH:
                if fragments:
                    raise _Malformed(f"a pixel data fragment at offset {pos} has an undefined length")
                pos = self._walk_dataset(pos + 8, None, implicit, little, depth + 1)
            else:
                item_end = self._skip(pos + 8, length)
                if not fragments:
                    self._walk_dataset(pos + 8, item_end, implicit, little, depth + 1)
                pos = item_end
        if pos != end:
            raise _Malformed(f"an item overruns its sequence at offset {pos}")
        return pos

    def _walk_dataset(self, pos: int, end: int | None, implicit: bool, little: bool, depth: int) -> int:
        # ``end`` None: an undefined-length item, closed by an Item Delimitation Item (PS3.5 §7.5.2).
        while end is None or pos < end:
            tag, vr, length, value_pos = self._header(pos, implicit, little)
            if tag == _ITEM_DELIMITATION:
                return value_pos
            pos = self._walk_value(tag, vr, length, value_pos, implicit, little, depth)
        if pos != end:
            raise _Malformed(f"an element overruns its item at offset {pos}")
        return pos
