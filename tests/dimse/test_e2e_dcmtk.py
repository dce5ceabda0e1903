"""The breast-screening workflow end to end against the real ``dicom-emulator serve --dimse-port`` process.

A workitem is scheduled through UPS-RS; the modality (dcmtk's ``findscu -W``) reads it from the worklist, reports
the procedure step with MPPS (pynetdicom), sends three images with ``storescu`` and completes the step. The
workitem is then COMPLETED in UPS-RS and the images are in QIDO, WADO and the change feed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from pydicom import Dataset, dcmread

from dicom_emulator.config import DEFAULT_AE_TITLE
from tests.dimse import scu, workitems
from tests.dimse.test_mpps import MG_FOR_PRESENTATION, n_create, n_set_completed, step_attributes
from tests.dimse.test_store import with_meta
from tests.e2e.server import Emulator, EmulatorStartError, free_port, running_emulator
from tests.factories import make_dataset, new_uid

pytestmark = pytest.mark.e2e

DCMTK_TIMEOUT = 60  # seconds per dcmtk command
_START_ATTEMPTS = 3


@pytest.fixture(scope="module")
def dcmtk() -> None:
    missing = [tool for tool in ("echoscu", "findscu", "storescu") if shutil.which(tool) is None]
    if missing:
        message = f"dcmtk tools not installed ({', '.join(missing)}): apt-get install -y dcmtk"
        if os.environ.get("DICOM_EMULATOR_TEST_REQUIRE_DCMTK") == "1":
            pytest.fail(message + " — DICOM_EMULATOR_TEST_REQUIRE_DCMTK=1 forbids skipping")
        pytest.skip(message)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, dcmtk: None) -> Iterator[tuple[Emulator, int]]:
    """The real process with ``--dimse-port`` on a probed free port (a new one if another process took it)."""
    for attempt in range(_START_ATTEMPTS):
        data_dir = tmp_path_factory.mktemp("dimse-e2e") / "data"
        port = free_port()
        with ExitStack() as stack:
            try:
                emulator = stack.enter_context(running_emulator(data_dir, "--dimse-port", str(port)))
            except EmulatorStartError as exc:
                if "address already in use" in str(exc).lower() and attempt < _START_ATTEMPTS - 1:
                    continue
                pytest.fail(str(exc), pytrace=False)
            yield emulator, port
            return


@pytest.fixture(scope="module")
def http(gateway: tuple[Emulator, int]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway[0].base_url, timeout=30) as client:
        yield client


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=DCMTK_TIMEOUT, cwd=cwd, check=False)


def worklist_find(port: int, out: Path, *keys: str) -> list[Dataset]:
    """``findscu -W`` with ``keys``; the responses it extracted (-X), in order."""
    out.mkdir(parents=True, exist_ok=True)
    command = ["findscu", "-W", "-aec", DEFAULT_AE_TITLE, "-X", "-od", str(out)]
    for key in keys:
        command += ["-k", key]
    result = run(*command, "127.0.0.1", str(port))
    assert result.returncode == 0, result.stderr
    return [dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


def test_echoscu(gateway: tuple[Emulator, int]) -> None:
    _, port = gateway
    result = run("echoscu", "-aec", DEFAULT_AE_TITLE, "127.0.0.1", str(port))
    assert (result.returncode, result.stderr) == (0, "")


def test_breast_screening_workflow(gateway: tuple[Emulator, int], http: httpx.Client, tmp_path: Path) -> None:
    _, port = gateway
    study = new_uid()
    uid = new_uid()
    body = workitems.ups_derived_body(uid, patient_id="E2E-1", accession="ACC-E2E", study_uid=study)
    r = http.post(f"/v2/workitems?{uid}", content=json.dumps([body]).encode(), headers=workitems.DICOM_JSON)
    assert r.status_code == 201, r.text

    # 1. The modality reads its worklist (Modality MG, today's date range) with findscu -W.
    keys = [
        "PatientName",
        "PatientID=E2E-1",
        "AccessionNumber",
        "StudyInstanceUID",
        "RequestedProcedureID",
        "ScheduledProcedureStepSequence[0].Modality=MG",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20240101-20240131",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription",
    ]
    (item,) = worklist_find(port, tmp_path / "worklist", *keys)
    assert (item.PatientName, item.PatientID, item.AccessionNumber) == ("Doe^Jane", "E2E-1", "ACC-E2E")
    assert (item.StudyInstanceUID, item.RequestedProcedureID) == (study, "RP-001")
    (step,) = item.ScheduledProcedureStepSequence
    assert (step.Modality, step.ScheduledStationAETitle) == ("MG", "MG_ROOM_1")
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == ("20240115", "083000")
    assert step.ScheduledProcedureStepDescription == "Screening mammography"
    assert len(step.ScheduledProcedureStepID) == 16

    # 2. MPPS N-CREATE (IN PROGRESS) with the values the worklist gave: the workitem is claimed.
    mpps = new_uid()
    scheduled = step_attributes(study_uid=item.StudyInstanceUID, step=step.ScheduledProcedureStepID)
    scheduled.AccessionNumber = item.AccessionNumber
    status, _ = scu.mpps_create(port, mpps, n_create(scheduled))
    assert status.Status == 0x0000
    assert workitems.state(_get_workitem(http, uid)) == "IN PROGRESS"

    # 3. Three images with storescu.
    series = new_uid()
    files, sops = [], []
    for view in ("LCC", "LMLO", "RCC"):
        ds = make_dataset(study_uid=study, series_uid=series, patient_id="E2E-1", modality="MG", accession="ACC-E2E")
        ds.SOPClassUID = MG_FOR_PRESENTATION
        ds.ViewPosition = view[1:]
        ds.ImageLaterality = view[0]
        path = tmp_path / f"{view}.dcm"
        with_meta(ds).save_as(path, enforce_file_format=True)
        files.append(str(path))
        sops.append(ds.SOPInstanceUID)
    result = run("storescu", "-aec", DEFAULT_AE_TITLE, "127.0.0.1", str(port), *files)
    assert result.returncode == 0, result.stderr

    # 4. MPPS N-SET COMPLETED with the images: the workitem is completed.
    status, _ = scu.mpps_set(port, mpps, n_set_completed(series, sops))
    assert status.Status == 0x0000
    done = _get_workitem(http, uid)
    assert workitems.state(done) == "COMPLETED"
    (output,) = done["00741216"]["Value"][0]["00404033"]["Value"]
    assert [ref["00081155"]["Value"][0] for ref in output["00081199"]["Value"]] == sops

    # 5. The worklist no longer lists it.
    assert worklist_find(port, tmp_path / "after", "PatientID=E2E-1", "ScheduledProcedureStepSequence") == []

    # 6. The images through QIDO, WADO and the change feed.
    r = http.get(f"/v2/studies/{study}/instances", headers={"Accept": "application/dicom+json"})
    assert r.status_code == 200
    assert sorted(hit["00080018"]["Value"][0] for hit in r.json()) == sorted(sops)
    for sop in sops:
        r = http.get(f"/v2/studies/{study}/series/{series}/instances/{sop}", headers={"Accept": "application/dicom"})
        assert r.status_code == 200
        assert dcmread(io.BytesIO(r.content)).SOPInstanceUID == sop
    feed = http.get("/v2/changefeed").json()
    assert [(e["action"], e["state"], e["sopInstanceUid"]) for e in feed] == [("Create", "Current", s) for s in sops]

    # 7. And through a Study Root C-FIND with findscu -S.
    out = tmp_path / "studies"
    out.mkdir()
    result = run(
        "findscu", "-S", "-aec", DEFAULT_AE_TITLE, "-X", "-od", str(out),
        "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=E2E-*", "-k", "StudyInstanceUID",
        "-k", "NumberOfStudyRelatedInstances", "-k", "ModalitiesInStudy",
        "127.0.0.1", str(port),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (answer,) = [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]
    assert (answer.StudyInstanceUID, answer.NumberOfStudyRelatedInstances, answer.ModalitiesInStudy) == (study, 3, "MG")


def _get_workitem(http: httpx.Client, uid: str) -> dict[str, object]:
    r = http.get(f"/v2/workitems/{uid}", headers={"Accept": "application/dicom+json"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]
