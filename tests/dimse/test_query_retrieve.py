"""Study Root C-FIND (the QIDO query engine, with C-FIND's wild cards and UID lists) and C-GET over the index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless

from dicom_emulator.config import Settings
from tests.dimse import scu
from tests.dimse.conftest import DimseApp, started
from tests.dimse.test_store import with_meta
from tests.factories import CT_IMAGE_STORAGE, make_dataset, new_uid

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@dataclass
class Archive:
    study_a: str
    study_b: str
    ct_series: str
    mr_series: str
    ct_sops: list[str]
    mr_sop: str
    b_sop: str


@pytest.fixture
def dimse(request: pytest.FixtureRequest, backend: str) -> DimseApp:
    """Tests that take ``archive`` only query and retrieve it: they share one emulator and archive per module (per
    backend). The other tests store instances of their own, or must see an empty store: a fresh emulator each."""
    return request.getfixturevalue("module_dimse" if "archive" in request.fixturenames else "fresh_dimse")  # type: ignore[no-any-return]


@pytest.fixture
async def fresh_dimse(settings: Settings) -> AsyncIterator[DimseApp]:
    async with started(settings) as running:
        yield running


@pytest.fixture(scope="module")
async def archive(module_dimse: DimseApp) -> Archive:
    """Study A (Doe^John): a CT series of two images and an MR series of one; study B (Smith^Jane): one CT."""
    a, b, ct, mr = new_uid(), new_uid(), new_uid(), new_uid()
    ct1 = make_dataset(study_uid=a, series_uid=ct, patient_id="PAT-A", study_date="20240110", InstanceNumber=1)
    ct2 = make_dataset(study_uid=a, series_uid=ct, patient_id="PAT-A", study_date="20240110", InstanceNumber=2)
    mr1 = make_dataset(study_uid=a, series_uid=mr, patient_id="PAT-A", study_date="20240110", modality="MR")
    mr1.SOPClassUID = MR_IMAGE_STORAGE
    mr1.SeriesDescription = "Knee MR"
    other = make_dataset(study_uid=b, patient_id="PAT-B", patient_name="Smith^Jane", study_date="20240220")
    datasets = [with_meta(ds) for ds in (ct1, ct2, mr1, other)]
    statuses = await asyncio.to_thread(scu.store, module_dimse.port, datasets)
    assert [s.Status for s in statuses] == [0, 0, 0, 0]
    return Archive(a, b, ct, mr, [ct1.SOPInstanceUID, ct2.SOPInstanceUID], mr1.SOPInstanceUID, other.SOPInstanceUID)


def identifier(level: str, **keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


async def find(dimse: DimseApp, ds: Dataset) -> tuple[list[Dataset], int]:
    responses = await asyncio.to_thread(scu.find, dimse.port, ds)
    pending = [ident for status, ident in responses[:-1] if status == 0xFF00]
    assert len(pending) == len(responses) - 1
    assert pending is not None
    return pending, responses[-1][0]  # type: ignore[return-value]


async def test_study_level_wildcard_returns_the_requested_keys(dimse: DimseApp, archive: Archive) -> None:
    query = identifier(
        "STUDY",
        PatientName="doe*",
        StudyInstanceUID="",
        PatientID="",
        StudyDate="",
        ModalitiesInStudy="",
        NumberOfStudyRelatedInstances="",
        StudyTime="",
        AccessionNumber="",
        RetrieveAETitle="",
    )
    results, final = await find(dimse, query)
    assert final == 0x0000
    assert len(results) == 1
    (study,) = results
    assert {elem.keyword for elem in study} == {
        "SpecificCharacterSet", "QueryRetrieveLevel", "RetrieveAETitle", "StudyDate", "StudyTime", "AccessionNumber",
        "ModalitiesInStudy", "PatientName", "PatientID", "StudyInstanceUID", "NumberOfStudyRelatedInstances",
    }  # fmt: skip
    assert study.QueryRetrieveLevel == "STUDY"
    assert study.StudyInstanceUID == archive.study_a
    assert study.PatientName == "Doe^John"
    assert study.PatientID == "PAT-A"
    assert study.StudyDate == "20240110"
    assert study.StudyTime == "101010"
    assert study.AccessionNumber == "ACC1"
    assert list(study.ModalitiesInStudy) == ["CT", "MR"]
    assert study.NumberOfStudyRelatedInstances == 3
    assert study.RetrieveAETitle == "DICOM_EMULATOR"
    assert study.SpecificCharacterSet == "ISO_IR 192"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, {"a", "b"}),  # universal matching
        ({"PatientName": "*"}, {"a", "b"}),  # '*' alone is universal (C.2.2.2.4)
        ({"PatientName": "SMITH^JANE"}, {"b"}),  # single value, case-insensitive as QIDO
        ({"PatientName": "?oe^J*"}, {"a"}),  # '?' is one character
        ({"PatientID": "PAT-?"}, {"a", "b"}),
        ({"StudyDate": "20240201-"}, {"b"}),  # open range (C.2.2.2.5)
        ({"StudyDate": "20240101-20240131"}, {"a"}),
        ({"StudyDate": "-20240110"}, {"a"}),
        ({"ModalitiesInStudy": "MR"}, {"a"}),
        ({"AccessionNumber": "NONE"}, set()),
    ],
)
async def test_study_level_matching(
    dimse: DimseApp, archive: Archive, keys: dict[str, str], expected: set[str]
) -> None:
    results, final = await find(dimse, identifier("STUDY", StudyInstanceUID="", **keys))
    names = {archive.study_a: "a", archive.study_b: "b"}
    assert final == 0x0000
    assert sorted(names[r.StudyInstanceUID] for r in results) == sorted(expected)


async def test_study_uid_list(dimse: DimseApp, archive: Archive) -> None:
    results, _ = await find(dimse, identifier("STUDY", StudyInstanceUID=[archive.study_a, archive.study_b]))
    assert sorted(r.StudyInstanceUID for r in results) == sorted([archive.study_a, archive.study_b])


async def test_series_level(dimse: DimseApp, archive: Archive) -> None:
    query = identifier(
        "SERIES",
        StudyInstanceUID=archive.study_a,
        SeriesInstanceUID="",
        Modality="",
        SeriesDescription="",
        NumberOfSeriesRelatedInstances="",
    )
    results, final = await find(dimse, query)
    assert final == 0x0000
    by_series = {r.SeriesInstanceUID: r for r in results}
    assert set(by_series) == {archive.ct_series, archive.mr_series}
    assert by_series[archive.ct_series].Modality == "CT"
    assert by_series[archive.ct_series].NumberOfSeriesRelatedInstances == 2
    assert by_series[archive.mr_series].SeriesDescription == "Knee MR"
    assert by_series[archive.mr_series].QueryRetrieveLevel == "SERIES"

    # Modality is indexed (SQL); SeriesDescription is not (matched on the stored metadata): both allow wild cards.
    results, _ = await find(dimse, identifier("SERIES", StudyInstanceUID=archive.study_a, Modality="M?"))
    assert [r.SeriesInstanceUID for r in results] == [archive.mr_series]
    results, _ = await find(dimse, identifier("SERIES", StudyInstanceUID="", SeriesDescription="*KNEE*"))
    assert [r.SeriesInstanceUID for r in results] == [archive.mr_series]


async def test_image_level(dimse: DimseApp, archive: Archive) -> None:
    query = identifier(
        "IMAGE",
        StudyInstanceUID=archive.study_a,
        SeriesInstanceUID=archive.ct_series,
        SOPInstanceUID="",
        SOPClassUID="",
        InstanceNumber="",
    )
    results, final = await find(dimse, query)
    assert final == 0x0000
    assert sorted((int(r.InstanceNumber), r.SOPInstanceUID, r.SOPClassUID) for r in results) == [
        (1, archive.ct_sops[0], CT_IMAGE_STORAGE),
        (2, archive.ct_sops[1], CT_IMAGE_STORAGE),
    ]
    # InstanceNumber (IS) is matched on the metadata.
    query.InstanceNumber = "2"
    results, _ = await find(dimse, query)
    assert [r.SOPInstanceUID for r in results] == [archive.ct_sops[1]]
    # A list of SOP Instance UIDs across series.
    results, _ = await find(dimse, identifier("IMAGE", SOPInstanceUID=[archive.mr_sop, archive.b_sop]))
    assert sorted(r.SOPInstanceUID for r in results) == sorted([archive.mr_sop, archive.b_sop])


@pytest.mark.parametrize(
    "keys",
    [
        {"QueryRetrieveLevel": "PATIENT"},  # not a Study Root level
        {"StudyDate": "2024-01-10"},  # not a date range
        {"StudyTime": "1010-0909"},  # an inverted range, on a key matched on the metadata
        {"StudyInstanceUID": "1.2.3\\1.2.abc"},  # a list of UIDs with an invalid one
    ],
)
async def test_invalid_identifier_is_a900(dimse: DimseApp, archive: Archive, keys: dict[str, str]) -> None:
    query = identifier("STUDY", PatientName="")
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    responses = await asyncio.to_thread(scu.find, dimse.port, query)
    assert [status for status, _ in responses] == [0xA900]


async def test_missing_level_is_a900(dimse: DimseApp) -> None:
    query = Dataset()
    query.PatientName = ""
    responses = await asyncio.to_thread(scu.find, dimse.port, query)
    assert [status for status, _ in responses] == [0xA900]


# --- C-GET ----------------------------------------------------------------------------------------------------


async def test_get_study(dimse: DimseApp, archive: Archive) -> None:
    result = await asyncio.to_thread(
        scu.get, dimse.port, identifier("STUDY", StudyInstanceUID=archive.study_a), [CT_IMAGE_STORAGE, MR_IMAGE_STORAGE]
    )
    assert result.final.Status == 0x0000
    assert result.final.NumberOfCompletedSuboperations == 3
    assert result.final.NumberOfFailedSuboperations == 0
    assert sorted(ds.SOPInstanceUID for ds in result.received) == sorted([*archive.ct_sops, archive.mr_sop])
    assert {ds.PatientID for ds in result.received} == {"PAT-A"}


async def test_get_images_by_uid_list(dimse: DimseApp, archive: Archive) -> None:
    query = identifier(
        "IMAGE", StudyInstanceUID=archive.study_a, SeriesInstanceUID=archive.ct_series, SOPInstanceUID=archive.ct_sops
    )
    result = await asyncio.to_thread(scu.get, dimse.port, query, [CT_IMAGE_STORAGE])
    assert (result.final.Status, result.final.NumberOfCompletedSuboperations) == (0x0000, 2)
    assert sorted(ds.SOPInstanceUID for ds in result.received) == sorted(archive.ct_sops)


async def test_get_unknown_study_is_success_with_no_suboperations(dimse: DimseApp, archive: Archive) -> None:
    result = await asyncio.to_thread(
        scu.get, dimse.port, identifier("STUDY", StudyInstanceUID=new_uid()), [CT_IMAGE_STORAGE]
    )
    assert result.final.Status == 0x0000
    assert result.received == []


async def test_get_without_unique_key_is_a900(dimse: DimseApp, archive: Archive) -> None:
    result = await asyncio.to_thread(
        scu.get, dimse.port, identifier("SERIES", StudyInstanceUID=archive.study_a), [CT_IMAGE_STORAGE]
    )
    assert result.final.Status == 0xA900
    assert result.received == []


async def test_get_sub_operation_refused_by_peer_counts_as_failed(dimse: DimseApp, archive: Archive) -> None:
    # The peer accepts only MR storage: the CT image cannot be sent.
    query = identifier("SERIES", StudyInstanceUID=archive.study_a, SeriesInstanceUID=archive.ct_series)
    result = await asyncio.to_thread(scu.get, dimse.port, query, [MR_IMAGE_STORAGE])
    assert result.final.Status == 0xA702  # every sub-operation failed
    assert result.final.NumberOfFailedSuboperations == 2
    assert sorted(result.failed_uids) == sorted(archive.ct_sops)


async def test_get_decompresses_for_a_peer_without_the_stored_syntax(dimse: DimseApp) -> None:
    original = dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    assert original.file_meta.TransferSyntaxUID == JPEGLSLossless
    assert [s.Status for s in await asyncio.to_thread(scu.store, dimse.port, [original], [JPEGLSLossless])] == [0]
    query = identifier("STUDY", StudyInstanceUID=original.StudyInstanceUID)
    result = await asyncio.to_thread(scu.get, dimse.port, query, [original.SOPClassUID], [ExplicitVRLittleEndian])
    assert (result.final.Status, len(result.received)) == (0x0000, 1)
    received = result.received[0]
    assert received.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert (received.pixel_array == original.pixel_array).all()

    # A peer that accepts JPEG-LS gets the stored bytes.
    result = await asyncio.to_thread(scu.get, dimse.port, query, [original.SOPClassUID], [JPEGLSLossless])
    assert result.received[0].file_meta.TransferSyntaxUID == JPEGLSLossless
    assert result.received[0].PixelData == original.PixelData


async def test_in_memory_store_find_and_get(tmp_path: Path) -> None:
    """``--in-memory``: blobs live in memory, so C-GET reads them through the event loop."""
    async with started(Settings(in_memory=True, data_dir=tmp_path / "unused")) as memory:
        ds = with_meta(make_dataset(patient_id="MEM-1"))
        assert [s.Status for s in await asyncio.to_thread(scu.store, memory.port, [ds])] == [0x0000]
        results, final = await find(memory, identifier("STUDY", PatientID="MEM-1", StudyInstanceUID=""))
        assert (final, [r.StudyInstanceUID for r in results]) == (0x0000, [ds.StudyInstanceUID])
        query = identifier("STUDY", StudyInstanceUID=ds.StudyInstanceUID)
        result = await asyncio.to_thread(scu.get, memory.port, query, [CT_IMAGE_STORAGE])
        assert (result.final.Status, [r.SOPInstanceUID for r in result.received]) == (0x0000, [ds.SOPInstanceUID])
        assert result.received[0].PixelData == ds.PixelData
