"""UPS-RS (Unified Procedure Step, PS3.4 Annex CC / PS3.18 §11) as Azure's DICOM service implements it.

Pure module: datasets and query strings in, values and messages out; no database and no HTTP. It holds, as
data, everything the workitem service decides with (reference §9 of ``azure-dicom-api.md``):

- :class:`ProcedureStepState` and the state machine :data:`TRANSITIONS`, keyed on ``(action, current state)``
  exactly as Azure's ``ProcedureStepStateExtensions.CheckProcedureStepStateTransitionTable`` (PS3.4 Table
  CC.1.1-2 with Azure's status codes, including where Azure differs from the standard);
- the attribute requirement tables of PS3.4 Table CC.2.5-3 for create (N-CREATE) and update (N-SET), as Azure
  encodes them (``WorkitemDatasetValidatorExtension``), and the final-state codes of PS3.4 CC.2.5.1.1
  (``WorkitemFinalStateValidatorExtension``); the check functions return Azure's message or ``None``;
- the dataset edits the service applies (create, update merge, cancel request);
- the search keys (``WorkitemQueryTag.sql``), the query parser (``WorkitemQueryParser``), the index values
  and the returned attributes (``WorkitemQueryResponseBuilder``).

Where the reference is silent, the archived ``microsoft/dicom-server`` (branch ``archived``,
``src/Microsoft.Health.Dicom.Core/Features/Workitem``) is the authority; the places are named below.

Azure quirks reproduced on purpose (see the README):

- Requirement entries are kept in Azure's order *including duplicates* (a tag listed by two modules is checked
  twice), so the first failing rule, and therefore the message, is Azure's. Six attributes end up "required and
  non-empty" on create because a Type 2 rule and a "Type 3: non-empty if present" rule both apply (§9.2).
- Requirement codes whose condition Azure cannot evaluate (1C, 2C, and the final-state code RC) are treated as
  optional, as Azure does.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dicom_emulator.dicom.indexing import first_value
from dicom_emulator.dicom.json_model import element_view, sequence_items
from dicom_emulator.dicom.query import (
    INCLUDE_FIELD_ALL,
    MSG_DUPLICATE_ATTRIBUTE,
    MSG_DUPLICATE_ATTRIBUTE_ID,
    MSG_DUPLICATE_KEY,
    MSG_EMPTY_VALUE,
    MSG_INCLUDE_ALL_WITH_OTHERS,
    MSG_INCLUDE_FIELD_UNKNOWN,
    Condition,
    normalize_datetime,
    normalize_string,
    parse_qido,
    person_name_words,
)

# The QIDO parser's .NET-compatible primitives (String.Trim, OrdinalIgnoreCase keys, DicomTagParser, the value
# parsers of BaseQueryParser) are exactly what Azure's workitem parser uses too; reuse rather than duplicate them.
from dicom_emulator.dicom.query import _fold_key as fold_key
from dicom_emulator.dicom.query import _parse_attribute_id as parse_attribute_id
from dicom_emulator.dicom.query import _parse_value as parse_value
from dicom_emulator.dicom.query import _trim as dotnet_trim
from dicom_emulator.dicom.tags import Level, QueryResource, QueryTag, keyword_tag, tag_text
from dicom_emulator.errors import BadRequestError, QueryValidationError

# ---------------------------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------------------------

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

# ---------------------------------------------------------------------------------------------------------------
# Messages (DicomCoreResource.resx, branch `archived`). Tags print as fo-dicom's DicomTag.ToString(): "(0008,1195)".
# ---------------------------------------------------------------------------------------------------------------

MSG_MISSING_REQUIRED_TAG = "The required tag '{0}' is missing."
MSG_MISSING_REQUIRED_VALUE = "The value for tag '{0}' is missing."
MSG_ATTRIBUTE_MUST_NOT_BE_EMPTY = "The attribute with tag '{0}' must not be empty."
MSG_ATTRIBUTE_MUST_BE_EMPTY = "The attribute with tag '{0}' must be empty."
MSG_ATTRIBUTE_NOT_ALLOWED = "The attribute with tag '{0}' cannot be present."
MSG_UNEXPECTED_VALUE = "Expected value '{0}' to be one of the following values: [{1}]"
MSG_INVALID_TRANSITION = "The workitem instance can not transition to '{0}' state: {1}."
MSG_FINAL_STATE = "The workitem instance is already in the final state '{0}'. {1}."
MSG_MISMATCH_SOP_INSTANCE_UID = "SOPInstanceUID in the payload does not match the workitem query parameter."
MSG_ALREADY_EXISTS = "The workitem instance already exists. Try creating using a different UID."
MSG_NOT_FOUND = "The workitem instance is not found."
MSG_CANCEL_SUCCESS = "The workitem instance has been cancelled."
MSG_ALREADY_CANCELED = "The UPS is already in the requested state of CANCELED."
MSG_ALREADY_COMPLETED = "The UPS is already COMPLETED."
MSG_INVALID_TRANSACTION_UID = "Invalid TransactionUID for the specified Workitem Instance UID."
MSG_NOT_CLAIMED = "The target URI did not reference a claimed Workitem."
MSG_UPDATE_CONFLICT = "The submitted request is inconsistent with the current state of the Workitem."
MSG_BEING_UPDATED = "The workitem instance is currently being updated. Please try again later."
MSG_UNSUPPORTED_SEARCH_PARAMETER = (  # DicomCoreResource.UnsupportedSearchParameter (note Azure's double space)
    "Invalid query: AttributeId {0} is not queryable.  If the parameter is an attribute keyword, check the casing "
    "as they are case-sensitive. The conformance statement has a list of supported query parameters, attributes "
    "and the levels."
)
MSG_NESTED_SEQUENCE = (  # ElementValidationException(path, SQ, NestedSequence) from DicomTagParser
    "Dicom element '{0}' failed validation for VR 'SQ': Nested Dicom sequence tags are currently not supported."
)
MSG_SEQUENTIAL_TAGS = "Sequential dicom tags are currently not supported."


# ---------------------------------------------------------------------------------------------------------------
# States and the state machine (PS3.4 CC.1.1, Table CC.1.1-2; Azure's codes)
# ---------------------------------------------------------------------------------------------------------------


class ProcedureStepState(enum.StrEnum):
    """Procedure Step State (0074,1000), PS3.4 CC.1.1. ``NONE`` is Azure's "no/unknown state"."""

    NONE = ""
    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"

    @classmethod
    def parse(cls, text: str | None) -> ProcedureStepState:
        """Azure's ``GetProcedureStepState``: blank → NONE, display names compared case-insensitively,
        anything else → NONE."""
        if text is None or not text.strip():
            return cls.NONE
        folded = text.rstrip(" \0").upper()
        return next((state for state in cls if state.value == folded), cls.NONE)

    @property
    def enum_name(self) -> str:
        """The C# enum member name, which Azure prints in a few messages (``'Canceled'``)."""
        return _ENUM_NAMES[self]

    @property
    def is_final(self) -> bool:
        return self in (ProcedureStepState.COMPLETED, ProcedureStepState.CANCELED)


_ENUM_NAMES = {
    ProcedureStepState.NONE: "None",
    ProcedureStepState.SCHEDULED: "Scheduled",
    ProcedureStepState.IN_PROGRESS: "InProgress",
    ProcedureStepState.COMPLETED: "Completed",
    ProcedureStepState.CANCELED: "Canceled",
}

# Targets a Change State request may ask for (ChangeWorkitemStateDatasetValidator). Azure keeps them in an
# ImmutableHashSet<string>, whose order (and so the order printed in MSG_UNEXPECTED_VALUE) follows .NET's
# per-process randomized string hashes; the emulator prints them in declaration order.
CHANGE_STATE_TARGETS: tuple[ProcedureStepState, ...] = (
    ProcedureStepState.IN_PROGRESS,
    ProcedureStepState.CANCELED,
    ProcedureStepState.COMPLETED,
)


class UpsAction(enum.StrEnum):
    """The events of PS3.4 Table CC.1.1-2 (Azure's ``WorkitemActionEvent``)."""

    N_CREATE = "N-CREATE"
    TO_SCHEDULED = "N-ACTION to SCHEDULED"
    TO_IN_PROGRESS = "N-ACTION to IN PROGRESS"
    TO_COMPLETED = "N-ACTION to COMPLETED"
    TO_CANCELED = "N-ACTION to CANCELED"
    REQUEST_CANCEL = "N-ACTION Request Cancel"


# PS3.4 Table CC.2.1-2 / CC.2.4-2 status codes that the table uses, with their standard meanings.
UPS_STATUS_MEANINGS: dict[str, str] = {
    "0111": "Failed: Duplicate SOP Instance",
    "B304": "Warning: The UPS is already in the requested state of CANCELED",
    "B306": "Warning: The UPS is already in the requested state of COMPLETED",
    "C300": "Failed: The UPS may no longer be updated",
    "C301": "Failed: The correct Transaction UID was not provided",
    "C302": "Failed: The UPS is already IN PROGRESS",
    "C303": "Failed: The UPS may only become SCHEDULED via N-CREATE, not N-SET or N-ACTION",
    "C307": "Failed: Specified SOP Instance UID does not exist or is not a UPS Instance managed by this SCP",
    "C310": "Failed: The UPS is not in the IN PROGRESS state",
    "C311": "Failed: The UPS is already COMPLETED",
    "C312": "Failed: Performer chooses not to cancel",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One cell of the table: the state after the action (``None`` = unchanged) and the status code, if any."""

    state: ProcedureStepState | None
    code: str | None = None
    error: bool = False

    @property
    def warning(self) -> bool:
        return not self.error and self.code is not None


@dataclass(frozen=True, slots=True)
class Transition:
    """A cell whose outcome depends on whether the request's Transaction UID matches the stored one.

    "Matching" (Azure): the request Transaction UID equals the stored one (ordinal), or the stored one is empty and
    the target is IN PROGRESS (the claim). Cells that do not look at the Transaction UID have equal outcomes.
    """

    matching: Outcome
    mismatched: Outcome


def _always(outcome: Outcome) -> Transition:
    return Transition(outcome, outcome)


def _ok(state: ProcedureStepState) -> Outcome:
    return Outcome(state)


def _err(code: str) -> Outcome:
    return Outcome(None, code, error=True)


def _warn(code: str) -> Outcome:
    return Outcome(None, code)


_S = ProcedureStepState
_C301 = _err("C301")

# PS3.4 Table CC.1.1-2 as Azure implements it. Azure differs from the standard where it
# - answers Request Cancel of an IN PROGRESS workitem with C312 (the standard notifies the performer instead;
#   Azure cannot, so it refuses), and
# - checks the Transaction UID *before* the state for every N-ACTION to a target (C301 wins over C310/C302/C300
#   and over the B306/B304 warnings).
TRANSITIONS: dict[tuple[UpsAction, ProcedureStepState], Transition] = {
    (UpsAction.N_CREATE, _S.NONE): _always(_ok(_S.SCHEDULED)),
    (UpsAction.N_CREATE, _S.SCHEDULED): _always(_err("0111")),
    (UpsAction.N_CREATE, _S.IN_PROGRESS): _always(_err("0111")),
    (UpsAction.N_CREATE, _S.COMPLETED): _always(_err("0111")),
    (UpsAction.N_CREATE, _S.CANCELED): _always(_err("0111")),
    (UpsAction.TO_SCHEDULED, _S.NONE): _always(_err("C307")),
    (UpsAction.TO_SCHEDULED, _S.SCHEDULED): _always(_err("C303")),
    (UpsAction.TO_SCHEDULED, _S.IN_PROGRESS): _always(_err("C303")),
    (UpsAction.TO_SCHEDULED, _S.COMPLETED): _always(_err("C303")),
    (UpsAction.TO_SCHEDULED, _S.CANCELED): _always(_err("C303")),
    (UpsAction.TO_IN_PROGRESS, _S.NONE): _always(_err("C307")),
    (UpsAction.TO_IN_PROGRESS, _S.SCHEDULED): Transition(_ok(_S.IN_PROGRESS), _C301),
    (UpsAction.TO_IN_PROGRESS, _S.IN_PROGRESS): Transition(_err("C302"), _C301),
    (UpsAction.TO_IN_PROGRESS, _S.COMPLETED): Transition(_err("C300"), _C301),
    (UpsAction.TO_IN_PROGRESS, _S.CANCELED): Transition(_err("C300"), _C301),
    (UpsAction.TO_COMPLETED, _S.NONE): _always(_err("C307")),
    (UpsAction.TO_COMPLETED, _S.SCHEDULED): Transition(_err("C310"), _C301),
    (UpsAction.TO_COMPLETED, _S.IN_PROGRESS): Transition(_ok(_S.COMPLETED), _C301),
    (UpsAction.TO_COMPLETED, _S.COMPLETED): Transition(_warn("B306"), _C301),
    (UpsAction.TO_COMPLETED, _S.CANCELED): Transition(_err("C300"), _C301),
    (UpsAction.TO_CANCELED, _S.NONE): _always(_err("C307")),
    (UpsAction.TO_CANCELED, _S.SCHEDULED): Transition(_err("C310"), _C301),
    (UpsAction.TO_CANCELED, _S.IN_PROGRESS): Transition(_ok(_S.CANCELED), _C301),
    (UpsAction.TO_CANCELED, _S.COMPLETED): Transition(_err("C300"), _C301),
    (UpsAction.TO_CANCELED, _S.CANCELED): Transition(_warn("B304"), _C301),
    (UpsAction.REQUEST_CANCEL, _S.NONE): _always(_err("C307")),
    (UpsAction.REQUEST_CANCEL, _S.SCHEDULED): _always(_ok(_S.CANCELED)),
    (UpsAction.REQUEST_CANCEL, _S.IN_PROGRESS): _always(_err("C312")),
    (UpsAction.REQUEST_CANCEL, _S.COMPLETED): _always(_err("C311")),
    (UpsAction.REQUEST_CANCEL, _S.CANCELED): _always(_warn("B304")),
}

_ACTION_FOR_TARGET = {
    ProcedureStepState.IN_PROGRESS: UpsAction.TO_IN_PROGRESS,
    ProcedureStepState.COMPLETED: UpsAction.TO_COMPLETED,
    ProcedureStepState.CANCELED: UpsAction.TO_CANCELED,
    ProcedureStepState.SCHEDULED: UpsAction.TO_SCHEDULED,
}


def action_for_target(target: ProcedureStepState) -> UpsAction:
    """The N-ACTION that asks for ``target`` (Change UPS State)."""
    return _ACTION_FOR_TARGET[target]


def transaction_matches(stored: str | None, requested: str | None, target: ProcedureStepState) -> bool:
    """Azure's "matching Transaction UID": equal (ordinal), or nothing stored yet and the target is IN PROGRESS."""
    if stored == requested:
        return True
    return (stored is None or not stored.strip()) and target is ProcedureStepState.IN_PROGRESS


def transition(action: UpsAction, state: ProcedureStepState, *, matching: bool = True) -> Outcome:
    """Look up one cell of :data:`TRANSITIONS`."""
    cell = TRANSITIONS[(action, state)]
    return cell.matching if matching else cell.mismatched


# ---------------------------------------------------------------------------------------------------------------
# Attribute requirements (PS3.4 §5.4.2.1 usage codes, Table CC.2.5-3, Azure's encoding)
# ---------------------------------------------------------------------------------------------------------------


class Usage(enum.StrEnum):
    """SCU/SCP usage of an attribute in a request (PS3.4 §5.4.2.1), plus Azure's two special codes."""

    R1_1 = "1/1"  # required, not empty
    R2_1 = "2/1"  # required, may be empty
    R2_2 = "2/2"  # required, may be empty
    R3_1 = "3/1"  # optional, not empty if present
    R3_2 = "3/2"  # optional, not empty if present
    R3_3 = "3/3"  # optional, not empty if present
    R1C_1 = "1C/1"  # condition not evaluated by Azure: optional, not empty if present
    R1C_1C = "1C/1C"  # idem
    R1C_2 = "1C/2"  # idem
    R2C_2C = "2C/2C"  # condition not evaluated: no check at all
    MUST_BE_EMPTY = "empty"  # may be present, must have no value
    NOT_ALLOWED = "-"  # must not be present


# Azure's MandatoryRequirementCodes and NonZeroLengthRequirementCodes.
_MANDATORY = frozenset({Usage.R1_1, Usage.R2_1, Usage.R2_2})
_NON_ZERO = frozenset({Usage.R1_1, Usage.R3_1, Usage.R3_2, Usage.R3_3, Usage.R1C_1, Usage.R1C_1C, Usage.R1C_2})
# Azure's StringVRs: "must not be empty" also rejects a value that is only white space, for these dictionary VRs.
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})


@dataclass(frozen=True, slots=True)
class Requirement:
    """One row of a requirement table; ``items`` are the rules for the items of a sequence."""

    tag: int
    usage: Usage
    items: tuple[Requirement, ...] | None = None


def _r(keyword: str, usage: Usage, items: Iterable[Requirement] | None = None) -> Requirement:
    return Requirement(keyword_tag(keyword), usage, None if items is None else tuple(items))


def _u(create: Usage, update: Usage, *, for_create: bool) -> Usage:
    """Pick the create or the update column of Table CC.2.5-3."""
    return create if for_create else update


_11, _21, _22 = Usage.R1_1, Usage.R2_1, Usage.R2_2
_31, _32, _33 = Usage.R3_1, Usage.R3_2, Usage.R3_3
_1C1, _1C1C, _1C2, _2C2C = Usage.R1C_1, Usage.R1C_1C, Usage.R1C_2, Usage.R2C_2C
_EMPTY, _NO = Usage.MUST_BE_EMPTY, Usage.NOT_ALLOWED

# --- Macros (PS3.3 Table 8.8-1 Code Sequence, 10-1 Person Identification, 10-17 HL7v2 Hierarchic Designator,
# --- C.12-6 Digital Signatures; PS3.4 Tables CC.2.5-2a..2e, the UPS variants) --------------------------------

_BASIC_CODE = (
    _r("CodeValue", _33),
    _r("CodingSchemeDesignator", _33),
    _r("CodingSchemeVersion", _33),
    _r("CodeMeaning", _33),
    _r("LongCodeValue", _33),
    _r("URNCodeValue", _33),
)
_ENHANCED_CODE = (
    _r("ContextIdentifier", _33),
    _r("ContextUID", _33),
    _r("MappingResource", _33),
    _r("MappingResourceUID", _33),
    _r("MappingResourceName", _33),
    _r("ContextGroupVersion", _33),
    _r("ContextGroupExtensionFlag", _33),
    _r("ContextGroupLocalVersion", _33),
    _r("ContextGroupExtensionCreatorUID", _33),
)
CODE_SEQUENCE_MACRO = (
    *_BASIC_CODE,
    _r("EquivalentCodeSequence", _33, (*_BASIC_CODE, *_ENHANCED_CODE)),
    *_ENHANCED_CODE,
)
# PS3.4 Table CC.2.5-2a: in UPS requests the Code Meaning is required in every code item.
UPS_CODE_SEQUENCE_MACRO = (
    _r("CodeValue", _1C1C),
    _r("CodingSchemeDesignator", _1C1C),
    _r("CodingSchemeVersion", _1C1C),
    _r("CodeMeaning", _11),
    _r("LongCodeValue", _1C1C),
    _r("URNCodeValue", _1C1C),
    _r("MappingResource", _33),
    _r("MappingResourceUID", _33),
    _r("ContextGroupVersion", _33),
    _r("ContextGroupExtensionFlag", _33),
    _r("ContextGroupLocalVersion", _33),
    _r("ContextGroupExtensionCreatorUID", _33),
)
# PS3.4 Table CC.2.5-2b: UPS Content Item Macro.
UPS_CONTENT_ITEM_MACRO = (
    _r("ValueType", _11),
    _r("ConceptNameCodeSequence", _11, UPS_CODE_SEQUENCE_MACRO),
    _r("DateTime", _1C1C),
    _r("Date", _1C1C),
    _r("Time", _1C1C),
    _r("PersonName", _1C1C),
    _r("UID", _1C1C),
    _r("TextValue", _1C1C),
    _r("ConceptCodeSequence", _1C1C, UPS_CODE_SEQUENCE_MACRO),
    _r("NumericValue", _1C1C),
    _r("MeasurementUnitsCodeSequence", _1C1C, UPS_CODE_SEQUENCE_MACRO),
)
# PS3.4 Table CC.2.5-2c: Referenced Instances and Access Macro.
REFERENCED_INSTANCES_AND_ACCESS_MACRO = (
    _r("TypeOfInstances", _11),
    _r("StudyInstanceUID", _1C1),
    _r("SeriesInstanceUID", _1C1),
    _r(
        "ReferencedSOPSequence",
        _11,
        (
            _r("ReferencedSOPClassUID", _11),
            _r("ReferencedSOPInstanceUID", _11),
            _r("HL7InstanceIdentifier", _1C1),
            _r("ReferencedFrameNumber", _1C1),
            _r("ReferencedSegmentNumber", _1C1),
        ),
    ),
    _r("DICOMRetrievalSequence", _1C1, (_r("RetrieveAETitle", _11),)),
    _r("DICOMMediaRetrievalSequence", _1C1, (_r("StorageMediaFileSetID", _22), _r("StorageMediaFileSetUID", _11))),
    _r("WADORetrievalSequence", _1C1, (_r("RetrieveURI", _11),)),
    _r("XDSRetrievalSequence", _1C1, (_r("RepositoryUniqueID", _11), _r("HomeCommunityID", _32))),
    _r("WADORSRetrievalSequence", _1C1, (_r("RetrieveURL", _11),)),
)
# PS3.4 Table CC.2.5-2d (create) and PS3.3 Table 10-17 (elsewhere): HL7v2 Hierarchic Designator Macro.
HL7V2_DESIGNATOR_FOR_CREATE = (
    _r("LocalNamespaceEntityID", _1C1),
    _r("UniversalEntityID", _1C1),
    _r("UniversalEntityIDType", _1C1),
)
HL7V2_DESIGNATOR_MACRO = (
    _r("LocalNamespaceEntityID", _33),
    _r("UniversalEntityID", _33),
    _r("UniversalEntityIDType", _33),
)
PERSON_IDENTIFICATION_MACRO = (
    _r("PersonIdentificationCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("PersonAddress", _33),
    _r("PersonTelephoneNumbers", _33),
    _r("PersonTelecomInformation", _33),
    _r("InstitutionName", _33),
    _r("InstitutionAddress", _33),
    _r("InstitutionCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("InstitutionalDepartmentName", _33),
    _r("InstitutionalDepartmentTypeCodeSequence", _33, CODE_SEQUENCE_MACRO),
)
_REFERENCED_PROTOCOL = (
    _r("ReferencedSOPClassUID", _33),
    _r("ReferencedSOPInstanceUID", _33),
    _r("SourceAcquisitionProtocolElementNumber", _33),
    _r("SourceReconstructionProtocolElementNumber", _33),
)


def _issuer_of_patient_id_macro(*, for_create: bool) -> tuple[Requirement, ...]:
    """PS3.4 Table CC.2.5-2e: Issuer of Patient ID Macro."""
    return (
        _r("IssuerOfPatientID", _u(_22, _NO, for_create=for_create)),
        _r(
            "IssuerOfPatientIDQualifiersSequence",
            _u(_22, _NO, for_create=for_create),
            (
                _r("UniversalEntityID", _22),
                _r("UniversalEntityIDType", _1C1),
                _r("IdentifierTypeCode", _22),
                _r("AssigningFacilitySequence", _22, HL7V2_DESIGNATOR_FOR_CREATE),
                _r("AssigningJurisdictionCodeSequence", _22, UPS_CODE_SEQUENCE_MACRO),
                _r("AssigningAgencyOrDepartmentCodeSequence", _22, UPS_CODE_SEQUENCE_MACRO),
            ),
        ),
    )


# --- Modules of the UPS IOD (PS3.4 Table CC.2.5-3) ---------------------------------------------------------------


def _sop_common_module(*, for_create: bool) -> tuple[Requirement, ...]:
    """PS3.3 C.12.1 SOP Common Module (only SOP Class/Instance UID differ between create and update)."""
    return (
        _r("SpecificCharacterSet", _1C1C),
        _r("SOPClassUID", _u(_11, _NO, for_create=for_create)),
        _r("SOPInstanceUID", _u(_11, _NO, for_create=for_create)),
        _r("InstanceCreationDate", _33),
        _r("InstanceCreationTime", _33),
        _r("InstanceCoercionDateTime", _33),
        _r("InstanceCreatorUID", _33),
        _r("RelatedGeneralSOPClassUID", _33),
        _r("OriginalSpecializedSOPClassUID", _33),
        _r(
            "CodingSchemeIdentificationSequence",
            _33,
            (
                _r("CodingSchemeDesignator", _33),
                _r("CodingSchemeRegistry", _33),
                _r("CodingSchemeUID", _33),
                _r("CodingSchemeExternalID", _33),
                _r("CodingSchemeName", _33),
                _r("CodingSchemeVersion", _33),
                _r("CodingSchemeResponsibleOrganization", _33),
                _r("CodingSchemeResourcesSequence", _33, (_r("CodingSchemeURLType", _33), _r("CodingSchemeURL", _33))),
            ),
        ),
        _r(
            "ContextGroupIdentificationSequence",
            _33,
            (
                _r("ContextIdentifier", _33),
                _r("ContextUID", _33),
                _r("MappingResource", _33),
                _r("ContextGroupVersion", _33),
            ),
        ),
        _r(
            "MappingResourceIdentificationSequence",
            _33,
            (_r("MappingResource", _33), _r("MappingResourceUID", _33), _r("MappingResourceName", _33)),
        ),
        _r("TimezoneOffsetFromUTC", _33),
        _r(
            "ContributingEquipmentSequence",
            _33,
            (
                _r("PurposeOfReferenceCodeSequence", _33, CODE_SEQUENCE_MACRO),
                _r("Manufacturer", _33),
                _r("InstitutionName", _33),
                _r("InstitutionAddress", _33),
                _r("StationName", _33),
                _r("InstitutionalDepartmentName", _33),
                _r("InstitutionalDepartmentTypeCodeSequence", _33, CODE_SEQUENCE_MACRO),
                _r("OperatorsName", _33),
                _r("OperatorIdentificationSequence", _33, PERSON_IDENTIFICATION_MACRO),
                _r("ManufacturerModelName", _33),
                _r("DeviceSerialNumber", _33),
                _r("SoftwareVersions", _33),
                _r("DeviceUID", _33),
                _r("UDISequence", _33, (_r("UniqueDeviceIdentifier", _33), _r("DeviceDescription", _33))),
                _r("SpatialResolution", _33),
                _r("DateOfLastCalibration", _33),
                _r("TimeOfLastCalibration", _33),
                _r("ContributionDateTime", _33),
                _r("ContributionDescription", _33),
            ),
        ),
        _r("InstanceNumber", _33),
        _r("SOPInstanceStatus", _33),
        _r("SOPAuthorizationDateTime", _33),
        _r("SOPAuthorizationComment", _33),
        _r("AuthorizationEquipmentCertificationNumber", _33),
        # PS3.3 C.12.1.1.3 Digital Signatures Macro
        _r(
            "MACParametersSequence",
            _33,
            (
                _r("MACIDNumber", _33),
                _r("MACCalculationTransferSyntaxUID", _33),
                _r("MACAlgorithm", _33),
                _r("DataElementsSigned", _33),
            ),
        ),
        _r(
            "DigitalSignaturesSequence",
            _33,
            (
                _r("MACIDNumber", _33),
                _r("DigitalSignatureUID", _33),
                _r("DigitalSignatureDateTime", _33),
                _r("CertificateType", _33),
                _r("CertificateOfSigner", _33),
                _r("Signature", _33),
                _r("CertifiedTimestampType", _33),
                _r("CertifiedTimestamp", _33),
                _r("DigitalSignaturePurposeCodeSequence", _33, CODE_SEQUENCE_MACRO),
            ),
        ),
        _r(
            "EncryptedAttributesSequence",
            _33,
            (_r("EncryptedContentTransferSyntaxUID", _33), _r("EncryptedContent", _33)),
        ),
        # PS3.3 Table C.12-1 Original Attributes Macro
        _r(
            "OriginalAttributesSequence",
            _33,
            (
                _r("SourceOfPreviousValues", _33),
                _r("AttributeModificationDateTime", _33),
                _r("ModifyingSystem", _33),
                _r("ReasonForTheAttributeModification", _33),
                _r("ModifiedAttributesSequence", _33),
                _r(
                    "NonconformingModifiedAttributesSequence",
                    _33,
                    (
                        _r("SelectorAttribute", _33),
                        _r("SelectorValueNumber", _33),
                        _r("SelectorSequencePointer", _33),
                        _r("SelectorSequencePointerPrivateCreator", _33),
                        _r("SelectorSequencePointerItems", _33),
                        _r("SelectorAttributePrivateCreator", _33),
                        _r("NonconformingDataElementValue", _33),
                    ),
                ),
            ),
        ),
        _r(
            "HL7StructuredDocumentReferenceSequence",
            _33,
            (
                _r("ReferencedSOPClassUID", _33),
                _r("ReferencedSOPInstanceUID", _33),
                _r("HL7InstanceIdentifier", _33),
                _r("RetrieveURI", _33),
            ),
        ),
        _r("LongitudinalTemporalInformationModified", _33),
        _r("QueryRetrieveView", _33),
        _r(
            "ConversionSourceAttributesSequence",
            _33,
            (
                _r("ReferencedSOPClassUID", _33),
                _r("ReferencedSOPInstanceUID", _33),
                _r("ReferencedFrameNumber", _33),
                _r("ReferencedSegmentNumber", _33),
            ),
        ),
        _r("ContentQualification", _33),
        _r(
            "PrivateDataElementCharacteristicsSequence",
            _33,
            (
                _r("PrivateGroupReference", _33),
                _r("PrivateCreatorReference", _33),
                _r(
                    "PrivateDataElementDefinitionSequence",
                    _33,
                    (
                        _r("PrivateDataElement", _33),
                        _r("PrivateDataElementValueMultiplicity", _33),
                        _r("PrivateDataElementValueRepresentation", _33),
                        _r("PrivateDataElementNumberOfItems", _33),
                        _r("PrivateDataElementKeyword", _33),
                        _r("PrivateDataElementName", _33),
                        _r("PrivateDataElementDescription", _33),
                        _r("PrivateDataElementEncoding", _33),
                        _r("RetrieveURI", _33),
                    ),
                ),
                _r("BlockIdentifyingInformationStatus", _33),
                _r("NonidentifyingPrivateElements", _33),
                _r(
                    "DeidentificationActionSequence",
                    _33,
                    (_r("IdentifyingPrivateElements", _33), _r("DeidentificationAction", _33)),
                ),
            ),
        ),
        _r("InstanceOriginStatus", _33),
        _r("BarcodeValue", _33),
        # PS3.3 Table 10-33 General Procedure Protocol Reference Macro
        _r("ReferencedDefinedProtocolSequence", _33, _REFERENCED_PROTOCOL),
        _r("ReferencedPerformedProtocolSequence", _33, _REFERENCED_PROTOCOL),
    )


def _scheduled_procedure_information_module(*, for_create: bool) -> tuple[Requirement, ...]:
    """PS3.4 Table CC.2.5-3: Unified Procedure Step Scheduled Procedure Information Module."""
    c = for_create
    return (
        _r("ScheduledProcedureStepPriority", _u(_11, _31, for_create=c)),
        _r("ScheduledProcedureStepModificationDateTime", _11),
        _r("ProcedureStepLabel", _u(_11, _31, for_create=c)),
        _r("WorklistLabel", _u(_21, _31, for_create=c)),
        _r("ScheduledProcessingParametersSequence", _u(_22, _32, for_create=c), UPS_CONTENT_ITEM_MACRO),
        _r("ScheduledStationNameCodeSequence", _u(_22, _32, for_create=c), UPS_CODE_SEQUENCE_MACRO),
        _r("ScheduledStationClassCodeSequence", _u(_22, _32, for_create=c), UPS_CODE_SEQUENCE_MACRO),
        _r("ScheduledStationGeographicLocationCodeSequence", _u(_22, _32, for_create=c), UPS_CODE_SEQUENCE_MACRO),
        _r(
            "ScheduledHumanPerformersSequence",
            _u(_2C2C, _32, for_create=c),
            (
                _r("HumanPerformerCodeSequence", _11, UPS_CODE_SEQUENCE_MACRO),
                _r("HumanPerformerName", _11),
                _r("HumanPerformerOrganization", _11),
            ),
        ),
        _r("ScheduledProcedureStepStartDateTime", _u(_11, _31, for_create=c)),
        _r("ExpectedCompletionDateTime", _31),
        _r("ScheduledProcedureStepExpirationDateTime", _33),
        _r("ScheduledWorkitemCodeSequence", _u(_22, _31, for_create=c), UPS_CODE_SEQUENCE_MACRO),
        _r("CommentsOnTheScheduledProcedureStep", _u(_22, _31, for_create=c)),
        _r("InputReadinessState", _u(_11, _31, for_create=c)),
        _r("InputInformationSequence", _u(_22, _32, for_create=c), REFERENCED_INSTANCES_AND_ACCESS_MACRO),
        _r("StudyInstanceUID", _u(_1C2, _32, for_create=c)),
        _r(
            "OutputDestinationSequence",
            _33,
            (
                _r("ReferencedSOPClassUID", _1C1),
                _r("DICOMStorageSequence", _1C1, (_r("DestinationAE", _11),)),
                _r("STOWRSStorageSequence", _1C1, (_r("StorageURL", _11),)),
                _r("XDSStorageSequence", _1C1, (_r("RepositoryUniqueID", _11), _r("HomeCommunityID", _32))),
            ),
        ),
    )


def _relationship_module(*, for_create: bool) -> tuple[Requirement, ...]:
    """PS3.4 Table CC.2.5-3: Unified Procedure Step Relationship Module (patient and request attributes)."""
    c = for_create
    return (
        _r("PatientName", _u(_22, _NO, for_create=c)),
        _r("PatientID", _u(_1C2, _NO, for_create=c)),
        *_issuer_of_patient_id_macro(for_create=c),
        _r(
            "OtherPatientIDsSequence",
            _u(_22, _33, for_create=c),
            (_r("PatientID", _11), *_issuer_of_patient_id_macro(for_create=c), _r("TypeOfPatientID", _33)),
        ),
        _r("PatientBirthDate", _u(_22, _NO, for_create=c)),
        _r("PatientSex", _u(_22, _NO, for_create=c)),
        _r("ReferencedPatientPhotoSequence", _33, REFERENCED_INSTANCES_AND_ACCESS_MACRO),
        _r("AdmissionID", _u(_22, _NO, for_create=c)),
        _r("IssuerOfAdmissionIDSequence", _u(_22, _NO, for_create=c), HL7V2_DESIGNATOR_FOR_CREATE),
        _r("AdmittingDiagnosesDescription", _u(_22, _NO, for_create=c)),
        _r("AdmittingDiagnosesCodeSequence", _u(_22, _NO, for_create=c), UPS_CODE_SEQUENCE_MACRO),
        _r(
            "ReferencedRequestSequence",
            _u(_22, _NO, for_create=c),
            (
                _r("StudyInstanceUID", _11),
                _r("AccessionNumber", _22),
                _r("IssuerOfAccessionNumberSequence", _22, HL7V2_DESIGNATOR_FOR_CREATE),
                _r("PlacerOrderNumberImagingServiceRequest", _31),
                _r("OrderPlacerIdentifierSequence", _22, HL7V2_DESIGNATOR_FOR_CREATE),
                _r("FillerOrderNumberImagingServiceRequest", _31),
                _r("OrderFillerIdentifierSequence", _22, HL7V2_DESIGNATOR_FOR_CREATE),
                _r("RequestedProcedureID", _22),
                _r("RequestedProcedureDescription", _22),
                _r("RequestedProcedureCodeSequence", _22, UPS_CODE_SEQUENCE_MACRO),
                _r("ReasonForTheRequestedProcedure", _33),
                _r("ReasonForRequestedProcedureCodeSequence", _33, UPS_CODE_SEQUENCE_MACRO),
                _r("RequestedProcedureComments", _33),
                _r("ConfidentialityCode", _33),
                _r("NamesOfIntendedRecipientsOfResults", _33),
                _r("ImagingServiceRequestComments", _33),
                _r("RequestingPhysician", _33),
                _r("RequestingService", _31),
                _r("RequestingServiceCodeSequence", _33, UPS_CODE_SEQUENCE_MACRO),
                _r("IssueDateOfImagingServiceRequest", _33),
                _r("IssueTimeOfImagingServiceRequest", _33),
                _r("ReferringPhysicianName", _33),
            ),
        ),
        _r(
            "ReplacedProcedureStepSequence",
            _u(_1C1C, _NO, for_create=c),
            (_r("ReferencedSOPClassUID", _11), _r("ReferencedSOPInstanceUID", _11)),
        ),
        _r("TypeOfPatientID", _33),
        _r("PatientBirthDateInAlternativeCalendar", _33),
        _r("PatientDeathDateInAlternativeCalendar", _33),
        _r("PatientAlternativeCalendar", _33),
        _r("ReasonForVisit", _33),
        _r("ReasonForVisitCodeSequence", _33, CODE_SEQUENCE_MACRO),
    )


_PATIENT_PRIMARY_LANGUAGE = (
    *CODE_SEQUENCE_MACRO,
    _r("PatientPrimaryLanguageModifierCodeSequence", _33, CODE_SEQUENCE_MACRO),
)

# PS3.3 C.2.3 Patient Demographic Module (all Type 3 in a UPS).
PATIENT_DEMOGRAPHIC_MODULE = (
    _r("PatientAge", _33),
    _r("Occupation", _33),
    _r("ConfidentialityConstraintOnPatientDataDescription", _33),
    _r("PatientBirthDate", _33),
    _r("PatientBirthTime", _33),
    _r("PatientSex", _33),
    _r("QualityControlSubject", _33),
    _r("PatientInsurancePlanCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("PatientPrimaryLanguageCodeSequence", _33, _PATIENT_PRIMARY_LANGUAGE),
    _r("PatientSize", _33),
    _r("PatientWeight", _33),
    _r("PatientSizeCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("PatientAddress", _33),
    _r("MilitaryRank", _33),
    _r("BranchOfService", _33),
    _r("CountryOfResidence", _33),
    _r("RegionOfResidence", _33),
    _r("PatientTelephoneNumbers", _33),
    _r("PatientTelecomInformation", _33),
    _r("EthnicGroup", _33),
    _r("PatientReligiousPreference", _33),
    _r("PatientComments", _33),
    _r("ResponsiblePerson", _33),
    _r("ResponsiblePersonRole", _33),
    _r("ResponsibleOrganization", _33),
    _r("PatientSpeciesDescription", _33),
    _r("PatientSpeciesCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("PatientBreedDescription", _33),
    _r("PatientBreedCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r(
        "BreedRegistrationSequence",
        _33,
        (_r("BreedRegistrationNumber", _33), _r("BreedRegistryCodeSequence", _33, CODE_SEQUENCE_MACRO)),
    ),
    _r("StrainDescription", _33),
    _r("StrainNomenclature", _33),
    _r("StrainCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("StrainAdditionalInformation", _33),
    _r(
        "StrainStockSequence",
        _33,
        (
            _r("StrainStockNumber", _33),
            _r("StrainSource", _33),
            _r("StrainSourceRegistryCodeSequence", _33, CODE_SEQUENCE_MACRO),
        ),
    ),
    _r(
        "GeneticModificationsSequence",
        _33,
        (
            _r("GeneticModificationsDescription", _33),
            _r("GeneticModificationsNomenclature", _33),
            _r("GeneticModificationsCodeSequence", _33, CODE_SEQUENCE_MACRO),
        ),
    ),
)

# PS3.3 C.2.4 Patient Medical Module.
PATIENT_MEDICAL_MODULE = (
    _r("MedicalAlerts", _32),
    _r("PregnancyStatus", _32),
    _r("SpecialNeeds", _32),
    _r("Allergies", _33),
    _r("SmokingStatus", _33),
    _r("AdditionalPatientHistory", _33),
    _r("LastMenstrualDate", _33),
    _r("PatientSexNeutered", _33),
    _r("PatientBodyMassIndex", _33),
    _r("MeasuredAPDimension", _33),
    _r("MeasuredLateralDimension", _33),
    _r("PatientState", _33),
    _r(
        "PertinentDocumentsSequence",
        _33,
        (
            _r("ReferencedSOPClassUID", _33),
            _r("ReferencedSOPInstanceUID", _33),
            _r("PurposeOfReferenceCodeSequence", _33, CODE_SEQUENCE_MACRO),
            _r("DocumentTitle", _33),
        ),
    ),
    _r("PertinentResourcesSequence", _33, (_r("RetrieveURI", _33), _r("ResourceDescription", _33))),
    _r(
        "PatientClinicalTrialParticipationSequence",
        _33,
        (
            _r("ClinicalTrialSponsorName", _33),
            _r("ClinicalTrialProtocolID", _33),
            _r("ClinicalTrialProtocolName", _33),
            _r("ClinicalTrialSiteID", _33),
            _r("ClinicalTrialSiteName", _33),
            _r("ClinicalTrialSubjectID", _33),
            _r("ClinicalTrialSubjectReadingID", _33),
        ),
    ),
)

# PS3.3 C.3.2 Visit Identification Module.
VISIT_IDENTIFICATION_MODULE = (
    _r("InstitutionName", _33),
    _r("InstitutionAddress", _33),
    _r("InstitutionCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("InstitutionalDepartmentName", _33),
    _r("InstitutionalDepartmentTypeCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("AdmissionID", _33),
    _r("IssuerOfAdmissionIDSequence", _33, HL7V2_DESIGNATOR_MACRO),
    _r("ReasonForVisit", _33),
    _r("ReasonForVisitCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("ServiceEpisodeID", _33),
    _r("IssuerOfServiceEpisodeIDSequence", _33, HL7V2_DESIGNATOR_MACRO),
    _r("ServiceEpisodeDescription", _33),
)

# PS3.3 C.3.3 Visit Status Module.
VISIT_STATUS_MODULE = (
    _r("VisitStatusID", _33),
    _r("CurrentPatientLocation", _33),
    _r("PatientInstitutionResidence", _33),
    _r("VisitComments", _33),
)

# PS3.3 C.3.4 Visit Admission Module.
VISIT_ADMISSION_MODULE = (
    _r("ReferringPhysicianName", _33),
    _r("ReferringPhysicianAddress", _33),
    _r("ReferringPhysicianTelephoneNumbers", _33),
    _r("ReferringPhysicianIdentificationSequence", _33, PERSON_IDENTIFICATION_MACRO),
    _r("ConsultingPhysicianName", _33),
    _r("ConsultingPhysicianIdentificationSequence", _33, PERSON_IDENTIFICATION_MACRO),
    _r("AdmittingDiagnosesDescription", _33),
    _r("AdmittingDiagnosesCodeSequence", _33, CODE_SEQUENCE_MACRO),
    _r("RouteOfAdmissions", _33),
    _r("AdmittingDate", _33),
    _r("AdmittingTime", _33),
)


def _progress_information_module(*, for_create: bool) -> tuple[Requirement, ...]:
    """PS3.4 Table CC.2.5-3: Unified Procedure Step Progress Information Module."""
    c = for_create
    return (
        _r("ProcedureStepState", _u(_11, _NO, for_create=c)),
        _r(
            "ProcedureStepProgressInformationSequence",
            _u(_22, _32, for_create=c),
            (
                _r("ProcedureStepProgress", _u(_NO, _31, for_create=c)),
                _r("ProcedureStepProgressDescription", _u(_NO, _31, for_create=c)),
                _r(
                    "ProcedureStepProgressParametersSequence",
                    _u(_NO, _33, for_create=c),
                    (
                        *UPS_CONTENT_ITEM_MACRO,
                        _r("ContentItemModifierSequence", _u(_NO, _33, for_create=c), UPS_CONTENT_ITEM_MACRO),
                    ),
                ),
                _r(
                    "ProcedureStepCommunicationsURISequence",
                    _u(_NO, _31, for_create=c),
                    (
                        _r("ContactURI", _u(_NO, _11, for_create=c)),
                        _r("ContactDisplayName", _u(_NO, _31, for_create=c)),
                    ),
                ),
                _r("ProcedureStepCancellationDateTime", _u(_NO, _31, for_create=c)),
                _r("ReasonForCancellation", _u(_NO, _31, for_create=c)),
                _r(
                    "ProcedureStepDiscontinuationReasonCodeSequence",
                    _u(_NO, _31, for_create=c),
                    UPS_CODE_SEQUENCE_MACRO,
                ),
            ),
        ),
    )


def _performed_procedure_information_module(*, for_create: bool) -> tuple[Requirement, ...]:
    """PS3.4 Table CC.2.5-3: Unified Procedure Step Performed Procedure Information Module."""
    c = for_create
    return (
        _r(
            "UnifiedProcedureStepPerformedProcedureSequence",
            _u(_22, _32, for_create=c),
            (
                _r(
                    "ActualHumanPerformersSequence",
                    _u(_NO, _31, for_create=c),
                    (
                        _r("HumanPerformerCodeSequence", _u(_NO, _31, for_create=c), UPS_CODE_SEQUENCE_MACRO),
                        _r("HumanPerformerName", _u(_NO, _31, for_create=c)),
                        _r("HumanPerformerOrganization", _u(_NO, _31, for_create=c)),
                    ),
                ),
                _r("PerformedStationNameCodeSequence", _u(_NO, _32, for_create=c), UPS_CODE_SEQUENCE_MACRO),
                _r("PerformedStationClassCodeSequence", _u(_NO, _32, for_create=c), UPS_CODE_SEQUENCE_MACRO),
                _r(
                    "PerformedStationGeographicLocationCodeSequence",
                    _u(_NO, _32, for_create=c),
                    UPS_CODE_SEQUENCE_MACRO,
                ),
                _r("PerformedProcedureStepStartDateTime", _u(_NO, _31, for_create=c)),
                _r("PerformedProcedureStepDescription", _u(_NO, _31, for_create=c)),
                _r("CommentsOnThePerformedProcedureStep", _u(_NO, _31, for_create=c)),
                _r("PerformedWorkitemCodeSequence", _u(_NO, _31, for_create=c), UPS_CODE_SEQUENCE_MACRO),
                _r("PerformedProcessingParametersSequence", _u(_NO, _31, for_create=c), UPS_CONTENT_ITEM_MACRO),
                _r("PerformedProcedureStepEndDateTime", _u(_NO, _31, for_create=c)),
                _r("OutputInformationSequence", _u(_NO, _22, for_create=c), REFERENCED_INSTANCES_AND_ACCESS_MACRO),
            ),
        ),
    )


def _iod(*, for_create: bool) -> tuple[Requirement, ...]:
    return (
        *_sop_common_module(for_create=for_create),
        *_scheduled_procedure_information_module(for_create=for_create),
        *_relationship_module(for_create=for_create),
        *PATIENT_DEMOGRAPHIC_MODULE,
        *PATIENT_MEDICAL_MODULE,
        *VISIT_IDENTIFICATION_MODULE,
        *VISIT_STATUS_MODULE,
        *VISIT_ADMISSION_MODULE,
        *_progress_information_module(for_create=for_create),
        *_performed_procedure_information_module(for_create=for_create),
    )


# Create (N-CREATE, Table CC.2.5-3 column "N-CREATE"): the Transaction UID must be present and empty (its value
# is only ever assigned by a claim), then the IOD.
CREATE_REQUIREMENTS: tuple[Requirement, ...] = (
    _r("TransactionUID", _22),
    _r("TransactionUID", _EMPTY),
    *_iod(for_create=True),
)
# Update (N-SET, Table CC.2.5-3 column "N-SET").
UPDATE_REQUIREMENTS: tuple[Requirement, ...] = _iod(for_create=False)


class FinalUsage(enum.StrEnum):
    """Final State Codes of PS3.4 Table CC.2.5-3 (CC.2.5.1.1): what a value is needed for."""

    O = "O"  # noqa: E741 - the standard's code; optional
    R = "R"  # needed before COMPLETED or CANCELED
    RC = "RC"  # needed if a condition holds (Azure never evaluates it: never needed)
    P = "P"  # needed before COMPLETED
    X = "X"  # needed before CANCELED


@dataclass(frozen=True, slots=True)
class FinalRequirement:
    tag: int
    usage: FinalUsage
    items: tuple[FinalRequirement, ...] | None = None


def _f(keyword: str, usage: FinalUsage, items: Iterable[FinalRequirement] | None = None) -> FinalRequirement:
    return FinalRequirement(keyword_tag(keyword), usage, None if items is None else tuple(items))


# Azure's subset of the final-state codes (WorkitemFinalStateValidatorExtension); Specific Character Set is
# deliberately optional there.
FINAL_STATE_REQUIREMENTS: tuple[FinalRequirement, ...] = (
    _f("TransactionUID", FinalUsage.O),
    _f("SpecificCharacterSet", FinalUsage.O),
    _f("SOPClassUID", FinalUsage.R),
    _f("SOPInstanceUID", FinalUsage.R),
    _f("ScheduledProcedureStepPriority", FinalUsage.R),
    _f("ScheduledProcedureStepModificationDateTime", FinalUsage.R),
    _f("ScheduledProcedureStepStartDateTime", FinalUsage.R),
    _f("InputReadinessState", FinalUsage.R),
    _f("ProcedureStepState", FinalUsage.R),
    _f(
        "ProcedureStepProgressInformationSequence",
        FinalUsage.X,
        (
            _f("ProcedureStepCancellationDateTime", FinalUsage.X),
            _f("ProcedureStepDiscontinuationReasonCodeSequence", FinalUsage.X),
        ),
    ),
    _f(
        "UnifiedProcedureStepPerformedProcedureSequence",
        FinalUsage.P,
        (
            _f(
                "ActualHumanPerformersSequence",
                FinalUsage.RC,
                (_f("HumanPerformerCodeSequence", FinalUsage.RC), _f("HumanPerformerName", FinalUsage.RC)),
            ),
            _f("PerformedStationNameCodeSequence", FinalUsage.P),
            _f("PerformedProcedureStepStartDateTime", FinalUsage.P),
            _f("PerformedWorkitemCodeSequence", FinalUsage.P),
            _f("PerformedProcedureStepEndDateTime", FinalUsage.P),
            _f("OutputInformationSequence", FinalUsage.P),
        ),
    ),
)

# --- Checks -------------------------------------------------------------------------------------------------------


def _value_count(ds: Dataset, tag: int) -> int:
    """fo-dicom ``GetValueCount``: number of values, items for a sequence (0 when absent)."""
    view = element_view(ds, tag)
    return 0 if view is None else len(view.values)


def _blank_string(ds: Dataset, tag: int) -> bool:
    """A string attribute (by dictionary VR) whose whole value is white space (``string.IsNullOrWhiteSpace``)."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return False
    if vr not in _STRING_VRS:
        return False
    view = element_view(ds, tag)
    return view is not None and view.text is not None and not view.text.strip()


def _required(ds: Dataset, tag: int, *, mandatory: bool = True, non_zero: bool = True) -> str | None:
    if mandatory and tag not in ds:
        return MSG_MISSING_REQUIRED_TAG.format(tag_text(tag))
    if non_zero and tag in ds:
        if _value_count(ds, tag) < 1:
            return MSG_MISSING_REQUIRED_VALUE.format(tag_text(tag))
        if _blank_string(ds, tag):
            return MSG_ATTRIBUTE_MUST_NOT_BE_EMPTY.format(tag_text(tag))
    return None


def _check_usage(ds: Dataset, tag: int, usage: Usage) -> str | None:
    if usage is Usage.MUST_BE_EMPTY:
        return MSG_ATTRIBUTE_MUST_BE_EMPTY.format(tag_text(tag)) if _value_count(ds, tag) > 0 else None
    if usage is Usage.NOT_ALLOWED:
        return MSG_ATTRIBUTE_NOT_ALLOWED.format(tag_text(tag)) if tag in ds else None
    return _required(ds, tag, mandatory=usage in _MANDATORY, non_zero=usage in _NON_ZERO)


def _check_items(ds: Dataset, requirement: Requirement) -> str | None:
    assert requirement.items is not None
    for item in sequence_items(ds, requirement.tag):
        for child in requirement.items:
            message = _check_usage(item, child.tag, child.usage)
            if message is None and child.items is not None:
                message = _check_items(item, child)
            if message is not None:
                return message
    return None


def check_requirements(ds: Dataset, requirements: Sequence[Requirement]) -> str | None:
    """Azure's message for the first rule ``ds`` breaks, in table order, or ``None``.

    The items of a sequence are checked against their rules whenever the sequence has items (a sequence that is
    not allowed is not descended into).
    """
    for requirement in requirements:
        message = _check_usage(ds, requirement.tag, requirement.usage)
        if message is None and requirement.items is not None and requirement.usage is not Usage.NOT_ALLOWED:
            message = _check_items(ds, requirement)
        if message is not None:
            return message
    return None


def check_create(ds: Dataset) -> str | None:
    """PS3.4 Table CC.2.5-3 N-CREATE rules (after the service set its own attributes)."""
    return check_requirements(ds, CREATE_REQUIREMENTS)


def check_update(ds: Dataset) -> str | None:
    """PS3.4 Table CC.2.5-3 N-SET rules on an update request (after the service set the modification time)."""
    return check_requirements(ds, UPDATE_REQUIREMENTS)


def _final_needed(usage: FinalUsage, target: ProcedureStepState) -> bool:
    if usage is FinalUsage.R:
        return True
    if usage is FinalUsage.P:
        return target is ProcedureStepState.COMPLETED
    if usage is FinalUsage.X:
        return target is ProcedureStepState.CANCELED
    return False  # O; RC (Azure passes no condition)


def _check_final(ds: Dataset, requirements: Sequence[FinalRequirement], target: ProcedureStepState) -> str | None:
    for requirement in requirements:
        message = _required(ds, requirement.tag) if _final_needed(requirement.usage, target) else None
        if message is None and requirement.items is not None:
            for item in sequence_items(ds, requirement.tag):
                message = _check_final(item, requirement.items, target)
                if message is not None:
                    break
        if message is not None:
            return message
    return None


def check_final_state(ds: Dataset) -> str | None:
    """PS3.4 CC.2.5.1.1: when ``ds``'s Procedure Step State is COMPLETED or CANCELED, the attributes it needs.

    Returns Azure's message for the first missing one, or ``None`` (always ``None`` for other states).
    """
    target = ProcedureStepState.parse(_text(ds, PROCEDURE_STEP_STATE))
    if not target.is_final:
        return None
    return _check_final(ds, FINAL_STATE_REQUIREMENTS, target)


def check_change_state_request(ds: Dataset) -> str | None:
    """The body of a Change State request: Transaction UID and a target state (``ChangeWorkitemStateDatasetValidator``).

    The target value is compared exactly (``IN PROGRESS``, ``COMPLETED``, ``CANCELED``).
    """
    for tag in (TRANSACTION_UID, PROCEDURE_STEP_STATE):
        message = _check_usage(ds, tag, Usage.R1_1)
        if message is not None:
            return message
    if _text(ds, PROCEDURE_STEP_STATE) not in {t.value for t in CHANGE_STATE_TARGETS}:
        allowed = ",".join(t.value for t in CHANGE_STATE_TARGETS)
        return MSG_UNEXPECTED_VALUE.format(tag_text(PROCEDURE_STEP_STATE), allowed)
    return None


# ---------------------------------------------------------------------------------------------------------------
# Dataset edits
# ---------------------------------------------------------------------------------------------------------------


def _text(ds: Dataset, tag: int) -> str | None:
    """The whole value of a string element (padding trimmed), ``None`` when absent or not a string."""
    view = element_view(ds, tag)
    return None if view is None else view.text


def get_text(ds: Dataset, tag: int) -> str | None:
    """Public form of :func:`_text` for the services."""
    return _text(ds, tag)


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
        if SOP_INSTANCE_UID in result and (_text(result, SOP_INSTANCE_UID) or "") != workitem_uid:
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
        if new.VR in _NUMERIC_VRS and (isinstance(new.value, list | tuple) or type(new.value).__name__ == "MultiValue"):
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


# ---------------------------------------------------------------------------------------------------------------
# Search (reference §9.6; WorkitemQueryTag.sql, WorkitemQueryParser, WorkitemQueryResponseBuilder)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchKey:
    """A searchable workitem attribute: a top-level tag or a (sequence, tag) path.

    ``column`` names the index column; ``multiple`` columns hold one value per sequence item (see
    :func:`index_values`).
    """

    path: tuple[int, ...]
    keyword: str
    vr: str
    column: str

    @property
    def tag(self) -> int:
        """The last tag of the path (what Azure's parser keeps as the condition's tag)."""
        return self.path[-1]

    @property
    def multiple(self) -> bool:
        return len(self.path) > 1

    @property
    def query_tag(self) -> QueryTag:
        return QueryTag(self.tag, self.keyword, self.vr, Level.INSTANCE)

    @property
    def hex_path(self) -> str:
        return ".".join(f"{t:08X}" for t in self.path)


# Azure's workitem query tags, in its order (WorkitemQueryTag.sql).
SEARCH_KEYS: tuple[SearchKey, ...] = (
    SearchKey((PATIENT_NAME,), "PatientName", "PN", "patient_name"),
    SearchKey((PATIENT_ID,), "PatientID", "LO", "patient_id"),
    SearchKey((0x0040A370, 0x00080050), "AccessionNumber", "SH", "accession_numbers"),
    SearchKey((0x0040A370, 0x00401001), "RequestedProcedureID", "SH", "requested_procedure_ids"),
    SearchKey(
        (SCHEDULED_PROCEDURE_STEP_START_DATETIME,), "ScheduledProcedureStepStartDateTime", "DT", "scheduled_start"
    ),
    SearchKey((0x00404025, 0x00080100), "CodeValue", "SH", "station_name_codes"),
    SearchKey((0x00404026, 0x00080100), "CodeValue", "SH", "station_class_codes"),
    SearchKey((PROCEDURE_STEP_STATE,), "ProcedureStepState", "CS", "state"),
    SearchKey((0x00404027, 0x00080100), "CodeValue", "SH", "station_location_codes"),
    SearchKey((STUDY_INSTANCE_UID,), "StudyInstanceUID", "UI", "study_uid"),
)
SEARCH_KEYS_BY_PATH: dict[tuple[int, ...], SearchKey] = {key.path: key for key in SEARCH_KEYS}
SEARCH_KEYS_BY_COLUMN: dict[str, SearchKey] = {key.column: key for key in SEARCH_KEYS}

# Workitem attributes with a return key type of 1 or 2, always returned by a search (Azure's RequiredReturnTags,
# from PS3.4 Table CC.2.5-3).
RETURN_TAGS: frozenset[int] = frozenset(
    keyword_tag(keyword)
    for keyword in (
        "SpecificCharacterSet",
        "SOPClassUID",
        "SOPInstanceUID",
        "ScheduledProcedureStepPriority",
        "ProcedureStepLabel",
        "WorklistLabel",
        "ScheduledProcessingParametersSequence",
        "ScheduledStationNameCodeSequence",
        "ScheduledStationClassCodeSequence",
        "ScheduledStationGeographicLocationCodeSequence",
        "ScheduledHumanPerformersSequence",
        "ScheduledProcedureStepStartDateTime",
        "ScheduledWorkitemCodeSequence",
        "InputReadinessState",
        "InputInformationSequence",
        "StudyInstanceUID",
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "IssuerOfPatientIDQualifiersSequence",
        "OtherPatientIDsSequence",
        "PatientBirthDate",
        "PatientSex",
        "AdmissionID",
        "IssuerOfAdmissionIDSequence",
        "AdmittingDiagnosesDescription",
        "AdmittingDiagnosesCodeSequence",
        "ReferencedRequestSequence",
        "MedicalAlerts",
        "PregnancyStatus",
        "SpecialNeeds",
        "ProcedureStepState",
        "ProcedureStepProgressInformationSequence",
    )
)


@dataclass(frozen=True)
class WorkitemQuery:
    """A validated workitem search. Condition values are normalized like the index columns."""

    conditions: tuple[tuple[SearchKey, Condition], ...]
    limit: int
    offset: int
    fuzzy: bool
    include_all: bool
    include_tags: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    offset: int
    fuzzy: bool


_RESERVED = frozenset({"FUZZYMATCHING", "INCLUDEFIELD", "LIMIT", "OFFSET"})


def _split_parameters(
    params: Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[str], list[tuple[str, list[str]]]]:
    """(reserved pairs except includefield, includefield values, filters grouped like ASP.NET ``Request.Query``)."""
    reserved: list[tuple[str, str]] = []
    include: list[str] = []
    groups: dict[str, tuple[str, list[str]]] = {}
    for key, value in params:
        name = fold_key(dotnet_trim(key))
        if name == "INCLUDEFIELD":
            include.append(value)
        elif name in _RESERVED:
            reserved.append((key, value))
        else:
            folded = fold_key(key)
            groups.setdefault(folded, (key, []))[1].append(value)
    return reserved, include, list(groups.values())


def parse_paging(params: Sequence[tuple[str, str]]) -> Paging:
    """Bind and validate ``limit`` (1..200, default 100), ``offset`` and ``fuzzymatching`` exactly as QIDO does
    (Azure's shared ``QueryOptions`` model binding, reference §4.2); the model-state errors come first."""
    reserved, _, _ = _split_parameters(params)
    parsed = parse_qido(reserved, QueryResource.ALL_STUDIES)
    return Paging(parsed.limit, parsed.offset, parsed.fuzzy)


def _parse_path(attribute_id: str) -> tuple[int, ...] | None:
    """``DicomTagParser.TryParse(..., supportMultiple: true)``: keywords or 8-hex tags joined by '.', at most two."""
    parts = attribute_id.split(".")
    tags = [parse_attribute_id(part) for part in parts]
    if len(parts) > 2:
        raise QueryValidationError(MSG_NESTED_SEQUENCE.format(attribute_id))
    if any(tag is None for tag in tags):
        return None
    return tuple(t for t in tags if t is not None)


def parse_workitem_query(params: Sequence[tuple[str, str]]) -> WorkitemQuery:
    """Validate the decoded query-string pairs of a workitem search (reference §9.6).

    Order of checks (Azure): reserved parameters, repeated filter keys, then each filter in query-string order
    (unknown or unsupported attribute → "not queryable", empty value, value syntax, the same attribute twice), then
    ``includefield``. Raises :class:`QueryValidationError` with Azure's message (a plain-text 400).
    """
    paging = parse_paging(params)
    _, include_values, groups = _split_parameters(params)

    filters: dict[str, str] = {}
    for key, values in groups:
        attribute_id = dotnet_trim(key)
        if len(values) > 1:
            raise QueryValidationError(MSG_DUPLICATE_ATTRIBUTE_ID.format(attribute_id))
        if attribute_id in filters:
            raise QueryValidationError(MSG_DUPLICATE_KEY.format(attribute_id))
        filters[attribute_id] = dotnet_trim(values[0])

    conditions: dict[tuple[int, ...], tuple[SearchKey, Condition]] = {}
    for attribute_id, value in filters.items():
        path = _parse_path(attribute_id)
        key = SEARCH_KEYS_BY_PATH.get(path) if path is not None else None
        if key is None:
            raise QueryValidationError(MSG_UNSUPPORTED_SEARCH_PARAMETER.format(attribute_id))
        if not value.strip():
            raise QueryValidationError(MSG_EMPTY_VALUE.format(attribute_id))
        condition = parse_value(key.query_tag, value, paging.fuzzy, False)
        if condition is None:  # pragma: no cover - every search key has a value parser
            raise QueryValidationError(MSG_UNSUPPORTED_SEARCH_PARAMETER.format(attribute_id))
        if key.path in conditions:
            raise QueryValidationError(MSG_DUPLICATE_ATTRIBUTE.format(attribute_id))
        conditions[key.path] = (key, condition)

    fields = [dotnet_trim(part) for value in include_values for part in value.split(",")]
    include_all = False
    include_tags: list[int] = []
    if any(f.lower() == INCLUDE_FIELD_ALL for f in fields):
        if len(fields) > 1:
            raise QueryValidationError(MSG_INCLUDE_ALL_WITH_OTHERS)
        include_all = True
    else:
        for field in fields:
            path = _parse_path(field) if field.strip() else None
            if path is None:
                raise QueryValidationError(MSG_INCLUDE_FIELD_UNKNOWN.format(field))
            if len(path) > 1:
                raise QueryValidationError(MSG_SEQUENTIAL_TAGS)
            if path[0] not in include_tags:
                include_tags.append(path[0])

    return WorkitemQuery(
        conditions=tuple(conditions.values()),
        limit=paging.limit,
        offset=paging.offset,
        fuzzy=paging.fuzzy,
        include_all=include_all,
        include_tags=tuple(include_tags),
    )


def search_result(metadata: Mapping[str, Any], query: WorkitemQuery) -> dict[str, Any]:
    """One search hit as returned (Azure's ``GenerateResponseDataset``): never the Transaction UID; everything
    with ``includefield=all``; else the required return keys, the included fields and the filtered attributes."""
    hidden = f"{TRANSACTION_UID:08X}"
    if query.include_all:
        return {k: v for k, v in metadata.items() if k != hidden}
    wanted = set(RETURN_TAGS) | set(query.include_tags) | {key.tag for key, _ in query.conditions}
    return {k: v for k, v in metadata.items() if k != hidden and int(k, 16) in wanted}


# --- Index values -------------------------------------------------------------------------------------------------

LIST_DELIMITER = "\\"  # cannot occur inside an SH/LO value (PS3.5 6.2: it separates values)


def _sequence_values(ds: Dataset, path: tuple[int, ...], vr: str) -> str | None:
    """The normalized first value of ``path[1]`` in every item of ``path[0]``, as ``\\A\\B\\`` (Azure indexes one
    row per item, so any item can match)."""
    values: list[str] = []
    for item in sequence_items(ds, path[0]):
        view = element_view(item, path[1])
        if view is None or not view.values:
            continue
        text = str(view.values[0])
        if text.rstrip(" \0"):
            values.append(normalize_string(text, vr))
    if not values:
        return None
    return LIST_DELIMITER + LIST_DELIMITER.join(dict.fromkeys(values)) + LIST_DELIMITER


def index_values(ds: Dataset) -> dict[str, str | None]:
    """Index column values of a workitem (names match ``storage.models.Workitem``), normalized like the search
    condition values of :func:`parse_workitem_query` so that storage compares with equality, ranges or LIKE."""
    patient_name = first_value(ds, "PatientName")
    start = first_value(ds, "ScheduledProcedureStepStartDateTime")
    values: dict[str, str | None] = {
        "patient_name": None if patient_name is None else normalize_string(patient_name, "PN"),
        # Space-led word list (" JOHN DOE") so a fuzzy word is one "LIKE '% WORD%'" (reference §4.4).
        "patient_name_words": None
        if patient_name is None
        else ("".join(f" {w}" for w in person_name_words(patient_name)) or None),
        "scheduled_start": None if start is None else normalize_datetime(start),
    }
    for key in SEARCH_KEYS:
        if key.column in ("patient_name", "scheduled_start", "state"):
            continue
        if key.multiple:
            values[key.column] = _sequence_values(ds, key.path, key.vr)
        else:
            value = first_value(ds, key.keyword)
            values[key.column] = None if value is None else normalize_string(value, key.vr)
    return values
