"""DICOM JSON model (PS3.18 Annex F) written and read the way Azure does (azure-behaviour §1.4, §3.5)."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from pydicom import config as pydicom_config
from pydicom.charset import convert_encodings, decode_bytes, default_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filewriter import correct_ambiguous_vr_element
from pydicom.hooks import hooks as pydicom_hooks
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import TEXT_VR_DELIMS, DSfloat

from dicom_emulator.dicom.tags import tag_text
from dicom_emulator.errors import BadRequestError

# A path to an element: tag, item index, tag, item index, ..., tag. ``(0x00081110,)`` is a top-level
# element, ``(0x00081110, 0, 0x00081150)`` is (0008,1150) inside the first item of (0008,1110).
ElementPath = tuple[int, ...]

# azure-behaviour §3.5: elements with these VRs never appear in metadata JSON (Azure removes them, recursively,
# before storing the metadata: DicomDatasetExtensions.CopyWithoutBulkDataItems).
BULK_DATA_VRS: frozenset[str] = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})

# PS3.5 Table 6.2-1: every character-string VR. DA/DT/TM/DS/IS are strings on the wire too.
STRING_VRS: frozenset[str] = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
# PS3.5 §6.2: these VRs are single-valued, a backslash in them is data, not a delimiter.
SINGLE_VALUED_STRING_VRS: frozenset[str] = frozenset({"LT", "ST", "UR", "UT"})
# PS3.5 §6.1.2.3: only these VRs are decoded with the Specific Character Set (0008,0005).
_ENCODED_TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_INT_VRS = frozenset({"US", "SS", "UL", "SL", "SV", "UV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_PN_GROUP_NAMES = ("Alphabetic", "Ideographic", "Phonetic")

_SPECIFIC_CHARACTER_SET = 0x00080005
_HEX_KEY_RE = re.compile(r"[0-9A-Fa-f]{8}")
# .NET int.Parse(NumberStyles.Integer | AllowDecimalPoint), used by fo-dicom for IS: surrounding white space,
# a sign, and a decimal point followed only by zeros.
_NET_INT_RE = re.compile(r"[\t\n\v\f\r ]*([+-]?)(?:([0-9]+)\.?0*|\.0+)[\t\n\v\f\r ]*")
# fo-dicom DicomValidation.ValidateDS: the only DS shapes fo-dicom writes as JSON numbers.
_DS_RE = re.compile(r"^[+-]?((\d+(\.\d*)?)|(\.\d+))([eE][-+]?\d+)?$")
_ASCII_INT_RE = re.compile(r"[+-]?[0-9]+")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT_RANGES: dict[str, tuple[int, int]] = {
    "US": (0, 2**16 - 1),
    "SS": (-(2**15), 2**15 - 1),
    "UL": (0, 2**32 - 1),
    "SL": (_INT32_MIN, _INT32_MAX),
    "SV": (-(2**63), 2**63 - 1),
    "UV": (0, 2**64 - 1),
}


class InvalidDicomJsonError(BadRequestError):
    """A DICOM JSON dataset (PS3.18 F.2) in a request body is malformed."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"The DICOM JSON dataset is invalid: {detail}")


@dataclass(frozen=True, slots=True)
class ElementView:
    """One element's VR and values with fo-dicom's value semantics, read without converting the dataset.

    For string VRs ``text`` is the whole decoded value with only the VR's padding character trimmed from
    the end (space, or NUL for UI: fo-dicom's ``StringValue``), so NUL padding on other VRs survives
    (azure-behaviour §3.5); ``values`` is ``text`` split on backslash (not for LT/ST/UR/UT), ``[]`` when empty.
    SQ values are the item datasets, AT values ints, bulk-data VRs have no values here.
    """

    tag: int
    vr: str
    text: str | None = None
    values: list[Any] = field(default_factory=list)


class ViewMemo:
    """Element views of one parsed instance, each built once and shared by validation, indexing and JSON.

    Building a view decodes the raw element (the costly part of a store); STOW needs every view at least
    twice (v2 validation walks the whole dataset, then the metadata JSON does). Keyed by dataset identity,
    so the datasets are kept referenced for the memo's lifetime (an id is never reused meanwhile).
    """

    __slots__ = ("_pinned", "_views")

    def __init__(self) -> None:
        self._views: dict[tuple[int, int], ElementView | None] = {}
        self._pinned: dict[int, Dataset] = {}

    def view(self, ds: Dataset, tag: int, encodings: list[str]) -> ElementView | None:
        key = (id(ds), tag)
        try:
            return self._views[key]
        except KeyError:
            pass
        self._pinned.setdefault(id(ds), ds)
        view = self._views[key] = _build_view(ds, tag, encodings)
        return view


def dataset_encodings(ds: Dataset, parent: list[str] | None = None) -> list[str]:
    """Python codecs for ``ds``: its own Specific Character Set, else the enclosing dataset's (PS3.5 §7.5.3)."""
    elem = ds.get_item(_SPECIFIC_CHARACTER_SET, keep_deferred=True)
    terms: list[str] = []
    if isinstance(elem, RawDataElement):
        raw = elem.value or b""
        text = raw.decode(default_encoding).strip(" \0")
        terms = text.split("\\") if text else []
    elif isinstance(elem, DataElement) and elem.value:
        value = elem.value
        terms = [str(v) for v in value] if isinstance(value, MultiValue | list | tuple) else [str(value)]
    if not terms or not any(t.strip() for t in terms):
        return parent if parent is not None else [default_encoding]
    try:
        return convert_encodings([t.strip() for t in terms])
    except Exception:  # an unknown defined term must not make the metadata unreadable
        return parent if parent is not None else [default_encoding]


def iter_element_views(
    ds: Dataset, encodings: list[str] | None = None, memo: ViewMemo | None = None
) -> Iterator[ElementView]:
    """Yield a view of every top-level element of ``ds`` in tag order (file meta excluded by pydicom)."""
    encodings = encodings if encodings is not None else dataset_encodings(ds)
    for tag in sorted(int(t) for t in ds.keys()):
        view = element_view(ds, tag, encodings, memo)
        if view is not None:
            yield view


def first_text(ds: Dataset | None, tag: int) -> str | None:
    """The first value of ``tag`` as text without padding, or None when absent or empty (raw or decoded)."""
    if ds is None:
        return None
    view = element_view(ds, tag)
    if view is None or not view.values:
        return None
    text = str(view.values[0]).strip(" \0")
    return text or None


def element_view(
    ds: Dataset, tag: int, encodings: list[str] | None = None, memo: ViewMemo | None = None
) -> ElementView | None:
    """Return the view of ``tag`` in ``ds`` (``None`` if absent) without replacing raw elements in ``ds``.

    Raw elements are decoded here rather than by pydicom because pydicom strips trailing NULs and spaces
    from every value, which would lose the NUL padding Azure preserves and validates (azure-behaviour §2.3,
    azure-behaviour §3.5). With a ``memo``, a view already built for this dataset and tag is reused.
    """
    encodings = encodings if encodings is not None else dataset_encodings(ds)
    if memo is not None:
        return memo.view(ds, tag, encodings)
    return _build_view(ds, tag, encodings)


def _build_view(ds: Dataset, tag: int, encodings: list[str]) -> ElementView | None:
    elem = ds.get_item(tag, keep_deferred=True)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        return _raw_view(ds, elem, encodings)
    return _converted_view(ds, elem)


def sequence_items(ds: Dataset, tag: int) -> list[Dataset]:
    """The items of sequence ``tag`` in ``ds``: ``[]`` when it is absent, has no items or is not an SQ."""
    view = element_view(ds, tag)
    if view is None or view.vr != "SQ":
        return []
    return list(view.values)


# Views of raw explicit-VR string elements by (tag, VR, bytes, encodings): most elements of an instance repeat
# byte for byte in the next instances of its series (patient, study, equipment...), and a view is frozen (no
# reader changes its values list), so one object serves them all.
# Bounded: short values only (long texts rarely repeat), and emptied when full.
_STRING_VIEWS: dict[tuple[int, str, bytes, tuple[str, ...]], ElementView] = {}
_STRING_VIEWS_LIMIT = 20_000
_CACHED_VALUE_LENGTH = 256


def _raw_view(ds: Dataset, raw: RawDataElement, encodings: list[str]) -> ElementView | None:
    tag = int(raw.tag)
    # An explicit VR that is a string VR is the element's VR as is (pydicom's hook only resolves implicit,
    # UN and ambiguous VRs), so the view depends on these bytes and the character sets alone.
    raw_vr = raw.VR
    value = raw.value
    if raw_vr in STRING_VRS and value is not None and len(value) <= _CACHED_VALUE_LENGTH:
        key = (tag, raw_vr, value, tuple(encodings))
        view = _STRING_VIEWS.get(key)
        if view is None:
            view = _string_view(tag, raw_vr, _decode_raw_text(value, raw_vr, encodings))
            if len(_STRING_VIEWS) >= _STRING_VIEWS_LIMIT:
                _STRING_VIEWS.clear()
            _STRING_VIEWS[key] = view
        return view
    data: dict[str, Any] = {}
    pydicom_hooks.raw_element_vr(raw, data, encoding=encodings, ds=ds)
    vr = str(data["VR"])
    if _is_bulk(vr):
        return ElementView(tag, _bulk_vr(vr))
    if raw.value is None and raw.length not in (0, 0xFFFFFFFF):
        # A deferred read (pydicom defer_size): only ever large non-bulk values, rare; read it now.
        return _converted_view(ds, ds[tag])
    if vr in STRING_VRS:
        return _string_view(tag, vr, _decode_raw_text(raw.value or b"", vr, encodings))
    try:
        elem = convert_raw_data_element(raw, encoding=encodings, ds=ds)
        if " or " in elem.VR:
            # A DataElement in gives a DataElement out (pydicom types it for RawDataElement too).
            elem = cast(DataElement, correct_ambiguous_vr_element(elem, ds, raw.is_little_endian))
    except Exception:
        # Undecodable binary (e.g. a length that is not a multiple of the value size): treat as UN, which
        # metadata drops and validation skips, rather than failing the whole instance.
        return ElementView(tag, "UN")
    return _converted_view(ds, elem)


def _converted_view(ds: Dataset, elem: DataElement) -> ElementView | None:
    tag = int(elem.tag)
    vr = str(elem.VR)
    if " or " in vr:
        vr = _bulk_vr(vr) if _is_bulk(vr) else vr.split(" or ")[0]
    if vr in BULK_DATA_VRS:
        return ElementView(tag, vr)
    value = elem.value
    if vr == "SQ":
        items = [item for item in (value or []) if isinstance(item, Dataset)]
        return ElementView(tag, vr, values=items)
    if vr in STRING_VRS:
        if isinstance(value, bytes | bytearray):
            return _string_view(tag, vr, _decode_raw_text(bytes(value), vr, dataset_encodings(ds)))
        return _string_view(tag, vr, _text_of(value))
    values = _as_list(value)
    if vr == "AT":
        return ElementView(tag, vr, values=[int(v) for v in values])
    return ElementView(tag, vr, values=values)


def _string_view(tag: int, vr: str, text: str) -> ElementView:
    # fo-dicom StringValue: trailing padding is trimmed once, from the end of the whole value.
    text = text.rstrip("\0") if vr == "UI" else text.rstrip(" ")
    if not text:
        values: list[Any] = []
    elif vr in SINGLE_VALUED_STRING_VRS:
        values = [text]
    else:
        values = text.split("\\")
    return ElementView(tag, vr, text=text, values=values)


def _decode_raw_text(raw: bytes, vr: str, encodings: list[str]) -> str:
    if vr in _ENCODED_TEXT_VRS:
        try:
            return decode_bytes(raw, encodings, TEXT_VR_DELIMS)
        except Exception:  # undecodable bytes: keep them visible rather than failing the instance
            return raw.decode(default_encoding)
    return raw.decode(default_encoding)


def _text_of(value: Any) -> str:
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_scalar_text(v) for v in value)
    return _scalar_text(value)


def _scalar_text(value: Any) -> str:
    if value is None:
        return ""
    original = getattr(value, "original_string", None)
    if isinstance(original, str):
        return original
    return str(value)


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _is_bulk(vr: str) -> bool:
    return any(part in BULK_DATA_VRS for part in vr.split(" or "))


def _bulk_vr(vr: str) -> str:
    return next(part for part in vr.split(" or ") if part in BULK_DATA_VRS)


# --------------------------------------------------------------------------------------------------------
# Dataset -> JSON
# --------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Exclusion:
    whole: bool = False
    items: dict[int, dict[int, _Exclusion]] = field(default_factory=dict)


def _exclusion_tree(paths: Collection[ElementPath]) -> dict[int, _Exclusion]:
    root: dict[int, _Exclusion] = {}
    for path in paths:
        if len(path) % 2 != 1:
            raise ValueError(f"An element path alternates tag and item index and ends with a tag: {path!r}")
        level = root
        for depth in range(0, len(path), 2):
            node = level.setdefault(int(path[depth]), _Exclusion())
            if depth == len(path) - 1:
                node.whole = True
            else:
                level = node.items.setdefault(int(path[depth + 1]), {})
    return root


def dataset_to_json(
    ds: Dataset, *, exclude: Collection[ElementPath] = (), memo: ViewMemo | None = None
) -> dict[str, Any]:
    """Return ``ds`` as a DICOM JSON object exactly as Azure stores and returns metadata (azure-behaviour §3.5).

    Keys are 8 upper-case hex digits; group-length (gggg,0000) and file meta (0002,xxxx) elements are
    omitted (PS3.18 F.2.2); bulk-data VRs (OB, OD, OF, OL, OV, OW, UN) are omitted at every depth
    (azure-behaviour §3.5); private elements are kept; elements at ``exclude`` paths are omitted.
    """
    return _dataset_json(ds, _exclusion_tree(exclude), None, memo)


def _dataset_json(
    ds: Dataset, exclusions: dict[int, _Exclusion], parent: list[str] | None, memo: ViewMemo | None
) -> dict[str, Any]:
    encodings = dataset_encodings(ds, parent)
    result: dict[str, Any] = {}
    for tag in sorted(int(t) for t in ds.keys()):
        # PS3.18 F.2.2: no group lengths; file meta never belongs to the dataset; FFFE items are structure.
        if tag & 0xFFFF == 0 or tag >> 16 in (0x0002, 0xFFFE):
            continue
        node = exclusions.get(tag)
        if node is not None and node.whole:
            continue
        view = element_view(ds, tag, encodings, memo)
        if view is None or view.vr in BULK_DATA_VRS:
            continue
        result[f"{tag:08X}"] = _element_json(view, node, encodings, memo)
    return result


def _element_json(
    view: ElementView, node: _Exclusion | None, encodings: list[str], memo: ViewMemo | None
) -> dict[str, Any]:
    vr = view.vr
    if vr == "SQ":
        items = [
            _dataset_json(item, node.items.get(index, {}) if node is not None else {}, encodings, memo)
            for index, item in enumerate(view.values)
        ]
        # azure-behaviour §1.4: an empty sequence is {"vr":"SQ"} without a Value.
        return {"vr": vr, "Value": items} if items else {"vr": vr}
    if not view.values:
        return {"vr": vr}
    if vr == "PN":
        values: list[Any] = [_person_name_json(v) for v in view.values]
    elif vr == "IS":
        values = _integer_strings_json(view.values)
    elif vr == "DS":
        values = _decimal_strings_json(view.values)
    elif vr in _FLOAT_VRS:
        values = [_float_json(float(v), single=vr == "FL") for v in view.values]
    elif vr in _INT_VRS:
        values = [int(v) for v in view.values]
    elif vr == "AT":
        values = [f"{int(v):08X}" for v in view.values]
    else:
        # fo-dicom writes an empty value of a multi-valued string as null.
        values = [v if v != "" else None for v in view.values]
    return {"vr": vr, "Value": values}


def _person_name_json(value: str) -> dict[str, str] | None:
    # PS3.18 F.2.2: one object per value, with only the non-empty component groups.
    if value == "":
        return None
    groups = value.split("=")
    return {name: group for name, group in zip(_PN_GROUP_NAMES, groups, strict=False) if group.strip()}


def _integer_strings_json(values: list[str]) -> list[Any]:
    # fo-dicom (NumberSerializationMode.PreferablyAsNumber): all values as numbers, or, if any value does
    # not parse (an empty value included), the whole element as strings.
    numbers: list[Any] = []
    for value in values:
        match = _NET_INT_RE.fullmatch(value.rstrip("\0"))
        number = int(match.group(1) + (match.group(2) or "0")) if match else None
        if number is None or not _INT32_MIN <= number <= _INT32_MAX:
            return [v if v != "" else None for v in values]
        numbers.append(number)
    return numbers


def _decimal_strings_json(values: list[str]) -> list[Any]:
    # fo-dicom WriteJsonDecimalString: empty values are null, others numbers; one unparsable value makes
    # the whole element strings.
    numbers: list[Any] = []
    for value in values:
        if value == "":
            numbers.append(None)
            continue
        number = _decimal_string_number(value)
        if number is None:
            return [v if v != "" else None for v in values]
        numbers.append(number)
    return numbers


def _is_valid_ds(content: str) -> bool:
    return len(content) <= 16 and _DS_RE.search(content.strip()) is not None


def _decimal_string_number(value: str) -> int | float | None:
    # fo-dicom FixDecimalString: trim, drop a '+', strip superfluous leading zeros, then require a valid DS.
    fixed = value.strip().rstrip("\0")
    if not _is_valid_ds(fixed):
        if not fixed.strip():
            return None
        negative = fixed.startswith("-")
        digits = fixed[1:] if fixed[:1] in "+-" else fixed
        while len(digits) > 1 and digits[0] == "0" and digits[1] != ".":
            digits = digits[1:]
        fixed = ("-" if negative else "") + digits
        if not _is_valid_ds(fixed):
            return None
    if _ASCII_INT_RE.fullmatch(fixed):
        return int(fixed)
    try:
        number = float(fixed)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _float_json(value: float, *, single: bool) -> float | str:
    # JSON has no NaN/Infinity; fo-dicom writes NaN as the string "NaN".
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    # FL: the shortest text that round-trips the 32-bit value (what .NET writes), not the widened double.
    return float(str(np.float32(value))) if single else value


def filter_json(obj: dict[str, Any], tags: Collection[int]) -> dict[str, Any]:
    """Keep the top-level attributes of a DICOM JSON object whose tag is in ``tags`` (QIDO responses).

    Looked up by key (PS3.18 F.2.1: eight upper-case hex digits, as the stored metadata is written): a QIDO
    answer returns a few tags of an instance's many attributes, so walking every key per hit cost more.
    """
    result: dict[str, Any] = {}
    for tag in tags:
        key = f"{int(tag):08X}"
        if key in obj:
            result[key] = obj[key]
    return result


# --------------------------------------------------------------------------------------------------------
# JSON -> Dataset
# --------------------------------------------------------------------------------------------------------


def json_to_dataset(obj: Mapping[str, Any]) -> Dataset:
    """Build a dataset from a DICOM JSON object whose keys are 8-hex tags or DICOM keywords.

    Keywords are accepted because Azure's C# client serialises with ``writeTagsAsKeywords: true``.
    Values are not validated against their VR (Azure reads with ``autoValidate: false``), only their JSON
    shape is. Raises :class:`InvalidDicomJsonError` (a ``BadRequestError``) when the object is malformed.
    """
    if not isinstance(obj, Mapping):
        raise InvalidDicomJsonError("a dataset must be a JSON object.")
    ds = Dataset()
    for key, attribute in obj.items():
        tag = _parse_key(key)
        if tag in ds:
            raise InvalidDicomJsonError(f"the attribute '{key}' ({tag_text(tag)}) appears more than once.")
        ds[tag] = _json_element(tag, key, attribute)
    return ds


def _parse_key(key: Any) -> int:
    if not isinstance(key, str):
        raise InvalidDicomJsonError(f"'{key}' is not a DICOM tag or keyword.")
    if _HEX_KEY_RE.fullmatch(key):
        return int(key, 16)
    tag = tag_for_keyword(key)
    if tag is None:
        raise InvalidDicomJsonError(f"'{key}' is not a DICOM tag or keyword.")
    return int(tag)


def _json_element(tag: int, key: str, attribute: Any) -> DataElement:
    if not isinstance(attribute, Mapping):
        raise InvalidDicomJsonError(f"the attribute '{key}' must be a JSON object.")
    vr = attribute.get("vr")
    if not isinstance(vr, str):
        raise InvalidDicomJsonError(f"the attribute '{key}' has no 'vr'.")
    if vr not in STRING_VRS | BULK_DATA_VRS | _INT_VRS | _FLOAT_VRS | {"AT", "SQ"}:
        raise InvalidDicomJsonError(f"the attribute '{key}' has an unsupported VR '{vr}'.")
    if vr in BULK_DATA_VRS:
        return _element(tag, vr, _json_bulk(key, attribute))
    if "BulkDataURI" in attribute:
        raise InvalidDicomJsonError(f"the attribute '{key}' uses BulkDataURI, which is not supported.")
    raw_values = attribute.get("Value")
    if raw_values is None:
        raw_values = []
    if not isinstance(raw_values, list):
        raise InvalidDicomJsonError(f"the 'Value' of attribute '{key}' must be an array.")
    if vr == "SQ":
        return _element(tag, vr, Sequence([_json_item(key, item) for item in raw_values]))
    if vr == "PN":
        values: list[Any] = [_json_person_name(key, v) for v in raw_values]
    elif vr == "IS":
        values = [_json_integer_string(key, v) for v in raw_values]
    elif vr == "DS":
        values = [_json_decimal_string(key, v) for v in raw_values]
    elif vr in _FLOAT_VRS:
        values = [_json_float(key, v) for v in raw_values]
    elif vr in _INT_VRS:
        values = [_json_int(key, vr, v) for v in raw_values]
    elif vr == "AT":
        values = [_json_attribute_tag(key, v) for v in raw_values]
    else:
        values = [_json_string(key, v) for v in raw_values]
        if vr in SINGLE_VALUED_STRING_VRS and len(values) > 1:
            raise InvalidDicomJsonError(f"the attribute '{key}' with VR {vr} can have only one value.")
    if not values:
        return _element(tag, vr, None)
    return _element(tag, vr, values[0] if len(values) == 1 else values)


def _element(tag: int, vr: str, value: Any) -> DataElement:
    # The JSON shape was checked above; the values themselves are kept as sent, even when invalid.
    return DataElement(tag, vr, value, validation_mode=pydicom_config.IGNORE)


def _json_item(key: str, item: Any) -> Dataset:
    if not isinstance(item, Mapping):
        raise InvalidDicomJsonError(f"the items of sequence '{key}' must be JSON objects.")
    return json_to_dataset(item)


def _json_bulk(key: str, attribute: Mapping[str, Any]) -> bytes:
    if "BulkDataURI" in attribute:
        raise InvalidDicomJsonError(f"the attribute '{key}' uses BulkDataURI, which is not supported.")
    inline = attribute.get("InlineBinary")
    if inline is None:
        return b""
    if isinstance(inline, list) and len(inline) == 1:
        inline = inline[0]
    if not isinstance(inline, str):
        raise InvalidDicomJsonError(f"the InlineBinary of attribute '{key}' must be a base64 string.")
    try:
        return base64.b64decode(inline, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidDicomJsonError(f"the InlineBinary of attribute '{key}' is not valid base64.") from exc


def _json_string(key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidDicomJsonError(f"the values of attribute '{key}' must be strings.")
    return value


def _json_person_name(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):  # not PS3.18, but unambiguous: accept the DICOM string form
        return value
    if not isinstance(value, Mapping):
        raise InvalidDicomJsonError(f"the values of attribute '{key}' must be person name objects.")
    groups: list[str] = []
    for name in _PN_GROUP_NAMES:
        group = value.get(name)
        if group is not None and not isinstance(group, str):
            raise InvalidDicomJsonError(f"the '{name}' component group of attribute '{key}' must be a string.")
        groups.append(group if group and group.strip() else "")
    # PS3.5 §6.2.1: trailing empty component groups and their '=' delimiters are omitted.
    return "=".join(groups).rstrip("=")


def _json_integer_string(key: str, value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise InvalidDicomJsonError(f"the values of attribute '{key}' must be integers.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([+-]?[0-9]+)\s*", value)
        value = int(match.group(1)) if match else None
    if not isinstance(value, int) or not _INT32_MIN <= value <= _INT32_MAX:
        raise InvalidDicomJsonError(f"the values of attribute '{key}' must be 32-bit integers.")
    return value


def _json_decimal_string(key: str, value: Any) -> DSfloat | str:
    if isinstance(value, bool) or value is None:
        raise InvalidDicomJsonError(f"the values of attribute '{key}' must be numbers.")
    if isinstance(value, int):
        text = str(value)
        if len(text) <= 16:
            return text
        value = float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidDicomJsonError(f"the values of attribute '{key}' must be finite numbers.")
        # PS3.5: a DS value is at most 16 characters; pick the closest representation that fits.
        return DSfloat(value, auto_format=True)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return text if len(text) <= 16 else DSfloat(number, auto_format=True)
    raise InvalidDicomJsonError(f"the values of attribute '{key}' must be numbers.")


def _json_float(key: str, value: Any) -> float:
    if value == "NaN":
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidDicomJsonError(f"the values of attribute '{key}' must be numbers.")
    return float(value)


def _json_int(key: str, vr: str, value: Any) -> int:
    if vr in ("SV", "UV") and isinstance(value, str) and _ASCII_INT_RE.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    low, high = _INT_RANGES[vr]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidDicomJsonError(f"the values of attribute '{key}' must be integers valid for VR {vr}.")
    return value


def _json_attribute_tag(key: str, value: Any) -> int:
    if isinstance(value, str):
        if _HEX_KEY_RE.fullmatch(value):
            return int(value, 16)
        tag = tag_for_keyword(value)
        if tag is not None:
            return int(tag)
    raise InvalidDicomJsonError(f"the values of attribute '{key}' must be tags as 8 hexadecimal digits.")
