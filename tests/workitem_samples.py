"""UPS-RS test bodies modelled on Azure's E2E fixtures (``Samples.CreateRandomWorkitemInstanceDataset`` and
``Samples.CreateWorkitemCancelRequestDataset`` in src/Microsoft.Health.Dicom.Tests.Common/Samples.cs)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from pydicom.datadict import keyword_for_tag

from tests.factories import new_uid


def _hex14() -> str:
    return uuid.uuid4().hex[:14].upper()


def create_body(uid: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A known-good create dataset as DICOM JSON (hex keys). ``overrides`` replace or, when ``None``, remove
    attributes by 8-hex tag."""
    body: dict[str, Any] = {
        "00081195": {"vr": "UI"},  # TransactionUID: present and empty
        "00080016": {"vr": "UI", "Value": [new_uid()]},  # overwritten by the server
        "00080018": {"vr": "UI", "Value": [uid or new_uid()]},
        "00741210": {"vr": "SQ"},  # ScheduledProcessingParametersSequence
        "00404025": {"vr": "SQ"},  # ScheduledStationNameCodeSequence
        "00404026": {"vr": "SQ"},  # ScheduledStationClassCodeSequence
        "00404027": {"vr": "SQ"},  # ScheduledStationGeographicLocationCodeSequence
        "00404018": {"vr": "SQ"},  # ScheduledWorkitemCodeSequence
        "00100024": {"vr": "SQ"},  # IssuerOfPatientIDQualifiersSequence
        "00380014": {"vr": "SQ", "Value": [{}]},  # IssuerOfAdmissionIDSequence: one (empty) item
        "00081084": {"vr": "SQ", "Value": [{"00080104": {"vr": "LO", "Value": ["CodeMeaning"]}}]},
        "0040A370": {"vr": "SQ"},  # ReferencedRequestSequence
        "00404021": {"vr": "SQ"},  # InputInformationSequence
        "00100010": {"vr": "PN"},  # PatientName: present, empty
        "00100021": {"vr": "LO"},  # IssuerOfPatientID
        "00101002": {"vr": "SQ"},  # OtherPatientIDsSequence
        "00100030": {"vr": "DA", "Value": ["20240115"]},
        "00100040": {"vr": "CS", "Value": ["F"]},
        "00380010": {"vr": "LO", "Value": ["1"]},  # AdmissionID
        "00081080": {"vr": "LO", "Value": ["SampleDiagnosesDescription"]},
        "00741000": {"vr": "CS", "Value": ["SCHEDULED"]},
        "00741002": {"vr": "SQ"},  # ProcedureStepProgressInformationSequence
        "00741216": {"vr": "SQ"},  # UnifiedProcedureStepPerformedProcedureSequence
        "00404010": {"vr": "DT", "Value": ["20240115101010.000000"]},
        "00741200": {"vr": "CS", "Value": [_hex14()]},  # ScheduledProcedureStepPriority
        "00741204": {"vr": "LO", "Value": [uuid.uuid4().hex]},  # ProcedureStepLabel
        "00741202": {"vr": "LO", "Value": ["WorklistLabel"]},
        "00404005": {"vr": "DT", "Value": ["20240115083000"]},  # ScheduledProcedureStepStartDateTime
        "00400400": {"vr": "LT", "Value": ["SampleComments"]},
        "00404041": {"vr": "CS", "Value": [_hex14()]},  # InputReadinessState
        # Top-level extras the Azure fixture carries (not part of the create rules).
        "0074100E": {"vr": "SQ"},  # ProcedureStepDiscontinuationReasonCodeSequence
        "00404035": {"vr": "SQ"},  # ActualHumanPerformersSequence
        "00404009": {"vr": "SQ"},  # HumanPerformerCodeSequence
        "00404037": {"vr": "PN", "Value": [{"Alphabetic": "SampleFixtureUser"}]},  # HumanPerformerName
        "0040E020": {"vr": "CS", "Value": ["SAMPLETYPEOFINST"]},  # TypeOfInstances
        "00081199": {
            "vr": "SQ",
            "Value": [{"00081150": {"vr": "UI", "Value": ["1.2.3"]}, "00081155": {"vr": "UI", "Value": ["1.2.3"]}}],
        },
    }
    for tag, value in overrides.items():
        if value is None:
            body.pop(tag, None)
        else:
            body[tag] = value
    return body


def keyword_body(body: dict[str, Any]) -> dict[str, Any]:
    """The same dataset keyed by DICOM keywords, as the C# client (fo-dicom ``writeTagsAsKeywords: true``) sends."""
    result: dict[str, Any] = {}
    for key, attribute in body.items():
        attribute = copy.deepcopy(attribute)
        if attribute.get("vr") == "SQ" and "Value" in attribute:
            attribute["Value"] = [keyword_body(item) for item in attribute["Value"]]
        result[keyword_for_tag(int(key, 16))] = attribute
    return result


def code_item(value: str, meaning: str = "Meaning") -> dict[str, Any]:
    """A code sequence item with Code Value, Coding Scheme Designator and the required Code Meaning."""
    return {
        "00080100": {"vr": "SH", "Value": [value]},
        "00080102": {"vr": "SH", "Value": ["99TEST"]},
        "00080104": {"vr": "LO", "Value": [meaning]},
    }


def request_item(accession: str, procedure_id: str = "RP1", study_uid: str | None = None) -> dict[str, Any]:
    """A ReferencedRequestSequence item (the create rules need Study Instance UID and the Type 2 keys)."""
    return {
        "0020000D": {"vr": "UI", "Value": [study_uid or new_uid()]},
        "00080050": {"vr": "SH", "Value": [accession]},
        "00080051": {"vr": "SQ"},
        "00400026": {"vr": "SQ"},  # OrderPlacerIdentifierSequence
        "00400027": {"vr": "SQ"},  # OrderFillerIdentifierSequence
        "00401001": {"vr": "SH", "Value": [procedure_id]},
        "00321060": {"vr": "LO", "Value": ["Mammography"]},
        "00321064": {"vr": "SQ"},
    }


def cancel_body(reason: str = "Test Cancel") -> dict[str, Any]:
    """Azure's ``CreateWorkitemCancelRequestDataset``."""
    return {
        "00741238": {"vr": "LT", "Value": [reason]},
        "0074100A": {"vr": "UR", "Value": ["dicom-users://test-user"]},
        "0074100C": {"vr": "LO", "Value": ["Dicom Test User"]},
        "00404052": {"vr": "DT", "Value": ["20240115120000.000000"]},
    }


def performed_procedure() -> dict[str, Any]:
    """A UnifiedProcedureStepPerformedProcedureSequence that meets the COMPLETED final-state codes (PS3.4 CC.2.5.1.1),
    as Azure's E2E workflow sends it in an update before completing."""
    return {
        "vr": "SQ",
        "Value": [
            {
                "00404035": {
                    "vr": "SQ",
                    "Value": [
                        {
                            "00404009": {"vr": "SQ", "Value": [{"00080104": {"vr": "LO", "Value": ["Performer"]}}]},
                            "00404037": {"vr": "PN", "Value": [{"Alphabetic": "Samples-TestFixture"}]},
                        }
                    ],
                },
                "00404028": {"vr": "SQ", "Value": [{"00080104": {"vr": "LO", "Value": ["Station"]}}]},
                "00404050": {"vr": "DT", "Value": ["20240115090000"]},
                "00404019": {"vr": "SQ", "Value": [{"00080104": {"vr": "LO", "Value": ["Workitem"]}}]},
                "00404051": {"vr": "DT", "Value": ["20240115093000"]},
                "00404033": {
                    "vr": "SQ",
                    "Value": [
                        {
                            "0040E020": {"vr": "CS", "Value": ["DICOM"]},
                            "00081199": {
                                "vr": "SQ",
                                "Value": [
                                    {
                                        "00081150": {"vr": "UI", "Value": ["1.2.3"]},
                                        "00081155": {"vr": "UI", "Value": ["1.2.3"]},
                                    }
                                ],
                            },
                        }
                    ],
                },
            }
        ],
    }


def progress_for_cancel() -> dict[str, Any]:
    """A ProcedureStepProgressInformationSequence that meets the CANCELED final-state codes."""
    return {
        "vr": "SQ",
        "Value": [
            {
                "00404052": {"vr": "DT", "Value": ["20240115100000"]},
                "0074100E": {"vr": "SQ", "Value": [{"00080104": {"vr": "LO", "Value": ["Reason"]}}]},
            }
        ],
    }
