"""The worklist mapping (dicom/worklist.py) and C-FIND matching (dicom/matching.py) behind the DIMSE gateway."""

from __future__ import annotations

import pytest
from pydicom import Dataset
from pydicom.sequence import Sequence

from dicom_emulator.dicom import matching
from dicom_emulator.dicom import worklist as mwl
from dicom_emulator.errors import BadRequestError


def test_step_id_is_short_stable_and_distinct() -> None:
    first = mwl.step_id("1.2.3.4")
    assert first == mwl.step_id("1.2.3.4")
    assert len(first) == 16 and first == first.upper()
    assert mwl.step_id("1.2.3.5") != first
    assert mwl.step_id("1.2.3.4", 1) != first


def test_derived_study_uid_is_a_stable_uuid_uid() -> None:
    uid = mwl.derived_study_uid("1.2.3.4")
    assert uid == mwl.derived_study_uid("1.2.3.4")
    assert uid.startswith("2.25.") and len(uid) <= 64 and uid[5:].isdigit()


def _workitem(**elements: object) -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P1"
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(
    ("value", "date", "time"),
    [
        ("20240115083000", "20240115", "083000"),
        ("20240115083000.123+0100", "20240115", "083000.123"),  # the offset is dropped
        ("202401150830", "20240115", "0830"),
        ("20240115", "20240115", ""),
        ("2024", "", ""),  # no date: left empty
    ],
)
def test_start_date_time_from_ups_datetime(value: str, date: str, time: str) -> None:
    item = mwl.worklist_item(_workitem(ScheduledProcedureStepStartDateTime=value), "1.2.3")
    (step,) = item.ScheduledProcedureStepSequence
    assert (step.ScheduledProcedureStepStartDate or "", step.ScheduledProcedureStepStartTime or "") == (date, time)


def test_every_given_step_item_is_served_and_completed() -> None:
    given = [Dataset(), Dataset()]
    given[0].Modality = "MG"
    given[0].ScheduledProcedureStepID = "A1"
    given[1].ScheduledStationAETitle = "ROOM2"
    performer = Dataset()
    performer.HumanPerformerName = "Tech^Ann"
    code = Dataset()
    code.CodeValue = "C1"
    workitem = _workitem(
        ScheduledProcedureStepSequence=Sequence(given),
        Modality="CT",
        ScheduledHumanPerformersSequence=Sequence([performer]),
        ScheduledWorkitemCodeSequence=Sequence([code]),
    )
    item = mwl.worklist_item(workitem, "1.2.3")
    first, second = item.ScheduledProcedureStepSequence
    assert (first.Modality, first.ScheduledProcedureStepID) == ("MG", "A1")
    assert (second.Modality, second.ScheduledStationAETitle) == ("CT", "ROOM2")
    assert second.ScheduledProcedureStepID == mwl.step_id("1.2.3", 1)
    assert mwl.step_ids(item) == ["A1", mwl.step_id("1.2.3", 1)]
    assert first.ScheduledPerformingPhysicianName == "Tech^Ann"
    assert first.ScheduledProtocolCodeSequence[0].CodeValue == "C1"
    assert first.ScheduledProcedureStepStatus == "SCHEDULED"
    assert item.SpecificCharacterSet == "ISO_IR 192"
    # The workitem itself is not changed.
    assert "ScheduledProcedureStepStatus" not in workitem.ScheduledProcedureStepSequence[0]


# pydicom warns about wild cards and ranges in CS/DA values; in a C-FIND identifier they are valid.
@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_sequence_matching_returns_only_matching_items() -> None:
    steps = [Dataset(), Dataset()]
    steps[0].Modality, steps[0].ScheduledProcedureStepID = "MG", "S1"
    steps[1].Modality, steps[1].ScheduledProcedureStepID = "US", "S2"
    candidate = Dataset()
    candidate.PatientID = "P1"
    candidate.ScheduledProcedureStepSequence = Sequence(steps)
    wanted = Dataset()
    wanted.Modality = "U?"
    wanted.ScheduledProcedureStepID = ""
    identifier = Dataset()
    identifier.PatientID = ""
    identifier.ScheduledProcedureStepSequence = Sequence([wanted])
    query = matching.parse_identifier(identifier)
    matched = matching.match(query, candidate)
    assert matched is not None
    answer = matching.response(identifier, candidate, matched)
    assert [(s.Modality, s.ScheduledProcedureStepID) for s in answer.ScheduledProcedureStepSequence] == [("US", "S2")]
    wanted.Modality = "CT"
    assert matching.match(matching.parse_identifier(identifier), candidate) is None


@pytest.mark.parametrize(
    ("keyword", "value", "stored", "expected"),
    [
        ("PatientName", "", "Doe^Jane", True),  # universal
        ("PatientName", "*", "Doe^Jane", True),
        ("PatientName", "DOE^JANE", "Doe^Jane", True),  # case-insensitive
        ("PatientName", "Doe^J?ne", "Doe^Jane", True),
        ("PatientName", "Doe", "Doe^Jane", False),
        ("PatientName", "Müller*", "Muller^Hans", True),  # accent-insensitive, as QIDO
        ("StudyDate", "20240101-", "20240115", True),
        ("StudyDate", "-20240101", "20240115", False),
        ("StudyTime", "0800-0900", "083000", True),
        ("StudyTime", "0900-", "083000", False),
        ("StudyInstanceUID", "1.2\\1.3", "1.3", True),
        ("InstanceNumber", "5", "5", True),
        ("AccessionNumber", "A1", None, False),  # absent: only universal matching matches
    ],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_single_key_matching(keyword: str, value: str, stored: str | None, expected: bool) -> None:
    identifier = Dataset()
    setattr(identifier, keyword, value)
    candidate = Dataset()
    if stored is not None:
        setattr(candidate, keyword, stored)
    assert (matching.match(matching.parse_identifier(identifier), candidate) is not None) is expected


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_malformed_value_is_a_bad_request() -> None:
    identifier = Dataset()
    identifier.StudyDate = "2024-01-01-2024"
    with pytest.raises(BadRequestError):
        matching.parse_identifier(identifier)
