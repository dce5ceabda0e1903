"""Modality Worklist C-FIND served from SCHEDULED UPS workitems (PS3.4 K.6, mapping in dicom/worklist.py)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest
from pydicom import Dataset
from pydicom.sequence import Sequence

from dicom_emulator.dicom.worklist import derived_study_uid, step_id
from tests.dimse import scu, workitems
from tests.dimse.conftest import DimseApp
from tests.factories import new_uid
from tests.workitem_samples import cancel_body


@dataclass
class Worklist:
    mammo: str  # UPS-derived worklist attributes
    ct: str  # worklist attributes given by the workitem
    canceled: str
    mammo_study: str


@pytest.fixture(scope="module")
def dimse(module_dimse: DimseApp) -> DimseApp:
    """Every test here only queries the worklist below: one emulator and one worklist per module (per backend)."""
    return module_dimse


@pytest.fixture(scope="module")
async def worklist(dimse: DimseApp) -> Worklist:
    study = new_uid()
    client = dimse.client
    mammo = await workitems.create(
        client, workitems.ups_derived_body(new_uid(), patient_id="MWL-1", accession="ACC-001", study_uid=study)
    )
    ct = await workitems.create(client, workitems.mwl_given_body(new_uid(), patient_id="MWL-2"))
    canceled = await workitems.create(
        client, workitems.ups_derived_body(new_uid(), patient_id="MWL-3", accession="ACC-003", study_uid=new_uid())
    )
    r = await client.post(
        f"/v2/workitems/{canceled}/cancelrequest",
        content=json.dumps([cancel_body()]).encode(),
        headers=workitems.DICOM_JSON,
    )
    assert r.status_code == 202, r.text
    return Worklist(mammo, ct, canceled, study)


def worklist_query(**top: object) -> Dataset:
    """The keys a modality usually asks for; ``top`` sets top-level values, ``sps_*`` step values."""
    step = Dataset()
    step.Modality = ""
    step.ScheduledStationAETitle = ""
    step.ScheduledProcedureStepStartDate = ""
    step.ScheduledProcedureStepStartTime = ""
    step.ScheduledProcedureStepDescription = ""
    step.ScheduledProcedureStepID = ""
    ds = Dataset()
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.AccessionNumber = ""
    ds.StudyInstanceUID = ""
    ds.RequestedProcedureID = ""
    ds.RequestedProcedureDescription = ""
    for keyword, value in top.items():
        if keyword.startswith("sps_"):
            setattr(step, keyword[4:], value)
        else:
            setattr(ds, keyword, value)
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


async def find(dimse: DimseApp, query: Dataset) -> list[Dataset]:
    responses = await asyncio.to_thread(scu.find, dimse.port, query, worklist=True)
    assert [status for status, _ in responses] == [0xFF00] * (len(responses) - 1) + [0x0000]
    return [ident for _, ident in responses[:-1]]  # type: ignore[misc]


async def test_workitem_with_ups_attributes_only(dimse: DimseApp, worklist: Worklist) -> None:
    (item,) = await find(dimse, worklist_query(PatientID="MWL-1"))
    assert item.SpecificCharacterSet == "ISO_IR 192"
    assert item.PatientName == "Doe^Jane"
    assert item.PatientID == "MWL-1"
    assert item.PatientBirthDate == "20240115"
    assert item.PatientSex == "F"
    assert item.AccessionNumber == "ACC-001"  # ReferencedRequestSequence
    assert item.StudyInstanceUID == worklist.mammo_study
    assert item.RequestedProcedureID == "RP-001"
    assert item.RequestedProcedureDescription == "Mammography"
    (step,) = item.ScheduledProcedureStepSequence
    assert step.Modality == "MG"  # the workitem's top-level Modality
    assert step.ScheduledStationAETitle == "MG_ROOM_1"  # ScheduledStationNameCodeSequence > CodeValue
    assert step.ScheduledProcedureStepStartDate == "20240115"
    assert step.ScheduledProcedureStepStartTime == "083000"
    assert step.ScheduledProcedureStepDescription == "Screening mammography"  # ProcedureStepLabel
    assert step.ScheduledProcedureStepID == step_id(worklist.mammo)
    assert len(step.ScheduledProcedureStepID) == 16
    assert {e.keyword for e in step} == {
        "Modality", "ScheduledStationAETitle", "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime",
        "ScheduledProcedureStepDescription", "ScheduledProcedureStepID",
    }  # fmt: skip


async def test_workitem_with_worklist_attributes_is_served_as_given(dimse: DimseApp, worklist: Worklist) -> None:
    (item,) = await find(dimse, worklist_query(PatientID="MWL-2"))
    assert item.AccessionNumber == "ACC-002"
    assert item.StudyInstanceUID == derived_study_uid(worklist.ct)  # none given: stable derived UID
    assert item.RequestedProcedureID == step_id(worklist.ct)
    assert item.RequestedProcedureDescription == ""
    (step,) = item.ScheduledProcedureStepSequence
    assert (step.Modality, step.ScheduledStationAETitle, step.ScheduledProcedureStepID) == (
        "CT",
        "CT_SCANNER",
        "SPS-CT-1",
    )
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == ("20240116", "101500")
    assert step.ScheduledProcedureStepDescription == "CT head"
    # Stable across queries.
    (again,) = await find(dimse, worklist_query(PatientID="MWL-2"))
    assert again.StudyInstanceUID == item.StudyInstanceUID


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, {"mammo", "ct"}),  # universal matching; the CANCELED workitem is never listed
        ({"sps_Modality": "MG"}, {"mammo"}),
        ({"sps_Modality": "c*"}, {"ct"}),
        ({"sps_ScheduledStationAETitle": "CT_SCANNER"}, {"ct"}),
        ({"sps_ScheduledStationAETitle": "MG_ROOM_?"}, {"mammo"}),
        ({"sps_ScheduledProcedureStepStartDate": "20240115"}, {"mammo"}),
        ({"sps_ScheduledProcedureStepStartDate": "20240116-"}, {"ct"}),
        ({"sps_ScheduledProcedureStepStartDate": "-20240115"}, {"mammo"}),
        ({"sps_ScheduledProcedureStepStartDate": "20240101-20240131"}, {"mammo", "ct"}),
        ({"sps_ScheduledProcedureStepStartDate": "20240117-"}, set()),
        ({"PatientID": "MWL-2"}, {"ct"}),
        ({"PatientID": "MWL-3"}, set()),  # canceled
        ({"PatientName": "doe^*"}, {"mammo"}),
        ({"PatientName": "Roe^Richard"}, {"ct"}),
        ({"AccessionNumber": "ACC-00?"}, {"mammo", "ct"}),
        ({"AccessionNumber": "ACC-002"}, {"ct"}),
        ({"sps_Modality": "MG", "PatientID": "MWL-2"}, set()),
    ],
)
async def test_matching_keys(dimse: DimseApp, worklist: Worklist, keys: dict[str, str], expected: set[str]) -> None:
    names = {"MWL-1": "mammo", "MWL-2": "ct", "MWL-3": "canceled"}
    items = await find(dimse, worklist_query(**keys))
    assert sorted(names[i.PatientID] for i in items) == sorted(expected)


async def test_only_requested_keys_are_returned(dimse: DimseApp, worklist: Worklist) -> None:
    query = Dataset()
    query.PatientID = "MWL-1"
    query.OtherPatientIDsSequence = Sequence()  # a return key the workitem has (empty)
    step = Dataset()
    step.ScheduledProcedureStepID = ""
    query.ScheduledProcedureStepSequence = Sequence([step])
    (item,) = await find(dimse, query)
    assert {e.keyword for e in item} == {
        "SpecificCharacterSet", "PatientID", "OtherPatientIDsSequence", "ScheduledProcedureStepSequence",
    }  # fmt: skip
    assert [e.keyword for e in item.ScheduledProcedureStepSequence[0]] == ["ScheduledProcedureStepID"]


async def test_malformed_date_is_a900(dimse: DimseApp, worklist: Worklist) -> None:
    responses = await asyncio.to_thread(
        scu.find, dimse.port, worklist_query(sps_ScheduledProcedureStepStartDate="2024-01-15"), worklist=True
    )
    assert [status for status, _ in responses] == [0xA900]
