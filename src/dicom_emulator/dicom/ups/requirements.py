"""Attribute requirements of UPS requests (PS3.4 §5.4.2.1 usage codes, Table CC.2.5-3) as Azure encodes them.

The tables for create (N-CREATE) and update (N-SET) follow ``WorkitemDatasetValidatorExtension``, the final-state
codes of PS3.4 CC.2.5.1.1 follow ``WorkitemFinalStateValidatorExtension``, and the Change State request body
follows ``ChangeWorkitemStateDatasetValidator``. Every check returns Azure's message for the first rule broken, in
table order, or ``None``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from dicom_emulator.dicom.json_model import element_view, sequence_items
from dicom_emulator.dicom.tags import keyword_tag, tag_text
from dicom_emulator.dicom.ups.attributes import PROCEDURE_STEP_STATE, TRANSACTION_UID, get_text
from dicom_emulator.dicom.ups.messages import (
    MSG_ATTRIBUTE_MUST_BE_EMPTY,
    MSG_ATTRIBUTE_MUST_NOT_BE_EMPTY,
    MSG_ATTRIBUTE_NOT_ALLOWED,
    MSG_MISSING_REQUIRED_TAG,
    MSG_MISSING_REQUIRED_VALUE,
    MSG_UNEXPECTED_VALUE,
)
from dicom_emulator.dicom.ups.states import CHANGE_STATE_TARGETS, ProcedureStepState


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
    target = ProcedureStepState.parse(get_text(ds, PROCEDURE_STEP_STATE))
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
    if get_text(ds, PROCEDURE_STEP_STATE) not in {t.value for t in CHANGE_STATE_TARGETS}:
        allowed = ",".join(t.value for t in CHANGE_STATE_TARGETS)
        return MSG_UNEXPECTED_VALUE.format(tag_text(PROCEDURE_STEP_STATE), allowed)
    return None
