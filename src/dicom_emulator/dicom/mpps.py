"""Modality Performed Procedure Step SOP Class (PS3.4 Annex F): the pure part of driving UPS workitems.

The checks of an N-CREATE attribute list and of an N-SET (PS3.4 F.7.2.1 / F.7.2.2), the merge of an N-SET into the
stored attributes, the UPS update an MPPS COMPLETED makes (PS3.4 CC.2.5.1.1), and which scheduled workitem a
Scheduled Step Attributes item names. A modality names the scheduled step with the values the worklist answer
gave it (``dicom.worklist``): the Scheduled Procedure Step ID, else AccessionNumber together with StudyInstanceUID.
The service that records steps and moves workitems is ``services.mpps``.

Failures raise the errors below (here and in ``services.mpps``); ``dimse.handlers`` maps them to the statuses of
PS3.4 F.7.2.1.2 / F.7.2.2.2 and PS3.7 Annex C in its one table.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from datetime import datetime

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence as DicomSequence

from dicom_emulator.dicom import worklist
from dicom_emulator.dicom.identifiers import is_valid_uid
from dicom_emulator.dicom.json_model import element_view, first_text
from dicom_emulator.errors import BadRequestError, ConflictError, NotFoundError

logger = logging.getLogger(__name__)

IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
STATUSES = (IN_PROGRESS, COMPLETED, DISCONTINUED)  # PS3.3 C.4.14: Performed Procedure Step Status
# Coding scheme of the codes the emulator makes up for a UPS (PS3.16 8.2: "99" prefix = local scheme).
LOCAL_CODING_SCHEME = "99DCMEMU"


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return tag


PPS_STATUS = _tag("PerformedProcedureStepStatus")
SSA_SEQUENCE = _tag("ScheduledStepAttributesSequence")

# PS3.4 Table F.7.2-1: the attributes an N-CREATE must carry with a value (Req. Type 1/1 for the SCU).
CREATE_REQUIRED: tuple[str, ...] = (
    "ScheduledStepAttributesSequence",
    "PerformedProcedureStepID",
    "PerformedStationAETitle",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepStatus",
    "Modality",
)
CREATE_REQUIRED_IN_STEP: tuple[str, ...] = ("StudyInstanceUID",)
# PS3.4 Table F.7.2-1, N-SET column "Not allowed": fixed at N-CREATE. An N-SET carrying them keeps the created
# values (the emulator drops them rather than failing the modality's update).
SET_NOT_ALLOWED = frozenset(
    _tag(keyword)
    for keyword in (
        "ScheduledStepAttributesSequence",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "ReferencedPatientSequence",
        "PerformedProcedureStepID",
        "PerformedStationAETitle",
        "PerformedStationName",
        "PerformedLocation",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "Modality",
        "StudyID",
    )
)


# --- Errors (mapped to DIMSE statuses in dimse/handlers.py) ------------------------------------------------------


class MppsError:
    """Mixin of the MPPS errors: the attributes concerned, for the response's Attribute Identifier List."""

    tags: tuple[int, ...] = ()


class MissingAttributeError(MppsError, BadRequestError):
    """A required attribute is absent (0x0120 Missing attribute)."""

    def __init__(self, message: str, tags: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.tags = tuple(tags)


class MissingAttributeValueError(MppsError, BadRequestError):
    """A required attribute has no value (0x0121 Missing attribute value)."""

    def __init__(self, message: str, tags: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.tags = tuple(tags)


class InvalidAttributeValueError(MppsError, BadRequestError):
    """An attribute value is not allowed, e.g. a status other than IN PROGRESS on N-CREATE (0x0106)."""

    def __init__(self, message: str, tags: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.tags = tuple(tags)


class InvalidObjectInstanceError(MppsError, BadRequestError):
    """The SOP Instance UID breaks the UID rules (0x0117 Invalid object instance)."""


class DuplicateInstanceError(MppsError, ConflictError):
    """An MPPS with this SOP Instance UID exists (0x0111 Duplicate SOP instance)."""


class NoSuchInstanceError(MppsError, NotFoundError):
    """N-SET of an MPPS that does not exist (0x0112 No such object instance)."""


class MppsFinalError(MppsError, ConflictError):
    """N-SET of an MPPS already COMPLETED or DISCONTINUED (0x0110, PS3.4 F.7.2.2.2)."""


# --- Pure checks and mappings -----------------------------------------------------------------------------------


def _name(tag: int) -> str:
    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _text(ds: Dataset | None, keyword: str) -> str | None:
    return first_text(ds, _tag(keyword))


def _items(ds: Dataset, keyword: str) -> list[Dataset]:
    view = element_view(ds, _tag(keyword))
    return [] if view is None or view.vr != "SQ" else list(view.values)


def _has_value(ds: Dataset, tag: int) -> bool:
    view = element_view(ds, tag)
    return view is not None and any(v is not None and str(v).strip(" \0") != "" for v in view.values)


def check_create(ds: Dataset) -> None:
    """PS3.4 F.7.2.1: the N-CREATE attribute list; raises the first kind of error found, naming every attribute."""
    missing = [_tag(k) for k in CREATE_REQUIRED if _tag(k) not in ds]
    for item in _items(ds, "ScheduledStepAttributesSequence"):
        missing += [_tag(k) for k in CREATE_REQUIRED_IN_STEP if _tag(k) not in item and _tag(k) not in missing]
    if missing:
        raise MissingAttributeError(f"Missing attribute: {', '.join(_name(t) for t in missing)}", missing)
    empty = [_tag(k) for k in CREATE_REQUIRED if not _has_value(ds, _tag(k))]
    for item in _items(ds, "ScheduledStepAttributesSequence"):
        empty += [_tag(k) for k in CREATE_REQUIRED_IN_STEP if not _has_value(item, _tag(k)) and _tag(k) not in empty]
    if empty:
        raise MissingAttributeValueError(f"Missing attribute value: {', '.join(_name(t) for t in empty)}", empty)
    status = _text(ds, "PerformedProcedureStepStatus")
    if status != IN_PROGRESS:
        # PS3.4 F.7.2.1.1: an MPPS is created IN PROGRESS.
        raise InvalidAttributeValueError(f"N-CREATE status must be IN PROGRESS, not '{status}'", [PPS_STATUS])
    for item in _items(ds, "ScheduledStepAttributesSequence"):
        study = _text(item, "StudyInstanceUID")
        if not is_valid_uid(study):
            raise InvalidAttributeValueError(f"Invalid StudyInstanceUID '{study}'", [_tag("StudyInstanceUID")])


def check_set(ds: Dataset) -> str | None:
    """PS3.4 F.7.2.2: the new status an N-SET asks for (``None`` when it sets none); raises 0x0106 for others."""
    if PPS_STATUS not in ds:
        return None
    status = _text(ds, "PerformedProcedureStepStatus")
    if status not in STATUSES:
        raise InvalidAttributeValueError(f"Status '{status}' is not one of {', '.join(STATUSES)}", [PPS_STATUS])
    return status


def merge_set(stored: Dataset, modification: Dataset) -> Dataset:
    """The stored attributes with the N-SET's replaced (whole elements, sequences too; PS3.7 10.1.1)."""
    result = copy.deepcopy(stored)
    for element in modification:
        if int(element.tag) in SET_NOT_ALLOWED:
            logger.info("MPPS N-SET: ignoring %s, which may only be set by N-CREATE", element.keyword or element.tag)
            continue
        result[element.tag] = copy.deepcopy(element)
    return result


def _set(ds: Dataset, keyword: str, value: object) -> None:
    tag = _tag(keyword)
    ds[tag] = DataElement(tag, dictionary_VR(tag), value)


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    _set(item, "CodeValue", value[:16])
    _set(item, "CodingSchemeDesignator", LOCAL_CODING_SCHEME)
    _set(item, "CodeMeaning", meaning[:64])
    return item


def _datetime(date: str | None, time: str | None) -> str | None:
    return None if not date else f"{date}{time or ''}"


def performed_procedure(mpps: Dataset, now: datetime, retrieve_ae_title: str) -> tuple[Dataset, bool]:
    """The UPS update an MPPS COMPLETED makes: UnifiedProcedureStepPerformedProcedureSequence (0074,1216) with the
    final-state attributes of PS3.4 CC.2.5.1.1, and whether it names output instances (else that check is
    skipped, an MPPS may complete without images)."""
    item = Dataset()
    performers = []
    for series in _items(mpps, "PerformedSeriesSequence"):
        name = _text(series, "PerformingPhysicianName") or _text(series, "OperatorsName")
        if name:
            performer = Dataset()
            _set(performer, "HumanPerformerName", name)
            performers.append(performer)
            break
    if performers:
        _set(item, "ActualHumanPerformersSequence", DicomSequence(performers))
    station = _text(mpps, "PerformedStationAETitle") or retrieve_ae_title
    station_name = _text(mpps, "PerformedStationName") or station
    _set(item, "PerformedStationNameCodeSequence", DicomSequence([_code(station, station_name)]))
    start = _datetime(_text(mpps, "PerformedProcedureStepStartDate"), _text(mpps, "PerformedProcedureStepStartTime"))
    end = _datetime(_text(mpps, "PerformedProcedureStepEndDate"), _text(mpps, "PerformedProcedureStepEndTime"))
    stamp = now.strftime("%Y%m%d%H%M%S")
    _set(item, "PerformedProcedureStepStartDateTime", start or stamp)
    _set(item, "PerformedProcedureStepEndDateTime", end or stamp)
    codes = _items(mpps, "ProcedureCodeSequence")
    if not codes:
        meaning = _text(mpps, "PerformedProcedureStepDescription") or "Performed Procedure Step"
        codes = [_code(_text(mpps, "PerformedProcedureStepID") or "MPPS", meaning)]
    _set(item, "PerformedWorkitemCodeSequence", DicomSequence(copy.deepcopy(codes)))
    study = _text(next(iter(_items(mpps, "ScheduledStepAttributesSequence")), None), "StudyInstanceUID")
    outputs = []
    for series in _items(mpps, "PerformedSeriesSequence"):
        references = []
        for keyword in ("ReferencedImageSequence", "ReferencedNonImageCompositeSOPInstanceSequence"):
            for ref in _items(series, keyword):
                reference = Dataset()
                _set(reference, "ReferencedSOPClassUID", _text(ref, "ReferencedSOPClassUID") or "")
                _set(reference, "ReferencedSOPInstanceUID", _text(ref, "ReferencedSOPInstanceUID") or "")
                references.append(reference)
        if not references:
            continue
        output = Dataset()
        _set(output, "TypeOfInstances", "DICOM")
        if study:
            _set(output, "StudyInstanceUID", study)
        _set(output, "SeriesInstanceUID", _text(series, "SeriesInstanceUID") or "")
        _set(output, "ReferencedSOPSequence", DicomSequence(references))
        retrieval = Dataset()
        _set(retrieval, "RetrieveAETitle", _text(series, "RetrieveAETitle") or retrieve_ae_title)
        _set(output, "DICOMRetrievalSequence", DicomSequence([retrieval]))
        outputs.append(output)
    if outputs:
        _set(item, "OutputInformationSequence", DicomSequence(outputs))
    update = Dataset()
    _set(update, "UnifiedProcedureStepPerformedProcedureSequence", DicomSequence([item]))
    return update, bool(outputs)


def discontinuation_reason(mpps: Dataset) -> str:
    """The cancellation reason recorded on the workitem for an MPPS DISCONTINUED."""
    for item in _items(mpps, "PerformedProcedureStepDiscontinuationReasonCodeSequence"):
        meaning = _text(item, "CodeMeaning")
        if meaning:
            return f"MPPS DISCONTINUED: {meaning}"
    return "MPPS DISCONTINUED"


def named_workitems(dataset: Dataset, candidates: Sequence[tuple[str, Dataset]]) -> list[str]:
    """The workitems among ``candidates`` (workitem UID, worklist item) that the Scheduled Step Attributes of an
    N-CREATE name: by step ID, else accession + study UID; each once, in the order of the steps."""
    found: list[str] = []
    for step in _items(dataset, "ScheduledStepAttributesSequence"):
        uid = _find_step(step, candidates)
        if uid is not None and uid not in found:
            found.append(uid)
    return found


def _find_step(step: Dataset, candidates: Sequence[tuple[str, Dataset]]) -> str | None:
    step_id = _text(step, "ScheduledProcedureStepID")
    if step_id:
        for uid, item in candidates:
            if step_id in worklist.step_ids(item):
                return uid
    accession = _text(step, "AccessionNumber")
    study = _text(step, "StudyInstanceUID")
    if accession:
        hits = [
            uid
            for uid, item in candidates
            if _text(item, "AccessionNumber") == accession
            and (study is None or _text(item, "StudyInstanceUID") == study)
        ]
        if len(hits) > 1:
            logger.warning("MPPS: accession %s names %d scheduled workitems; using the newest", accession, len(hits))
        if hits:
            return hits[0]
    return None
