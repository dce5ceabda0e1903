"""MPPS N-CREATE / N-SET driving UPS workitems (PS3.4 F.7), with the statuses of PS3.4 F.7.2 and PS3.7 C."""

from __future__ import annotations

import asyncio

import pytest
from pydicom import Dataset
from pydicom.sequence import Sequence

from dicom_emulator.dicom.ups import ProcedureStepState
from dicom_emulator.dicom.worklist import step_id
from dicom_emulator.storage.mpps_store import SqlMppsStore
from tests.dimse import scu, workitems
from tests.dimse.conftest import DimseApp
from tests.factories import new_uid

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"


def step_attributes(*, study_uid: str, step: str = "", accession: str = "") -> Dataset:
    item = Dataset()
    item.StudyInstanceUID = study_uid
    item.ReferencedStudySequence = Sequence()
    item.AccessionNumber = accession
    item.RequestedProcedureID = ""
    item.RequestedProcedureDescription = ""
    item.ScheduledProcedureStepID = step
    item.ScheduledProcedureStepDescription = ""
    item.ScheduledProtocolCodeSequence = Sequence()
    return item


def n_create(*steps: Dataset, status: str = "IN PROGRESS") -> Dataset:
    """A complete N-CREATE attribute list (PS3.4 Table F.7.2-1), as a modality sends it."""
    ds = Dataset()
    ds.ScheduledStepAttributesSequence = Sequence(list(steps))
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MPPS-1"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.ReferencedPatientSequence = Sequence()
    ds.PerformedProcedureStepID = "PPS-0001"
    ds.PerformedStationAETitle = "TEST_MODALITY"
    ds.PerformedStationName = "Mammo 1"
    ds.PerformedLocation = ""
    ds.PerformedProcedureStepStartDate = "20240115"
    ds.PerformedProcedureStepStartTime = "083500"
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepDescription = "Screening"
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = Sequence()
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "MG"
    ds.StudyID = ""
    ds.PerformedProtocolCodeSequence = Sequence()
    ds.PerformedSeriesSequence = Sequence()
    return ds


def n_set_completed(series_uid: str, sop_uids: list[str], status: str = "COMPLETED") -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20240115"
    ds.PerformedProcedureStepEndTime = "084500"
    series = Dataset()
    series.PerformingPhysicianName = "Tech^Ann"
    series.OperatorsName = ""
    series.ProtocolName = "Screening"
    series.SeriesInstanceUID = series_uid
    series.SeriesDescription = ""
    series.RetrieveAETitle = ""
    series.ReferencedImageSequence = Sequence()
    for uid in sop_uids:
        ref = Dataset()
        ref.ReferencedSOPClassUID = MG_FOR_PRESENTATION
        ref.ReferencedSOPInstanceUID = uid
        series.ReferencedImageSequence.append(ref)
    series.ReferencedNonImageCompositeSOPInstanceSequence = Sequence()
    ds.PerformedSeriesSequence = Sequence([series])
    return ds


async def create_workitem(dimse: DimseApp, patient_id: str = "MPPS-1") -> tuple[str, str]:
    study = new_uid()
    uid = await workitems.create(
        dimse.client,
        workitems.ups_derived_body(new_uid(), patient_id=patient_id, accession=f"ACC-{patient_id}", study_uid=study),
    )
    return uid, study


async def create(dimse: DimseApp, uid: str | None, ds: Dataset) -> tuple[Dataset, Dataset | None]:
    return await asyncio.to_thread(scu.mpps_create, dimse.port, uid, ds)


async def update(dimse: DimseApp, uid: str, ds: Dataset) -> tuple[Dataset, Dataset | None]:
    return await asyncio.to_thread(scu.mpps_set, dimse.port, uid, ds)


def store(dimse: DimseApp) -> SqlMppsStore:
    return dimse.app.state.runtime.mpps.store  # type: ignore[no-any-return]


async def test_scheduled_step_in_progress_then_completed(dimse: DimseApp) -> None:
    workitem, study = await create_workitem(dimse)
    mpps = new_uid()
    status, _ = await create(dimse, mpps, n_create(step_attributes(study_uid=study, step=step_id(workitem))))
    assert status.Status == 0x0000
    assert workitems.state(await workitems.get(dimse.client, workitem)) == "IN PROGRESS"
    row = await store(dimse).get(mpps)
    assert row is not None
    assert (row.status, row.workitem_uids) == ("IN PROGRESS", (workitem,))

    images = [new_uid(), new_uid()]
    series = new_uid()
    status, _ = await update(dimse, mpps, n_set_completed(series, images))
    assert status.Status == 0x0000
    done = await workitems.get(dimse.client, workitem)
    assert workitems.state(done) == "COMPLETED"
    (performed,) = done["00741216"]["Value"]  # UnifiedProcedureStepPerformedProcedureSequence
    assert performed["00404050"]["Value"] == ["20240115083500"]  # PerformedProcedureStepStartDateTime
    assert performed["00404051"]["Value"] == ["20240115084500"]  # PerformedProcedureStepEndDateTime
    assert performed["00404028"]["Value"][0]["00080100"]["Value"] == ["TEST_MODALITY"]  # station code
    assert performed["00404035"]["Value"][0]["00404037"]["Value"] == [{"Alphabetic": "Tech^Ann"}]
    (output,) = performed["00404033"]["Value"]  # OutputInformationSequence
    assert output["0020000D"]["Value"] == [study]
    assert output["0020000E"]["Value"] == [series]
    assert [r["00081155"]["Value"][0] for r in output["00081199"]["Value"]] == images
    row = await store(dimse).get(mpps)
    assert row is not None and row.status == "COMPLETED"

    # PS3.4 F.7.2.2.2: a COMPLETED step may no longer be updated.
    status, _ = await update(dimse, mpps, n_set_completed(series, images))
    assert status.Status == 0x0110


async def test_accession_and_study_find_the_workitem_and_discontinued_cancels_it(dimse: DimseApp) -> None:
    workitem, study = await create_workitem(dimse, "MPPS-2")
    mpps = new_uid()
    status, _ = await create(dimse, mpps, n_create(step_attributes(study_uid=study, accession="ACC-MPPS-2")))
    assert status.Status == 0x0000
    assert workitems.state(await workitems.get(dimse.client, workitem)) == "IN PROGRESS"

    discontinue = Dataset()
    discontinue.PerformedProcedureStepStatus = "DISCONTINUED"
    reason = Dataset()
    reason.CodeValue = "110514"
    reason.CodingSchemeDesignator = "DCM"
    reason.CodeMeaning = "Incorrect worklist entry selected"
    discontinue.PerformedProcedureStepDiscontinuationReasonCodeSequence = Sequence([reason])
    status, _ = await update(dimse, mpps, discontinue)
    assert status.Status == 0x0000
    canceled = await workitems.get(dimse.client, workitem)
    assert workitems.state(canceled) == "CANCELED"
    assert canceled["0074100E"]["Value"][0]["00741238"]["Value"] == [
        "MPPS DISCONTINUED: Incorrect worklist entry selected"
    ]
    row = await store(dimse).get(mpps)
    assert row is not None and row.status == "DISCONTINUED"


async def test_unscheduled_step_is_recorded_and_drives_nothing(dimse: DimseApp) -> None:
    workitem, _ = await create_workitem(dimse, "MPPS-3")
    mpps = new_uid()
    status, _ = await create(dimse, mpps, n_create(step_attributes(study_uid=new_uid(), accession="OTHER")))
    assert status.Status == 0x0000
    row = await store(dimse).get(mpps)
    assert row is not None and row.workitem_uids == ()
    assert workitems.state(await workitems.get(dimse.client, workitem)) == "SCHEDULED"
    status, _ = await update(dimse, mpps, n_set_completed(new_uid(), [new_uid()]))
    assert status.Status == 0x0000
    assert workitems.state(await workitems.get(dimse.client, workitem)) == "SCHEDULED"


async def test_the_scp_assigns_the_uid_when_the_request_has_none(dimse: DimseApp) -> None:
    attributes = n_create(step_attributes(study_uid=new_uid()))
    status, assigned = await asyncio.to_thread(scu.mpps_create_without_uid, dimse.port, attributes)
    assert status.Status == 0x0000
    assert assigned is not None
    row = await store(dimse).get(assigned)
    assert row is not None and row.status == "IN PROGRESS"


def _without(keyword: str) -> Dataset:
    ds = n_create(step_attributes(study_uid=new_uid()))
    delattr(ds, keyword)
    return ds


def _with(**values: object) -> Dataset:
    ds = n_create(step_attributes(study_uid=new_uid()))
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(
    ("attributes", "code", "comment"),
    [
        (_without("PerformedProcedureStepStatus"), 0x0120, "Missing attribute: PerformedProcedureStepStatus"),
        (_without("ScheduledStepAttributesSequence"), 0x0120, "Missing attribute: ScheduledStepAttributesSequence"),
        (_with(Modality=""), 0x0121, "Missing attribute value: Modality"),
        (
            _with(PerformedProcedureStepStatus="COMPLETED"),
            0x0106,
            "N-CREATE status must be IN PROGRESS, not 'COMPLETED'",
        ),
    ],
    ids=["no-status", "no-scheduled-step", "empty-modality", "created-completed"],
)
async def test_n_create_errors(dimse: DimseApp, attributes: Dataset, code: int, comment: str) -> None:
    mpps = new_uid()
    status, attribute_list = await create(dimse, mpps, attributes)
    assert (status.Status, status.ErrorComment) == (code, comment)
    assert attribute_list is None
    assert await store(dimse).get(mpps) is None


async def test_invalid_sop_instance_uid_is_0117(dimse: DimseApp) -> None:
    status, _ = await create(dimse, "1.2.3.abc", n_create(step_attributes(study_uid=new_uid())))
    assert status.Status == 0x0117


async def test_duplicate_n_create_is_0111(dimse: DimseApp) -> None:
    mpps = new_uid()
    attributes = n_create(step_attributes(study_uid=new_uid()))
    assert (await create(dimse, mpps, attributes))[0].Status == 0x0000
    status, _ = await create(dimse, mpps, attributes)
    assert status.Status == 0x0111


async def test_n_set_unknown_instance_is_0112(dimse: DimseApp) -> None:
    status, _ = await update(dimse, new_uid(), n_set_completed(new_uid(), []))
    assert status.Status == 0x0112


async def test_n_set_invalid_status_is_0106(dimse: DimseApp) -> None:
    mpps = new_uid()
    assert (await create(dimse, mpps, n_create(step_attributes(study_uid=new_uid()))))[0].Status == 0x0000
    status, _ = await update(dimse, mpps, n_set_completed(new_uid(), [], status="DONE"))
    assert (status.Status, status.ErrorComment) == (
        0x0106,
        "Status 'DONE' is not one of IN PROGRESS, COMPLETED, DISCONTINUED",
    )
    assert status.AttributeIdentifierList == 0x00400252  # PerformedProcedureStepStatus
    row = await store(dimse).get(mpps)
    assert row is not None and row.status == "IN PROGRESS"


async def test_n_set_keeps_attributes_fixed_at_create(dimse: DimseApp) -> None:
    mpps = new_uid()
    status, _ = await create(dimse, mpps, n_create(step_attributes(study_uid=new_uid())))
    assert status.Status == 0x0000
    change = Dataset()
    change.PerformedProcedureStepDescription = "Changed"
    change.Modality = "CT"  # not allowed in N-SET (PS3.4 Table F.7.2-1): kept as created
    assert (await update(dimse, mpps, change))[0].Status == 0x0000
    row = await store(dimse).get(mpps)
    assert row is not None and row.status == "IN PROGRESS"
    assert '"00080060": {"vr": "CS", "Value": ["MG"]}' in row.dataset_json
    assert '"Value": ["Changed"]' in row.dataset_json


async def test_workitem_refusal_is_0110_and_leaves_the_step_in_progress(dimse: DimseApp) -> None:
    workitem, study = await create_workitem(dimse, "MPPS-4")
    mpps = new_uid()
    status, _ = await create(dimse, mpps, n_create(step_attributes(study_uid=study, step=step_id(workitem))))
    assert status.Status == 0x0000
    # Meanwhile the workitem is canceled server-side: COMPLETED is no longer a valid transition (C300).
    await dimse.app.state.runtime.workitems.set_state(workitem, ProcedureStepState.CANCELED, reason="test")
    status, _ = await update(dimse, mpps, n_set_completed(new_uid(), [new_uid()]))
    assert (status.Status, status.ErrorComment) == (
        0x0110,
        "Workitem C300: The workitem instance can not transition to 'COMP",  # LO: 64 characters
    )
    row = await store(dimse).get(mpps)
    assert row is not None and row.status == "IN PROGRESS"
