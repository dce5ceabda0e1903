"""STOW per-instance validation exactly as Azure's StoreDatasetValidator does it (azure-behaviour §2.3 steps 2-6).

Two rule sets are copied, with their messages, because clients see them in ErrorComment (0000,0902):

* Azure's own "minimum" rules (ElementMinimumValidator): for indexed tags in v1 and required core tags
  in v2, messages ``Dicom element 'X' failed validation for VR 'YY': ...``;
* fo-dicom's DicomValidation rules (full validation): for every other element in v2, messages
  ``Content "x" does not validate VR YY: ...``.

pydicom's validators are not used: their rules and messages differ from fo-dicom's, and the exact text and
the exact accept/reject decisions are what an emulator must reproduce.
"""

from __future__ import annotations

import datetime
import functools
import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_description, dictionary_VM, dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset

from dicom_emulator.dicom.identifiers import is_valid_uid, uid_error_message
from dicom_emulator.dicom.json_model import (
    BULK_DATA_VRS,
    SINGLE_VALUED_STRING_VRS,
    STRING_VRS,
    ElementPath,
    ElementView,
    ViewMemo,
    dataset_encodings,
    element_view,
    iter_element_views,
)
from dicom_emulator.dicom.status import (
    DATASET_DOES_NOT_MATCH_SOP_CLASS,
    DATASET_HAS_VALIDATION_WARNINGS,
    VALIDATION_ERROR_NUMBER,
    VALIDATION_FAILURE,
)
from dicom_emulator.dicom.tags import (
    CORE_QUERY_TAGS,
    PATIENT_ID,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
    tag_text,
)

# StoreDatasetValidator.RequiredCoreTags: validated leniently in v2, an error there fails the instance.
_REQUIRED_CORE_TAGS = (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID, PATIENT_ID, SOP_CLASS_UID)
# StoreDatasetValidator.RequiredV2CoreTags: never dropped from stored metadata even with a warning.
_V2_UNDROPPABLE_TAGS = frozenset({STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID})
# fo-dicom VRs whose ValueType is string: v2 validates them through GetString, with NUL-padding leniency.
_STRING_VALUE_TYPE_VRS = frozenset({"AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UI", "UR", "UT"})
_VALUE_SIZES = {"FD": 8, "FL": 4, "SL": 4, "SS": 2, "UL": 4, "US": 2, "SV": 8, "UV": 8, "AT": 4}

MISMATCH_STUDY_MESSAGE = "The StudyInstanceUid in the payload does not match the specified StudyInstanceUid."


@dataclass
class StoreValidation:
    """Outcome of :func:`validate_for_store` for one instance (azure-behaviour §2.3, §2.4)."""

    failed: bool
    failure_code: int | None
    # ErrorComment texts for the FailedSOPSequence item's FailedAttributesSequence (when failed).
    failure_comments: list[str] = field(default_factory=list)
    # ErrorComment texts for the ReferencedSOPSequence item's FailedAttributesSequence (v2 success).
    warning_comments: list[str] = field(default_factory=list)
    # Elements to leave out of the stored metadata JSON (v2 success). As in Azure (StoreService.
    # DropInvalidMetadata removes each failing *tag* from the top-level dataset), these are top-level paths:
    # an invalid element nested in a sequence produces a warning but stays in the metadata.
    invalid_paths: list[ElementPath] = field(default_factory=list)
    # WarningReason (0008,1196) of a stored instance: 45063 for implicit VR, else 1 for v2 warnings.
    warning_reason: int | None = None
    # azure-behaviour §2.3 step 6: drives the "multiple values" HTTP Warning header; independent of ``failed``
    # because Azure sets that header before deciding the instance's fate.
    multiple_values_in_indexed_tag: bool = False


def error_comment(tag: int, message: str) -> str:
    """ErrorComment text: ``DICOM100: (gggg,eeee) - message`` (azure-behaviour §2.3 step 4)."""
    return f"DICOM{VALIDATION_ERROR_NUMBER}: {tag_text(tag)} - {message}"


def missing_tag_message(tag: int) -> str:
    return f"The required tag '{tag_text(tag)}' is missing."


class _Errors:
    """StoreValidationResultBuilder: first error per tag wins (Dictionary.TryAdd), insertion-ordered."""

    def __init__(self) -> None:
        self.by_tag: dict[int, tuple[str, bool]] = {}

    def add(self, tag: int, message: str, *, core: bool) -> None:
        self.by_tag.setdefault(tag, (message, core))


def validate_for_store(
    ds: Dataset,
    *,
    api_major: int,
    is_implicit_vr: bool,
    route_study_uid: str | None,
    indexed_tags: Collection[int],
    memo: ViewMemo | None = None,
) -> StoreValidation:
    """Validate one parsed instance for STOW as Azure does (azure-behaviour §2.3 steps 2-6).

    ``indexed_tags`` are the extended query tags to validate in v1; the core QIDO tags
    (``tags.CORE_QUERY_TAGS``) are always added (passing them again is harmless). A ``memo`` shares the
    element views with whatever reads the same dataset next (the metadata JSON).
    """
    encodings = dataset_encodings(ds)
    errors = _Errors()
    is_v2 = api_major >= 2
    _check_required_tags(ds, encodings, route_study_uid, is_v2, errors, memo)

    multiple_values = False
    if is_v2:
        # Core tags with the lenient rules (NUL padding ignored); errors here fail the instance.
        for tag in _REQUIRED_CORE_TAGS:
            multiple_values |= _validate_indexed(ds, tag, encodings, errors, memo, lenient=True)
        # Everything else with fo-dicom's full rules; errors here are warnings.
        _full_validation_warnings(ds, encodings, errors, memo)
    else:
        query_tags = [t.tag for t in CORE_QUERY_TAGS]
        query_tags += [int(t) for t in indexed_tags if int(t) not in query_tags]
        for tag in query_tags:
            multiple_values |= _validate_indexed(ds, tag, encodings, errors, memo, lenient=False)

    comments = [error_comment(tag, message) for tag, (message, _) in errors.by_tag.items()]
    failed = any(core for _, core in errors.by_tag.values()) if is_v2 else bool(errors.by_tag)
    if failed:
        return StoreValidation(
            failed=True,
            failure_code=VALIDATION_FAILURE,
            failure_comments=comments,
            multiple_values_in_indexed_tag=multiple_values,
        )
    warning_reason: int | None = None
    if is_implicit_vr:
        warning_reason = DATASET_DOES_NOT_MATCH_SOP_CLASS
    elif comments:
        warning_reason = DATASET_HAS_VALIDATION_WARNINGS
    invalid_paths: list[ElementPath] = [
        (tag,) for tag in errors.by_tag if tag not in _V2_UNDROPPABLE_TAGS and tag in ds
    ]
    return StoreValidation(
        failed=False,
        failure_code=None,
        warning_comments=comments,
        invalid_paths=invalid_paths,
        warning_reason=warning_reason,
        multiple_values_in_indexed_tag=multiple_values,
    )


# --------------------------------------------------------------------------------------------------------
# Steps 2-3: required tags and the route's study UID. Azure throws at the first problem: one error at most.
# --------------------------------------------------------------------------------------------------------


def _check_required_tags(
    ds: Dataset,
    encodings: list[str],
    route_study_uid: str | None,
    is_v2: bool,
    errors: _Errors,
    memo: ViewMemo | None,
) -> None:
    study_uid = ""
    for tag in (SOP_CLASS_UID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID):
        value = _single_value(ds, tag, encodings, memo)
        if value is None:
            errors.add(tag, missing_tag_message(tag), core=True)
            return
        if tag == STUDY_INSTANCE_UID:
            study_uid = value
    # Trailing white space ignored, case-insensitive (String.TrimEnd + OrdinalIgnoreCase).
    if route_study_uid is not None and study_uid.rstrip().upper() != route_study_uid.rstrip().upper():
        errors.add(STUDY_INSTANCE_UID, MISMATCH_STUDY_MESSAGE, core=True)
        return
    # v1: PatientID present with a value; v2: present (an empty value is only a warning, added later).
    if (_single_value(ds, PATIENT_ID, encodings, memo) is None) if not is_v2 else (PATIENT_ID not in ds):
        errors.add(PATIENT_ID, missing_tag_message(PATIENT_ID), core=True)


def _single_value(ds: Dataset, tag: int, encodings: list[str], memo: ViewMemo | None) -> str | None:
    # fo-dicom TryGetSingleValue<string>: the element exists and has exactly one value.
    view = element_view(ds, tag, encodings, memo)
    if view is None or view.vr == "SQ" or len(view.values) != 1:
        return None
    return str(view.values[0])


# --------------------------------------------------------------------------------------------------------
# Azure's minimum validation (ElementMinimumValidator), for indexed (v1) and required core (v2) tags.
# --------------------------------------------------------------------------------------------------------


def _validate_indexed(
    ds: Dataset, tag: int, encodings: list[str], errors: _Errors, memo: ViewMemo | None, *, lenient: bool
) -> bool:
    """Validate one indexed tag; return True when it is valid and has several values (step 6)."""
    view = element_view(ds, tag, encodings, memo)
    if view is None or view.vr == "SQ":
        return False  # absent, or not an element: nothing to index
    name = _friendly_name(tag)
    expected = _default_vr(tag)
    if expected is not None and view.vr != expected:
        errors.add(
            tag,
            _element_message(
                name,
                view.vr,
                f"The extended query tag '{name}' is expected to have VR '{expected}' but has '{view.vr}' in file.",
            ),
            core=True,
        )
        return False
    message = _minimum_rule(view, name, lenient=lenient)
    if message is not None:
        errors.add(tag, message, core=True)
        return False
    return len(view.values) > 1


def _friendly_name(tag: int) -> str:
    # DicomTagExtensions.GetFriendlyName: the keyword, or the 8-hex path for private tags.
    if (tag >> 16) % 2 == 1:
        return f"{tag:08X}"
    return keyword_for_tag(tag) or f"{tag:08X}"


def _default_vr(tag: int) -> str | None:
    # DicomTagExtensions.GetDefaultVR: the first dictionary VR; none for private or unknown tags (for
    # those Azure's comparison with null would always fail; we skip the check instead).
    if (tag >> 16) % 2 == 1:
        return None
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return None


def _element_message(name: str, vr: str, detail: str) -> str:
    # ElementValidationException.Message (DicomCoreResource.DicomElementValidationFailed).
    return f"Dicom element '{name}' failed validation for VR '{vr}': {detail}"


def _minimum_rule(view: ElementView, name: str, *, lenient: bool) -> str | None:
    vr = view.vr
    # StringElementValidation: the first value only; ValidationLevel.Default trims NUL padding.
    value = str(view.values[0]) if view.values and vr in STRING_VRS else ""
    if lenient and value:
        value = value.rstrip("\0")
    if vr in ("AE", "CS", "SH"):
        return _max_length_rule(value, 16, name, vr)
    if vr in ("FD", "FL", "SL", "SS", "UL", "US", "AS"):
        return _required_length_rule(view, value, name)
    if vr == "DA":
        if value and not _is_yyyymmdd(value):
            return _element_message(name, "DA", "Value cannot be parsed as a valid date.")
        return None
    if vr in _ENCODED_STRING_RULES:
        validator, detail = _ENCODED_STRING_RULES[vr]
        if value and validator(value) is not None:
            return _element_message(name, vr, detail)
        return None
    if vr == "LO":
        return _long_string_rule(value, name)
    if vr == "PN":
        return _person_name_rule(value, name)
    if vr == "UI":
        # UidValidation (allowEmpty): after trimming spaces, at most 64 digits/dots ending with a digit.
        if value and not is_valid_uid(value):
            return uid_error_message(name)
        return None
    return None  # ElementMinimumValidator has no rule for the other VRs


def _max_length_rule(value: str, max_length: int, name: str, vr: str) -> str | None:
    if len(value) > max_length:
        return _element_message(name, vr, f"Value length exceeds maximum length of {max_length}.")
    return None


def _required_length_rule(view: ElementView, value: str, name: str) -> str | None:
    # ElementRequiredLengthValidation: AS must be exactly 4 characters; binary values at least one value
    # long. An empty element fails (it does not allow empty values).
    expected = 4 if view.vr == "AS" else _VALUE_SIZES[view.vr]
    if value:
        valid = len(value) == expected
    else:
        size = len(view.text or "") if view.vr == "AS" else len(view.values) * expected
        valid = size >= expected
    return None if valid else _element_message(name, view.vr, f"Value length is not {expected}.")


def _is_yyyymmdd(value: str) -> bool:
    # DateTime.TryParseExact(value, "yyyyMMdd"): eight ASCII digits forming a real calendar date.
    if not re.fullmatch(r"[0-9]{8}", value):
        return False
    try:
        datetime.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def _long_string_rule(value: str, name: str) -> str | None:
    if not value:
        return None
    if len(value) > 64:
        return _element_message(name, "LO", "Value length exceeds maximum length of 64.")
    if "\\" in value or _has_control_except_esc(value):
        return _element_message(name, "LO", "Value contains invalid character.")
    return None


def _person_name_rule(value: str, name: str) -> str | None:
    if not value:
        return None
    groups = value.split("=")
    if len(groups) > 3:
        # Azure maps PersonNameExceedMaxGroups to the "components" message (ValidationErrorCodeExtensions).
        return _element_message(name, "PN", "Value contains more than 5 components.")
    for group in groups:
        if len(group) > 64:
            return _element_message(name, "PN", "One or more group of person name exceeds maxium length of 64.")
        if _has_control_except_esc(group):
            return _element_message(name, "PN", "Value contains invalid character.")
    if any(len(group.split("^")) > 5 for group in groups):
        return _element_message(name, "PN", "Value contains more than 5 components.")
    return None


def _has_control_except_esc(text: str) -> bool:
    # .NET char.IsControl (Unicode category Cc) except ESC, which ISO 2022 code extensions need.
    return any(ch != "\x1b" and unicodedata.category(ch) == "Cc" for ch in text)


# --------------------------------------------------------------------------------------------------------
# v2 warnings: fo-dicom's DicomItem.Validate on every element, recursing into sequences.
# --------------------------------------------------------------------------------------------------------


def _full_validation_warnings(ds: Dataset, encodings: list[str], errors: _Errors, memo: ViewMemo | None) -> None:
    # Same traversal as Azure (a stack): the dataset's own elements first, then pushed items, last first.
    stack: list[tuple[Dataset, list[str]]] = [(ds, encodings)]
    while stack:
        current, inherited = stack.pop()
        current_encodings = dataset_encodings(current, inherited)
        for view in iter_element_views(current, current_encodings, memo):
            if view.vr == "SQ":
                stack.extend((item, current_encodings) for item in view.values)
                continue
            message = _full_validation_message(view)
            if message is not None:
                errors.add(view.tag, message, core=False)


def _full_validation_message(view: ElementView) -> str | None:
    if view.vr in BULK_DATA_VRS:
        return None  # fo-dicom validates neither the content nor the multiplicity of binary data
    if view.vr in _STRING_VALUE_TYPE_VRS:
        text = view.text or ""
        if view.tag == PATIENT_ID and not text.strip():
            return missing_tag_message(PATIENT_ID)
        if text.endswith("\0"):
            # azure-behaviour §2.3 step 4: NUL padding is no reason for a warning. Azure validates the whole
            # string, padding stripped, as one value and skips the multiplicity check on this path.
            return _validate_string(view.vr, text.rstrip("\0"))
    if view.vr in STRING_VRS:
        values = [view.text or ""] if view.vr in SINGLE_VALUED_STRING_VRS and view.values else view.values
        for value in values:
            message = _validate_string(view.vr, str(value))
            if message is not None:
                return message
    return _multiplicity_message(view)


def _multiplicity_message(view: ElementView) -> str | None:
    # fo-dicom DicomElement.ValidateVM: public tags only, non-empty elements, dictionary VM.
    count = len(view.values)
    if (view.tag >> 16) % 2 == 1 or count == 0 or view.vr in SINGLE_VALUED_STRING_VRS:
        return None
    vm = _dictionary_vm(view.tag)
    if vm is None:
        return None
    minimum, maximum, text = vm
    if minimum <= count <= maximum:
        return None
    content = f"{tag_text(view.tag)} {view.vr} {dictionary_description(view.tag)}"
    return _content_message(content, view.vr, f"Number of items {count} does not match ValueMultiplicity {text}")


@functools.lru_cache(maxsize=4096)
def _dictionary_vm(tag: int) -> tuple[int, float, str] | None:
    """The parsed dictionary VM of a public tag, or None when pydicom's dictionary does not know it.

    Cached: every element of every stored instance is checked, against a dictionary that never changes.
    """
    try:
        return _parse_vm(str(dictionary_VM(tag)))
    except (KeyError, ValueError):
        return None


def _parse_vm(vm: str) -> tuple[int, float, str]:
    """Parse a dictionary VM (``1``, ``1-3``, ``2-2n``, ``1-n or 1``) like fo-dicom's DicomVM.Parse."""
    parts = [part for part in re.split(r"-| |or", vm) if part]
    minimum = int(parts[0])
    maximum: float = minimum
    multiplicity = minimum
    if len(parts) > 1:
        multiplicity = 1
        if "n" in parts[1].lower():
            maximum = float("inf")
            if parts[1].rstrip("nN"):
                multiplicity = int(parts[1].rstrip("nN"))
        else:
            maximum = int(parts[1])
    if minimum == maximum:
        text = str(minimum)
    elif maximum == float("inf"):
        text = f"{minimum}-{multiplicity}n" if multiplicity > 1 else f"{minimum}-n"
    else:
        text = f"{minimum}-{int(maximum)}"
    return minimum, maximum, text


def _content_message(content: str, vr: str, detail: str) -> str:
    # fo-dicom DicomValidationException.Message.
    return f'Content "{content}" does not validate VR {vr}: {detail}'


@functools.lru_cache(maxsize=16384)
def _validate_string(vr: str, content: str) -> str | None:
    # Cached: the same values (names, dates, codes, the study's UIDs) recur in every instance of a study.
    validator = _STRING_VALIDATORS.get(vr)
    if validator is None:
        return None
    failure = validator(content)
    if failure is None:
        return None
    shown, detail = failure
    return _content_message(shown, vr, detail)


# Each validator returns None, or (the content as fo-dicom reports it, the reason). The rules and their
# order are fo-dicom's DicomValidation; .NET Regex.IsMatch is re.search with the same pattern.
_Failure = tuple[str, str] | None


def _validate_ae(content: str) -> _Failure:
    if len(content) > 16:
        return content, "value exceeds maximum length of 16 characters"
    if re.search(r"^\s*$", content):
        return content, "value may not consist only of spaces"
    if "\\" in content or any(unicodedata.category(ch) == "Cc" for ch in content):
        return content, "value contains invalid control character"
    return None


def _validate_as(content: str) -> _Failure:
    if content and not re.search(r"^\d\d\d[DWMY]$", content):
        return content, "value does not have pattern 000[DWMY]"
    return None


def _validate_cs(content: str) -> _Failure:
    if len(content) > 16:
        return content, "value exceeds maximum length of 16 characters"
    if not re.search(r"^[A-Z0-9_ ]*$", content):
        return content, (
            "value contains invalid character. Only uppercase character, digits, space and underscore alre allowed"
        )
    return None


def _validate_da(content: str) -> _Failure:
    components = content.split("-")
    if len(components) > 2:
        return content, "value contains too many range separators '-'"
    for component in components:
        trimmed = component.rstrip(" ")
        if not trimmed:
            continue
        if not re.search(r"^\d{8}$", trimmed):
            return content, "one of the date values does not match the pattern YYYYMMDD"
        if int(trimmed[4:6]) > 12:
            return content, "month component exceeds the value 12"
        if int(trimmed[6:8]) > 31:
            return content, "day component exceeds the value 31"
    return None


def _validate_ds(content: str) -> _Failure:
    if len(content) > 16:
        return content, "value exceeds maximum length of 16 characters"
    content = content.strip()
    if not re.search(r"^[+-]?((\d+(\.\d*)?)|(\.\d+))([eE][-+]?\d+)?$", content):
        return content, "value is no decimal string"
    return None


def _is_utc_offset(text: str) -> bool:
    return re.search(r"^\d{4}$", text) is not None and int(text) <= 1200


def _validate_dt(content: str) -> _Failure:
    if "-0000" in content:
        return content, "negative UTC hours component with value -0000 is not allowed"
    if content.strip() == "-":
        return content, "both dateTime components in range cannot be empty"
    components = content.split("-")
    if len(components) > 4:
        return content, "value contains too many range separators '-'"
    # A '-' is either the range separator or the sign of a UTC offset: rejoin the offsets.
    if len(components) == 4:
        components = [components[0] + "-" + components[1], components[2] + "-" + components[3]]
    elif len(components) == 3:
        if _is_utc_offset(components[1]):
            components = [components[0] + "-" + components[1], components[2]]
        elif _is_utc_offset(components[2]):
            components = [components[0], components[1] + "-" + components[2]]
        else:
            return content, "value is in invalid range format"
    elif len(components) == 2 and _is_utc_offset(components[1]):
        components = [components[0] + "-" + components[1]]
    for component in components:
        trimmed = component.rstrip(" ")
        if not trimmed:
            continue
        parts = re.split(r"[+-]", trimmed)
        if len(parts) > 2:
            return content, "value contains too many UTC separators '+' or '-'"
        if len(parts) == 2:
            offset = parts[1]
            if not re.search(r"^\d{4}$", offset):
                return content, "value does not match the UTC pattern &ZZXX"
            hours = int(offset[:2])
            if "+" in trimmed and hours > 14:
                return content, "positive UTC hours component exceeds 14 (allowed range is -1200 to +1400)"
            if "+" not in trimmed and hours > 12:
                return content, "negative UTC hours component exceeds 12 (allowed range is -1200 to +1400)"
            if int(offset[2:4]) > 59:
                return content, "UTC minutes component exceeds 59"
        date_time = parts[0]
        if not re.search(r"^\d{4}$|^\d{6}$|^\d{8}$|^\d{10}$|^\d{12}$|^\d{14}$|^\d{14}\.\d{1,6}$", date_time):
            return content, "value does not mach pattern YYYY[MM[DD[HH[MM[SS[.F{1-6}]]]]]]"
        checks = (
            (14, 12, 60, "seconds component exceeds 60"),
            (12, 10, 59, "minutes component exceeds 59"),
            (10, 8, 23, "hours component exceeds 23"),
        )
        for length, start, limit, reason in checks:
            if len(date_time) >= length and int(date_time[start : start + 2]) > limit:
                return content, reason
        if len(date_time) >= 8:
            day = int(date_time[6:8])
            if day > 31:
                return content, "day component exceeds 31"
            if day == 0:
                return content, "day component cannot be 0"
        if len(date_time) >= 6:
            month = int(date_time[4:6])
            if month > 12:
                return content, "month component exceeds 12"
            if month == 0:
                return content, "month component cannot be 0"
    return None


def _validate_is(content: str) -> _Failure:
    if not content:
        return None
    content = content.strip(" ")
    if not re.search(r"^[+-]?\d+$", content):
        return content, "value is not an integer string"
    if not -(2**31) <= int(content) <= 2**31 - 1:
        return content, "value too large to fit 32 bit integer"
    return None


def _validate_lo(content: str) -> _Failure:
    if not content:
        return None
    if len(content) > 64:
        return content, "value exceeds maximum length of 64 characters"
    if "\\" in content or _has_control_except_esc(content):
        return content, "value contains invalid character"
    return None


def _validate_lt(content: str) -> _Failure:
    if len(content) > 10240:
        return content, "value exceeds maximum length of 10240 characters"
    return None


def _validate_pn(content: str) -> _Failure:
    if not content:
        return None
    groups = content.split("=")
    if len(groups) > 3:
        return content, "value contains too many groups"
    for group in groups:
        if len(group) > 64:
            return content, "value exceeds maximum length of 64 characters"
        if _has_control_except_esc(group):
            return content, "value contains invalid control character"
    if any(len(group.split("^")) > 5 for group in groups):
        return content, "value contains too many components"
    return None


def _validate_sh(content: str) -> _Failure:
    if "\\" in content or _has_control_except_esc(content):
        return content, "value contains invalid character"
    if len(content) > 16:
        return content, "value exceeds maximum length of 16 characters"
    return None


def _validate_st(content: str) -> _Failure:
    if len(content) > 1024:
        return content, "value exceeds maximum length of 1024 characters"
    return None


def _validate_tm(content: str) -> _Failure:
    components = content.split("-")
    if len(components) > 2:
        return content, "value contains too many range separators '-'"
    for component in components:
        trimmed = component.rstrip(" ")
        if not trimmed:
            continue
        if not re.search(r"^\d{2}$|^\d{4}$|^\d{6}$|^\d{6}\.\d{1,6}$", trimmed):
            return content, "value does not mach pattern HH or HHMM or HHMMSS or HHMMSS.F{1-6}"
        if int(trimmed[0:2]) > 23:
            return content, "hour component exceeds 23"
        if len(trimmed) >= 4 and int(trimmed[2:4]) > 59:
            return content, "minutes component exceeds 59"
        if len(trimmed) >= 6 and int(trimmed[4:6]) > 60:
            return content, "seconds component exceeds 60"
    return None


def _validate_ui(content: str) -> _Failure:
    content = content.rstrip(" ")
    if not content:
        return None
    if len(content) > 64:
        return content, "value exceeds maximum length of 64 characters"
    if not re.search(r"^[0-9\.]*$", content):
        return content, "value contains invalid characters other than '0'-'9' and '.'"
    if content.startswith("0") or re.search(r"[.]0\d", content):
        return content, "components must not have leading zeros"
    if re.search(r"^[.]", content) or re.search(r"[.][.]", content) or re.search(r"[.]$", content):
        return content, "a component can not be empty"
    return None


_STRING_VALIDATORS: dict[str, Callable[[str], _Failure]] = {
    "AE": _validate_ae,
    "AS": _validate_as,
    "CS": _validate_cs,
    "DA": _validate_da,
    "DS": _validate_ds,
    "DT": _validate_dt,
    "IS": _validate_is,
    "LO": _validate_lo,
    "LT": _validate_lt,
    "PN": _validate_pn,
    "SH": _validate_sh,
    "ST": _validate_st,
    "TM": _validate_tm,
    "UI": _validate_ui,
}

# EncodedStringElementValidation: fo-dicom's rule decides, Azure's message is reported.
_ENCODED_STRING_RULES: dict[str, tuple[Callable[[str], _Failure], str]] = {
    "DT": (_validate_dt, "Value cannot be parsed as a valid DateTime."),
    "IS": (_validate_is, "Value cannot be parsed as a valid integer string."),
    "TM": (_validate_tm, "Value cannot be parsed as a valid Time."),
}


def validate_value(vr: str, value: str) -> str | None:
    """fo-dicom's strict check of one string value for ``vr``: None when valid, else the message."""
    return _validate_string(vr, value)
