"""The UPS attributes the package names (PS3.4 Table CC.2.5-3), and how it reads a string attribute."""

from __future__ import annotations

from pydicom.dataset import Dataset

from dicom_emulator.dicom.json_model import element_view

UPS_PUSH_SOP_CLASS_UID = "1.2.840.10008.5.1.4.34.6.1"  # PS3.4 CC.3.1: Unified Procedure Step - Push SOP Class
WORKLIST_LABEL = "worklist"  # WorkitemService.Add: the SCP-assigned Worklist Label

SPECIFIC_CHARACTER_SET = 0x00080005
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
TRANSACTION_UID = 0x00081195
STUDY_INSTANCE_UID = 0x0020000D
PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
SCHEDULED_PROCEDURE_STEP_START_DATETIME = 0x00404005
SCHEDULED_PROCEDURE_STEP_MODIFICATION_DATETIME = 0x00404010
PROCEDURE_STEP_CANCELLATION_DATETIME = 0x00404052
PROCEDURE_STEP_STATE = 0x00741000
PROCEDURE_STEP_PROGRESS_INFORMATION_SEQUENCE = 0x00741002
PROCEDURE_STEP_COMMUNICATIONS_URI_SEQUENCE = 0x00741008
CONTACT_URI = 0x0074100A
CONTACT_DISPLAY_NAME = 0x0074100C
PROCEDURE_STEP_DISCONTINUATION_REASON_CODE_SEQUENCE = 0x0074100E
WORKLIST_LABEL_TAG = 0x00741202
UPS_PERFORMED_PROCEDURE_SEQUENCE = 0x00741216
REASON_FOR_CANCELLATION = 0x00741238


def get_text(ds: Dataset, tag: int) -> str | None:
    """The whole value of a string element (padding trimmed), ``None`` when absent or not a string."""
    view = element_view(ds, tag)
    return None if view is None else view.text
