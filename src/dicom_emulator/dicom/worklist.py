"""Modality Worklist (PS3.4 Annex K) over UPS workitems: the worklist item a workitem stands for.

Pure module. A workitem that carries worklist attributes itself (a top-level ``Modality``, an
``AccessionNumber``, a ``ScheduledProcedureStepSequence`` item, as the original emulator's examples do) is
served as given. Whatever it lacks is derived from its UPS attributes (PS3.4 Table CC.2.5-3), first found wins:

======================================  ==========================================================================
Worklist attribute (PS3.4 Table K.6-1)  Source in the workitem
======================================  ==========================================================================
SpecificCharacterSet                    always ``ISO_IR 192`` (values are served as Unicode)
PatientName, PatientID, PatientBirth…   the same top-level attribute (any other top-level key too)
AccessionNumber                         AccessionNumber; ReferencedRequestSequence[0] > AccessionNumber
RequestedProcedureID                    RequestedProcedureID; ReferencedRequestSequence[0] > RequestedProcedureID;
                                        the step ID
RequestedProcedureDescription           RequestedProcedureDescription; ReferencedRequestSequence[0] > same
RequestedProcedureCodeSequence          RequestedProcedureCodeSequence; ReferencedRequestSequence[0] > same
StudyInstanceUID                        StudyInstanceUID; ReferencedRequestSequence[0] > StudyInstanceUID;
                                        ``2.25.<UUIDv5 of the workitem UID>`` (stable)
ScheduledProcedureStepSequence          the workitem's items, else one item; in each item:
> Modality                              the item's; top-level Modality
> ScheduledStationAETitle               the item's; top-level ScheduledStationAETitle;
                                        ScheduledStationNameCodeSequence[0] > CodeValue
> ScheduledStationName                  the item's; top-level ScheduledStationName;
                                        ScheduledStationNameCodeSequence[0] > CodeMeaning
> ScheduledProcedureStepStartDate/Time  the item's; ScheduledProcedureStepStartDateTime split (offset dropped)
> ScheduledProcedureStepDescription     the item's; ProcedureStepLabel
> ScheduledProcedureStepID              the item's; :func:`step_id` of the workitem UID
> ScheduledPerformingPhysicianName      the item's; ScheduledHumanPerformersSequence[0] > HumanPerformerName
> ScheduledProtocolCodeSequence         the item's; ScheduledWorkitemCodeSequence
> ScheduledProcedureStepStatus          the item's; ``SCHEDULED``
======================================  ==========================================================================

Matching and the response identifier follow PS3.4 C.2.2.2 (see :mod:`.matching`).
"""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections.abc import Iterable

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence as DicomSequence

from dicom_emulator.dicom import matching
from dicom_emulator.dicom.json_model import element_view, first_text

# The short step ID: Scheduled Procedure Step ID is SH, at most 16 characters (PS3.5 Table 6.2-1).
STEP_ID_LENGTH = 16
# Namespace of the StudyInstanceUID derived for a workitem that names none (UUID-derived UID, PS3.5 B.2).
_STUDY_UID_NAMESPACE = uuid.UUID("8d4f3c52-3d0e-4a5c-9a55-6c1bb6c1f0d1")
WORKLIST_CHARACTER_SET = "ISO_IR 192"
SCHEDULED = "SCHEDULED"

SPS_SEQUENCE = 0x00400100  # ScheduledProcedureStepSequence
_REFERENCED_REQUEST_SEQUENCE = 0x0040A370
_QUERY_RETRIEVE_LEVEL = 0x00080052

_DT_RE = re.compile(r"^(\d{8})(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?(?:[+-]\d{4})?$")


def step_id(workitem_uid: str, index: int = 0) -> str:
    """The Scheduled Procedure Step ID served for item ``index`` of a workitem that gives none.

    The first 16 hex digits of SHA-256 of the workitem UID: short (SH), stable across queries and processes,
    and what an MPPS N-CREATE quotes back to name the workitem.
    """
    text = workitem_uid if index == 0 else f"{workitem_uid}#{index}"
    return hashlib.sha256(text.encode()).hexdigest()[:STEP_ID_LENGTH].upper()


def derived_study_uid(workitem_uid: str) -> str:
    """A stable Study Instance UID for a workitem that names no study (``2.25.`` + UUIDv5, PS3.5 B.2)."""
    return f"2.25.{uuid.uuid5(_STUDY_UID_NAMESPACE, workitem_uid).int}"


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return tag


def _has_value(ds: Dataset, tag: int) -> bool:
    view = element_view(ds, tag)
    return view is not None and any(v is not None and str(v).strip(" \0") != "" for v in view.values)


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    view = element_view(ds, _tag(keyword))
    if view is None or view.vr != "SQ" or not view.values:
        return None
    return view.values[0]  # type: ignore[no-any-return]


def _text(ds: Dataset | None, keyword: str) -> str | None:
    return first_text(ds, _tag(keyword))


def _set(ds: Dataset, keyword: str, value: object) -> None:
    tag = _tag(keyword)
    ds[tag] = DataElement(tag, dictionary_VR(tag).split(" or ")[0], value)


def _fill(target: Dataset, keyword: str, sources: Iterable[Dataset | None], default: object = None) -> None:
    """Give ``target`` the first non-empty ``keyword`` among ``sources`` (or ``default``) unless it has one."""
    tag = _tag(keyword)
    if _has_value(target, tag):
        return
    for source in sources:
        if source is not None and _has_value(source, tag):
            target[tag] = copy.deepcopy(source[tag])
            return
    if default is not None:
        _set(target, keyword, default)
    elif tag not in target:
        target[tag] = matching.empty_element(tag)


def _split_datetime(value: str | None) -> tuple[str | None, str | None]:
    """A DT value as (DA, TM); the UTC offset is dropped (worklist dates and times are local, PS3.5 6.2)."""
    if value is None:
        return None, None
    found = _DT_RE.match(value.strip())
    if found is None:
        return None, None
    return found.group(1), found.group(2)


def _sps_item(workitem: Dataset, given: Dataset | None, workitem_uid: str, index: int) -> Dataset:
    item = copy.deepcopy(given) if given is not None else Dataset()
    station = _first_item(workitem, "ScheduledStationNameCodeSequence")
    performer = _first_item(workitem, "ScheduledHumanPerformersSequence")
    start_date, start_time = _split_datetime(_text(workitem, "ScheduledProcedureStepStartDateTime"))
    _fill(item, "Modality", [workitem])
    _fill(item, "ScheduledStationAETitle", [workitem], _text(station, "CodeValue"))
    _fill(item, "ScheduledStationName", [workitem], _text(station, "CodeMeaning"))
    _fill(item, "ScheduledProcedureStepStartDate", [workitem], start_date)
    _fill(item, "ScheduledProcedureStepStartTime", [workitem], start_time)
    _fill(item, "ScheduledProcedureStepDescription", [workitem], _text(workitem, "ProcedureStepLabel"))
    _fill(item, "ScheduledProcedureStepID", [workitem], step_id(workitem_uid, index))
    _fill(item, "ScheduledPerformingPhysicianName", [workitem], _text(performer, "HumanPerformerName"))
    if not _has_value(item, _tag("ScheduledProtocolCodeSequence")):
        codes = element_view(workitem, _tag("ScheduledWorkitemCodeSequence"))
        if codes is not None and codes.values:
            _set(item, "ScheduledProtocolCodeSequence", DicomSequence(copy.deepcopy(list(codes.values))))
    _fill(item, "ScheduledProcedureStepStatus", [workitem], SCHEDULED)
    return item


def worklist_item(workitem: Dataset, workitem_uid: str) -> Dataset:
    """The Modality Worklist item a workitem stands for (the mapping in the module docstring)."""
    result = copy.deepcopy(workitem)
    request = _first_item(workitem, "ReferencedRequestSequence")
    _set(result, "SpecificCharacterSet", WORKLIST_CHARACTER_SET)
    _fill(result, "AccessionNumber", [request])
    _fill(result, "RequestedProcedureID", [request], step_id(workitem_uid))
    _fill(result, "RequestedProcedureDescription", [request])
    if not _has_value(result, _tag("RequestedProcedureCodeSequence")) and request is not None:
        _fill(result, "RequestedProcedureCodeSequence", [request])
    _fill(result, "StudyInstanceUID", [request], derived_study_uid(workitem_uid))
    given = element_view(workitem, SPS_SEQUENCE)
    given_items: list[Dataset | None] = list(given.values) if given is not None and given.values else [None]
    items = [_sps_item(workitem, item, workitem_uid, i) for i, item in enumerate(given_items)]
    result[SPS_SEQUENCE] = DataElement(SPS_SEQUENCE, "SQ", DicomSequence(items))
    return result


def step_ids(item: Dataset) -> list[str]:
    """The Scheduled Procedure Step IDs of a worklist item (to find the workitem an MPPS refers to)."""
    view = element_view(item, SPS_SEQUENCE)
    steps = [] if view is None else view.values
    return [text for step in steps if (text := _text(step, "ScheduledProcedureStepID"))]


def parse_query(identifier: Dataset) -> matching.IdentifierQuery:
    """The matching keys of a worklist C-FIND identifier (PS3.4 K.6.1.2.1; QueryRetrieveLevel is not a key)."""
    return matching.parse_identifier(identifier, skip={_QUERY_RETRIEVE_LEVEL})


def answer(query: matching.IdentifierQuery, identifier: Dataset, item: Dataset) -> Dataset | None:
    """The response identifier for worklist ``item``, or ``None`` when it does not match."""
    matched = matching.match(query, item)
    if matched is None:
        return None
    result = matching.response(identifier, item, matched)
    result.SpecificCharacterSet = WORKLIST_CHARACTER_SET
    return result


def identifier_text(identifier: Dataset, keyword: str) -> str | None:
    """A top-level key's value as text for the SQL pre-filter, ``None`` for universal matching."""
    text = matching.key_text(identifier, _tag(keyword))
    return None if matching.is_universal(text) else text
