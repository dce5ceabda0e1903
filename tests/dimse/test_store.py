"""C-ECHO and C-STORE through the DIMSE gateway: the same store as STOW v2 (validation, index, change feed)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tests.dimse import scu
from tests.dimse.conftest import DimseApp
from tests.factories import make_dataset, new_uid

WADO_ANY = {"Accept": "application/dicom; transfer-syntax=*"}


def with_meta(ds, syntax=ExplicitVRLittleEndian):  # type: ignore[no-untyped-def]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    return ds


def instance_url(ds) -> str:  # type: ignore[no-untyped-def]
    return f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


async def test_echo(dimse: DimseApp) -> None:
    assert await asyncio.to_thread(scu.echo, dimse.port) == 0x0000


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian], ids=["explicit", "implicit"])
async def test_store_is_visible_through_qido_wado_and_change_feed(dimse: DimseApp, syntax: str) -> None:
    ds = with_meta(make_dataset(patient_id="DIMSE-1"), syntax)
    statuses = await asyncio.to_thread(scu.store, dimse.port, [ds], [syntax])
    assert [s.Status for s in statuses] == [0x0000]

    r = await dimse.client.get(
        "/v2/instances", params={"PatientID": "DIMSE-1"}, headers={"Accept": "application/dicom+json"}
    )
    assert r.status_code == 200
    assert [hit["00080018"]["Value"] for hit in r.json()] == [[ds.SOPInstanceUID]]

    r = await dimse.client.get(instance_url(ds), headers=WADO_ANY)
    assert r.status_code == 200
    stored = dcmread(io.BytesIO(r.content))
    assert stored.file_meta.TransferSyntaxUID == syntax
    assert stored.PixelData == ds.PixelData
    assert stored.PatientName == "Doe^John"

    feed = (await dimse.client.get("/v2/changefeed")).json()
    assert [(e["action"], e["state"], e["sopInstanceUid"]) for e in feed] == [("Create", "Current", ds.SOPInstanceUID)]


COMPRESSED = [
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG Baseline (Process 1)
    "JPEG-lossy.dcm",  # JPEG Extended (Process 2 and 4)
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG Lossless SV1
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS Lossless
    "JPEGLSNearLossless_16.dcm",  # JPEG-LS Near-Lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 Lossless
    "JPEG2000.dcm",  # JPEG 2000
    "MR_small_RLE.dcm",  # RLE Lossless
]


@pytest.mark.parametrize("name", COMPRESSED)
async def test_store_compressed_as_sent(dimse: DimseApp, name: str) -> None:
    original = dcmread(get_testdata_file(name))
    syntax = original.file_meta.TransferSyntaxUID
    # Some pydicom test files lack identifiers the store requires (STOW would fail them too).
    original.StudyInstanceUID = original.get("StudyInstanceUID") or new_uid()
    original.SeriesInstanceUID = original.get("SeriesInstanceUID") or new_uid()
    original.PatientID = original.get("PatientID") or "PID-COMPRESSED"
    statuses = await asyncio.to_thread(scu.store, dimse.port, [original], [syntax])
    assert [(s.Status, s.get("ErrorComment")) for s in statuses] == [(0x0000, None)]

    r = await dimse.client.get(instance_url(original), headers=WADO_ANY)
    assert r.status_code == 200
    stored = dcmread(io.BytesIO(r.content))
    # Kept in the transfer syntax it was sent in, pixel data byte for byte.
    assert stored.file_meta.TransferSyntaxUID == syntax
    assert stored.PixelData == original.PixelData
    assert stored.SOPInstanceUID == original.SOPInstanceUID


async def test_duplicate_is_success_without_a_second_copy(dimse: DimseApp) -> None:
    ds = with_meta(make_dataset())
    first = await asyncio.to_thread(scu.store, dimse.port, [ds])
    again = await asyncio.to_thread(scu.store, dimse.port, [ds, ds])
    assert [s.Status for s in first + again] == [0x0000, 0x0000, 0x0000]
    feed = (await dimse.client.get("/v2/changefeed")).json()
    assert [(e["action"], e["sopInstanceUid"]) for e in feed] == [("Create", ds.SOPInstanceUID)]
    r = await dimse.client.get(
        f"/v2/studies/{ds.StudyInstanceUID}/instances", headers={"Accept": "application/dicom+json"}
    )
    assert len(r.json()) == 1


async def test_invalid_instance_is_a900_with_the_validation_comment(dimse: DimseApp) -> None:
    ds = with_meta(make_dataset(patient_id="INVALID-1"))
    ds.StudyInstanceUID = "1.2.3.abc"
    statuses = await asyncio.to_thread(scu.store, dimse.port, [ds])
    assert statuses[0].Status == 0xA900
    assert statuses[0].ErrorComment == "DICOM100: (0020,000d) - Dicom element 'StudyInstanceUID' failed"  # LO: 64 chars
    r = await dimse.client.get(
        "/v2/instances", params={"PatientID": "INVALID-1"}, headers={"Accept": "application/dicom+json"}
    )
    assert r.status_code == 204
    assert (await dimse.client.get("/v2/changefeed")).json() == []


async def test_spool_is_empty_after_stores(dimse: DimseApp) -> None:
    good, bad = with_meta(make_dataset()), with_meta(make_dataset())
    bad.SeriesInstanceUID = "x"
    statuses = await asyncio.to_thread(scu.store, dimse.port, [good, bad])
    assert [s.Status for s in statuses] == [0x0000, 0xA900]
    runtime = dimse.app.state.runtime
    assert [p for p in runtime.spool_dir.iterdir() if p.is_file() and not p.name.startswith(".")] == []


async def test_large_instance_in_pdus_of_a_mebibyte_arrives_byte_for_byte(dimse: DimseApp) -> None:
    # 1200 x 1200 x 16 bits = 2.9 MB: P-DATA PDUs of the gateway's 1 MiB maximum, each read in many pieces
    # (gateway.GatewaySocket.recv fills one buffer per PDU).
    ds = with_meta(make_dataset(patient_id="LARGE-1", rows=1200, columns=1200))
    assert len(ds.PixelData) == 1200 * 1200 * 2
    statuses = await asyncio.to_thread(scu.store, dimse.port, [ds])
    assert [s.Status for s in statuses] == [0x0000]
    r = await dimse.client.get(instance_url(ds), headers=WADO_ANY)
    assert r.status_code == 200
    stored = dcmread(io.BytesIO(r.content))
    assert stored.PixelData == ds.PixelData


async def test_received_data_sets_are_written_into_the_spool(dimse: DimseApp, monkeypatch: pytest.MonkeyPatch) -> None:
    from pynetdicom import dimse_messages

    made: list[object] = []
    create = dimse_messages.NamedTemporaryFile

    def recording(*args: object, **kwargs: object) -> object:
        made.append(create(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(dimse_messages, "NamedTemporaryFile", recording)
    ds = with_meta(make_dataset(patient_id="SPOOLED-1"))
    assert [s.Status for s in await asyncio.to_thread(scu.store, dimse.port, [ds])] == [0x0000]
    spool_dir = dimse.app.state.runtime.spool_dir
    # The gateway's reader wrote the data set into this app's spool (no file in the system temp dir).
    assert [type(f).__name__ for f in made] == ["SpooledTemporaryFile"]
    assert Path(made[0].name).parent == spool_dir  # type: ignore[attr-defined]
    assert not Path(made[0].name).exists()  # consumed: moved into the blob store
