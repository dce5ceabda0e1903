"""The dataset edits of the workitem service: what the SCP sets on create and update, the update merge, a state
change and a cancel request, as Azure writes them (each function names its C# counterpart).

Each edit returns a new dataset and leaves its input alone; :func:`set_element` is the in-place primitive they
share.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dicom_emulator.dicom.indexing import first_value
from dicom_emulator.dicom.ups.attributes import (
    CONTACT_DISPLAY_NAME,
    CONTACT_URI,
    PROCEDURE_STEP_CANCELLATION_DATETIME,
    PROCEDURE_STEP_COMMUNICATIONS_URI_SEQUENCE,
    PROCEDURE_STEP_DISCONTINUATION_REASON_CODE_SEQUENCE,
    PROCEDURE_STEP_PROGRESS_INFORMATION_SEQUENCE,
    PROCEDURE_STEP_STATE,
    REASON_FOR_CANCELLATION,
    SCHEDULED_PROCEDURE_STEP_MODIFICATION_DATETIME,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    TRANSACTION_UID,
    UPS_PERFORMED_PROCEDURE_SEQUENCE,
    UPS_PUSH_SOP_CLASS_UID,
    WORKLIST_LABEL,
    WORKLIST_LABEL_TAG,
    get_text,
)
from dicom_emulator.dicom.ups.messages import MSG_MISMATCH_SOP_INSTANCE_UID
from dicom_emulator.dicom.ups.states import ProcedureStepState
from dicom_emulator.dicom.values import is_multi_value
from dicom_emulator.errors import BadRequestError


def dicom_datetime(value: datetime) -> str:
    """A UTC ``datetime`` as a DT value, as .NET writes ``DateTime.UtcNow`` into a DT element."""
    return value.strftime("%Y%m%d%H%M%S.%f")


def set_element(ds: Dataset, tag: int, value: Any) -> None:
    """Add or replace an element with its dictionary VR (values are not validated, as elsewhere)."""
    ds[tag] = DataElement(tag, dictionary_VR(tag), value, validation_mode=pydicom_config.IGNORE)


def prepare_create(ds: Dataset, workitem_uid: str | None, now: datetime) -> Dataset:
    """Apply the SCP's part of N-CREATE (``WorkitemService.SetSpecifiedAttributesForCreate``), in Azure's order.

    Sets SOP Class UID (UPS Push), the SOP Instance UID from the query parameter (400 with Azure's message when the
    body names another one), the modification date-time, Worklist Label ``worklist`` and state SCHEDULED. Returns a
    new dataset.
    """
    result = copy.deepcopy(ds)
    set_element(result, SOP_CLASS_UID, UPS_PUSH_SOP_CLASS_UID)
    if workitem_uid is not None and workitem_uid.strip():
        if SOP_INSTANCE_UID in result and (get_text(result, SOP_INSTANCE_UID) or "") != workitem_uid:
            raise BadRequestError(MSG_MISMATCH_SOP_INSTANCE_UID)
        set_element(result, SOP_INSTANCE_UID, workitem_uid)
    set_element(result, SCHEDULED_PROCEDURE_STEP_MODIFICATION_DATETIME, dicom_datetime(now))
    set_element(result, WORKLIST_LABEL_TAG, WORKLIST_LABEL)
    set_element(result, PROCEDURE_STEP_STATE, ProcedureStepState.SCHEDULED.value)
    return result


def prepare_update(ds: Dataset, now: datetime) -> Dataset:
    """N-SET: the SCP sets the modification date-time on the request (``SetSpecifiedAttributesForUpdate``)."""
    result = copy.deepcopy(ds)
    set_element(result, SCHEDULED_PROCEDURE_STEP_MODIFICATION_DATETIME, dicom_datetime(now))
    return result


_NUMERIC_VRS = frozenset({"DS", "IS", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV"})


def merge_update(stored: Dataset, update: Dataset) -> Dataset:
    """The stored workitem with every attribute of ``update`` added or replaced (Azure's ``GetMergedDataset``).

    Strings and sequences replace the stored element whole; numeric attributes keep only their first value (Azure
    copies them with ``GetFirstValueOrDefault``).
    """
    result = copy.deepcopy(stored)
    for element in update:
        new = copy.deepcopy(element)
        if new.VR in _NUMERIC_VRS and is_multi_value(new.value):
            new.value = new.value[0] if len(new.value) else None
        result[new.tag] = new
    return result


def with_state(ds: Dataset, state: ProcedureStepState, transaction_uid: str | None) -> Dataset:
    """The stored workitem with a new Procedure Step State and Transaction UID (Change State, Azure's
    ``GetPreparedChangeWorkitemStateDicomDataset``)."""
    result = copy.deepcopy(ds)
    set_element(result, TRANSACTION_UID, transaction_uid or "")
    set_element(result, PROCEDURE_STEP_STATE, state.value)
    return result


def apply_cancel_request(stored: Dataset, request: Dataset, state: ProcedureStepState, now: datetime) -> Dataset:
    """The stored workitem as Azure rewrites it for a Request Cancel (``PopulateCancelRequestAttributes``).

    Adds Procedure Step Cancellation DateTime, sets the state, records the reason (ReasonForCancellation of the
    request, in a discontinuation-reason item, at the top level and in a new Progress Information item together
    with the request's Contact URI / Display Name), and copies the request's Performed Procedure sequence if any.
    """
    result = copy.deepcopy(stored)
    stamp = dicom_datetime(now)
    reason = first_value(request, "ReasonForCancellation") or ""

    def reason_item() -> Dataset:
        item = Dataset()
        set_element(item, REASON_FOR_CANCELLATION, reason)
        return item

    set_element(result, PROCEDURE_STEP_CANCELLATION_DATETIME, stamp)
    set_element(result, PROCEDURE_STEP_STATE, state.value)
    set_element(result, PROCEDURE_STEP_DISCONTINUATION_REASON_CODE_SEQUENCE, DicomSequence([reason_item()]))
    contact = Dataset()
    set_element(contact, CONTACT_URI, first_value(request, "ContactURI") or "")
    set_element(contact, CONTACT_DISPLAY_NAME, first_value(request, "ContactDisplayName") or "")
    progress = Dataset()
    set_element(progress, PROCEDURE_STEP_CANCELLATION_DATETIME, stamp)
    set_element(progress, PROCEDURE_STEP_DISCONTINUATION_REASON_CODE_SEQUENCE, DicomSequence([reason_item()]))
    set_element(progress, PROCEDURE_STEP_COMMUNICATIONS_URI_SEQUENCE, DicomSequence([contact]))
    set_element(result, PROCEDURE_STEP_PROGRESS_INFORMATION_SEQUENCE, DicomSequence([progress]))
    if UPS_PERFORMED_PROCEDURE_SEQUENCE in request:
        result[UPS_PERFORMED_PROCEDURE_SEQUENCE] = copy.deepcopy(request[UPS_PERFORMED_PROCEDURE_SEQUENCE])
    return result
