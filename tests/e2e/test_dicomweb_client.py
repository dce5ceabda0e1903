"""The Python ``dicomweb-client`` against the real emulator process (azure-behaviour §11; azure-behaviour
§2–azure-behaviour §5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from dicomweb_client import DICOMwebClient
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from tests.e2e.server import Emulator
from tests.factories import CT_IMAGE_STORAGE, make_dataset, new_uid

pytestmark = pytest.mark.e2e

TOKEN = uuid.uuid4().hex[:8]
# Every corpus study carries this description, so searches can be scoped to them exactly.
CORPUS = f"E2E corpus {TOKEN}"
ALL_TS = (("application/dicom", "*"),)
PIXEL_DATA = "7FE00010"
MULTIPLE_INSTANCES_406 = (
    "Accept transfer syntax '1.2.840.10008.1.2.1' is not supported when multiple instances are matched. "
    "Matching instances can be retrieved with their original transfer syntax by specifying "
    "'transfer-syntax=*' in the Accept header."
)


def as_file(ds: Dataset) -> Dataset:
    """Give a factory dataset what a file read from disk has (file meta + preamble), so pydicom can write it."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.preamble = b"\0" * 128
    return ds


@dataclass
class Study:
    key: str
    patient_id: str
    patient_name: str
    study_date: str
    study_uid: str = field(default_factory=new_uid)
    # series UID -> datasets, in store order
    series: dict[str, list[Dataset]] = field(default_factory=dict)

    def add_series(self, count: int, modality: str = "CT", description: str = CORPUS) -> str:
        series_uid = new_uid()
        self.series[series_uid] = [
            as_file(
                make_dataset(
                    study_uid=self.study_uid,
                    series_uid=series_uid,
                    patient_id=self.patient_id,
                    patient_name=self.patient_name,
                    study_date=self.study_date,
                    modality=modality,
                    accession=f"ACC-{self.key}",
                    rows=8,
                    columns=8,
                    StudyDescription=description,
                )
            )
            for _ in range(count)
        ]
        return series_uid

    @property
    def datasets(self) -> list[Dataset]:
        return [ds for group in self.series.values() for ds in group]

    def by_sop(self) -> dict[str, Dataset]:
        return {ds.SOPInstanceUID: ds for ds in self.datasets}


def value(item: dict[str, dict], tag: str) -> object:
    return item[tag]["Value"][0]


def study_uids(results: list[dict[str, dict]]) -> list[str]:
    return [str(value(r, "0020000D")) for r in results]


def http_status(excinfo: pytest.ExceptionInfo[requests.HTTPError]) -> int:
    assert excinfo.value.response is not None
    return excinfo.value.response.status_code


@pytest.fixture(scope="module")
def client(emulator: Emulator) -> DICOMwebClient:
    return DICOMwebClient(url=f"{emulator.base_url}/v2")


@pytest.fixture(scope="module")
def corpus(client: DICOMwebClient) -> dict[str, Study]:
    """Five studies (eight instances) stored with ``store_instances`` in two requests."""
    studies = {
        "alice": Study("alice", f"{TOKEN}-A", "Smith^Alice", "20230105"),
        "bob": Study("bob", f"{TOKEN}-B", "Jones^Bob", "20230610"),
        "carol": Study("carol", f"{TOKEN}-C", "Smithers^Carol", "20240220"),
        "dave": Study("dave", f"{TOKEN}-D", "Brown^Dave", "20221231"),
        "erin": Study("erin", f"{TOKEN}-E", "Smith^Erin", "20230301"),
    }
    studies["alice"].add_series(2, "CT")
    studies["alice"].add_series(1, "MR")
    studies["bob"].add_series(1)
    studies["carol"].add_series(2)
    studies["dave"].add_series(1)
    studies["erin"].add_series(1)
    batches = [
        studies["alice"].datasets + studies["bob"].datasets,
        studies["carol"].datasets + studies["dave"].datasets + studies["erin"].datasets,
    ]
    for batch in batches:
        response = client.store_instances(batch)
        assert "FailedSOPSequence" not in response
        referenced = response.ReferencedSOPSequence
        assert [item.ReferencedSOPInstanceUID for item in referenced] == [ds.SOPInstanceUID for ds in batch]
        assert {item.ReferencedSOPClassUID for item in referenced} == {CT_IMAGE_STORAGE}
    return studies


# --- STOW --------------------------------------------------------------------------------------------


def test_store_response_has_absolute_retrieve_urls(client: DICOMwebClient) -> None:
    study = Study("stow", f"{TOKEN}-S", "Stow^Test", "20200101")
    series_uid = study.add_series(2, description="E2E stow")
    response = client.store_instances(study.datasets, study_instance_uid=study.study_uid)
    # dicomweb-client overrides the Host header with the bare host name (no port) on small, unchunked
    # POSTs; the emulator adds the port it listens on, so the URLs work (issue 9, finding 13).
    assert client.host == "127.0.0.1"
    base = f"http://127.0.0.1:{client.port}/v2"
    assert response.RetrieveURL == f"{base}/studies/{study.study_uid}"
    assert [item.RetrieveURL for item in response.ReferencedSOPSequence] == [
        f"{base}/studies/{study.study_uid}/series/{series_uid}/instances/{ds.SOPInstanceUID}" for ds in study.datasets
    ]
    # v2 items always carry an (empty) FailedAttributesSequence (azure-behaviour §2.4).
    assert all(len(item[0x00741048].value) == 0 for item in response.ReferencedSOPSequence)


def test_store_duplicate_reports_45070(client: DICOMwebClient) -> None:
    study = Study("dup", f"{TOKEN}-DUP", "Dup^Test", "20200101")
    study.add_series(1, description="E2E duplicate")
    client.store_instances(study.datasets)
    with pytest.raises(requests.HTTPError) as excinfo:
        client.store_instances(study.datasets)
    assert http_status(excinfo) == 409
    body = excinfo.value.response.json()  # type: ignore[union-attr]
    assert body["00081198"]["Value"][0]["00081197"] == {"vr": "US", "Value": [45070]}
    assert body["00081198"]["Value"][0]["00081155"] == {"vr": "UI", "Value": [study.datasets[0].SOPInstanceUID]}


# --- QIDO --------------------------------------------------------------------------------------------


def test_search_studies_by_patient_id_returns_exact_v2_attributes(
    client: DICOMwebClient, corpus: dict[str, Study]
) -> None:
    alice = corpus["alice"]
    results = client.search_for_studies(search_filters={"PatientID": alice.patient_id})
    assert results == [
        {
            "00080020": {"vr": "DA", "Value": ["20230105"]},
            "00080050": {"vr": "SH", "Value": ["ACC-alice"]},
            "00080090": {"vr": "PN", "Value": [{"Alphabetic": "Ref^Doctor"}]},
            "00081030": {"vr": "LO", "Value": [CORPUS]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Smith^Alice"}]},
            "00100020": {"vr": "LO", "Value": [alice.patient_id]},
            "00100030": {"vr": "DA", "Value": ["19700101"]},
            "0020000D": {"vr": "UI", "Value": [alice.study_uid]},
        }
    ]


def test_search_studies_by_study_date_range(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    results = client.search_for_studies(search_filters={"StudyDate": "20230101-20231231", "StudyDescription": CORPUS})
    assert sorted(study_uids(results)) == sorted(corpus[k].study_uid for k in ("alice", "bob", "erin"))
    assert sorted(str(value(r, "00080020")) for r in results) == ["20230105", "20230301", "20230610"]
    # Open-ended ranges are inclusive.
    results = client.search_for_studies(search_filters={"StudyDate": "-20230105", "StudyDescription": CORPUS})
    assert sorted(study_uids(results)) == sorted(corpus[k].study_uid for k in ("alice", "dave"))
    results = client.search_for_studies(search_filters={"StudyDate": "20240220-", "StudyDescription": CORPUS})
    assert study_uids(results) == [corpus["carol"].study_uid]


def test_search_studies_patient_name_fuzzy(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    scope = {"StudyDescription": CORPUS}
    smi = client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "smi", **scope})
    assert sorted(study_uids(smi)) == sorted(corpus[k].study_uid for k in ("alice", "carol", "erin"))
    # Prefix of any name word, case-insensitive; several words must all match.
    ali = client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "ALI", **scope})
    assert study_uids(ali) == [corpus["alice"].study_uid]
    two_words = client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "smith er", **scope})
    assert study_uids(two_words) == [corpus["erin"].study_uid]
    # Not a prefix of a word → no match.
    assert client.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "mith", **scope}) == []
    # Without fuzzy matching the whole name must match (case-insensitively).
    assert client.search_for_studies(fuzzymatching=False, search_filters={"PatientName": "smi", **scope}) == []
    exact = client.search_for_studies(search_filters={"PatientName": "smith^alice", **scope})
    assert study_uids(exact) == [corpus["alice"].study_uid]


def test_search_studies_paging(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    scope = {"StudyDescription": CORPUS}
    expected = sorted(s.study_uid for s in corpus.values())
    everything = client.search_for_studies(search_filters=scope, limit=2, get_remaining=True)
    uids = study_uids(everything)
    assert len(uids) == 5
    assert sorted(uids) == expected  # every study exactly once
    # The same order page by page; 204 (→ []) past the end.
    pages = [client.search_for_studies(search_filters=scope, limit=2, offset=offset) for offset in (0, 2, 4, 5)]
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    assert [u for p in pages for u in study_uids(p)] == uids
    # Newest first (azure-behaviour §4.5): the second batch was stored after the first.
    assert uids[:3] == [corpus[k].study_uid for k in ("erin", "dave", "carol")]
    assert sorted(uids[3:]) == sorted(corpus[k].study_uid for k in ("alice", "bob"))


def test_search_series_and_instances_in_study(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    alice = corpus["alice"]
    series_ct, series_mr = list(alice.series)
    series = client.search_for_series(study_instance_uid=alice.study_uid)
    assert sorted((value(s, "0020000E"), value(s, "00080060")) for s in series) == sorted(
        [(series_ct, "CT"), (series_mr, "MR")]
    )
    assert all(value(s, "0020000D") == alice.study_uid for s in series)

    instances = client.search_for_instances(study_instance_uid=alice.study_uid)
    assert sorted(str(value(i, "00080018")) for i in instances) == sorted(alice.by_sop())
    in_series = client.search_for_instances(study_instance_uid=alice.study_uid, series_instance_uid=series_ct)
    assert sorted(str(value(i, "00080018")) for i in in_series) == sorted(
        ds.SOPInstanceUID for ds in alice.series[series_ct]
    )
    mr_only = client.search_for_series(study_instance_uid=alice.study_uid, search_filters={"Modality": "mr"})
    assert [value(s, "0020000E") for s in mr_only] == [series_mr]


def test_search_all_series_and_instances_by_patient(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    carol = corpus["carol"]
    series = client.search_for_series(search_filters={"PatientID": carol.patient_id})
    assert [value(s, "0020000E") for s in series] == list(carol.series)
    instances = client.search_for_instances(search_filters={"PatientID": carol.patient_id}, fields=["InstanceNumber"])
    assert sorted(str(value(i, "00080018")) for i in instances) == sorted(carol.by_sop())
    assert sorted(int(value(i, "00200013")) for i in instances) == sorted(
        int(ds.InstanceNumber) for ds in carol.datasets
    )


# --- WADO --------------------------------------------------------------------------------------------


def assert_same_instance(got: Dataset, sent: Dataset) -> None:
    assert got.SOPInstanceUID == sent.SOPInstanceUID
    assert got.StudyInstanceUID == sent.StudyInstanceUID
    assert got.SeriesInstanceUID == sent.SeriesInstanceUID
    assert got.PatientID == sent.PatientID
    assert got.PatientName == sent.PatientName
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert got.PixelData == sent.PixelData
    assert got.preamble == b"\0" * 128


def test_retrieve_single_instance_study_with_default_accept(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    bob = corpus["bob"]
    # No transfer-syntax in Accept → 1.2.840.10008.1.2.1, fine for a study with one explicit-VR-LE instance.
    instances = client.retrieve_study(bob.study_uid)
    assert len(instances) == 1
    assert_same_instance(instances[0], bob.datasets[0])


def test_retrieve_multi_instance_study_needs_any_transfer_syntax(
    client: DICOMwebClient, corpus: dict[str, Study]
) -> None:
    alice = corpus["alice"]
    with pytest.raises(requests.HTTPError) as excinfo:
        client.retrieve_study(alice.study_uid)
    assert http_status(excinfo) == 406
    assert excinfo.value.response.text == MULTIPLE_INSTANCES_406  # type: ignore[union-attr]

    instances = client.retrieve_study(alice.study_uid, media_types=ALL_TS)
    sent = alice.by_sop()
    assert sorted(ds.SOPInstanceUID for ds in instances) == sorted(sent)
    for ds in instances:
        assert_same_instance(ds, sent[ds.SOPInstanceUID])


def test_retrieve_series(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    alice = corpus["alice"]
    series_ct, series_mr = list(alice.series)
    single = client.retrieve_series(alice.study_uid, series_mr)
    assert [ds.SOPInstanceUID for ds in single] == [alice.series[series_mr][0].SOPInstanceUID]
    both = client.retrieve_series(alice.study_uid, series_ct, media_types=ALL_TS)
    assert sorted(ds.SOPInstanceUID for ds in both) == sorted(ds.SOPInstanceUID for ds in alice.series[series_ct])


def test_retrieve_instance(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    carol = corpus["carol"]
    sent = carol.datasets[1]
    got = client.retrieve_instance(carol.study_uid, sent.SeriesInstanceUID, sent.SOPInstanceUID)
    assert_same_instance(got, sent)
    assert got.StudyDate == "20240220"
    assert got.Rows == 8 and got.Columns == 8


def test_retrieve_unknown_instance_is_404(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    carol = corpus["carol"]
    series_uid = next(iter(carol.series))
    with pytest.raises(requests.HTTPError) as excinfo:
        client.retrieve_instance(carol.study_uid, series_uid, new_uid())
    assert http_status(excinfo) == 404
    assert excinfo.value.response.text == "The specified instance cannot be found."  # type: ignore[union-attr]


def assert_metadata_matches(item: dict[str, dict], sent: Dataset) -> None:
    assert PIXEL_DATA not in item
    assert item["00100020"] == {"vr": "LO", "Value": [sent.PatientID]}
    assert item["00080018"] == {"vr": "UI", "Value": [sent.SOPInstanceUID]}
    parsed = Dataset.from_json(item)
    for element in sent:
        if element.tag == 0x7FE00010:
            continue
        assert element.tag in parsed, element
        assert parsed[element.tag].value == element.value, element


def test_retrieve_study_metadata(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    alice = corpus["alice"]
    metadata = client.retrieve_study_metadata(alice.study_uid)
    sent = alice.by_sop()
    assert sorted(str(value(m, "00080018")) for m in metadata) == sorted(sent)
    for item in metadata:
        assert_metadata_matches(item, sent[str(value(item, "00080018"))])


def test_retrieve_series_and_instance_metadata(client: DICOMwebClient, corpus: dict[str, Study]) -> None:
    erin = corpus["erin"]
    sent = erin.datasets[0]
    series_meta = client.retrieve_series_metadata(erin.study_uid, sent.SeriesInstanceUID)
    assert len(series_meta) == 1
    assert_metadata_matches(series_meta[0], sent)
    item = client.retrieve_instance_metadata(erin.study_uid, sent.SeriesInstanceUID, sent.SOPInstanceUID)
    assert isinstance(item, dict)
    assert_metadata_matches(item, sent)
    assert item == series_meta[0]


# --- DELETE ------------------------------------------------------------------------------------------


@pytest.fixture
def doomed(client: DICOMwebClient) -> Iterator[Study]:
    """A fresh study (two series: three instances + one) for the delete tests."""
    study = Study("doomed", f"{TOKEN}-X-{uuid.uuid4().hex[:6]}", "Doomed^Study", "20190101")
    study.add_series(3, description="E2E delete")
    study.add_series(1, description="E2E delete")
    client.store_instances(study.datasets)
    yield study


def test_delete_instance(client: DICOMwebClient, doomed: Study) -> None:
    series_uid = next(iter(doomed.series))
    victim, *rest = doomed.series[series_uid]
    client.delete_instance(doomed.study_uid, series_uid, victim.SOPInstanceUID)
    with pytest.raises(requests.HTTPError) as excinfo:
        client.retrieve_instance(doomed.study_uid, series_uid, victim.SOPInstanceUID)
    assert http_status(excinfo) == 404
    with pytest.raises(requests.HTTPError) as excinfo:
        client.retrieve_instance_metadata(doomed.study_uid, series_uid, victim.SOPInstanceUID)
    assert http_status(excinfo) == 404
    left = client.search_for_instances(study_instance_uid=doomed.study_uid, series_instance_uid=series_uid)
    assert sorted(str(value(i, "00080018")) for i in left) == sorted(ds.SOPInstanceUID for ds in rest)
    assert client.search_for_instances(search_filters={"SOPInstanceUID": victim.SOPInstanceUID}) == []
    with pytest.raises(requests.HTTPError) as excinfo:
        client.delete_instance(doomed.study_uid, series_uid, victim.SOPInstanceUID)
    assert http_status(excinfo) == 404


def test_delete_series(client: DICOMwebClient, doomed: Study) -> None:
    gone, kept = list(doomed.series)
    client.delete_series(doomed.study_uid, gone)
    assert [value(s, "0020000E") for s in client.search_for_series(study_instance_uid=doomed.study_uid)] == [kept]
    with pytest.raises(requests.HTTPError) as excinfo:
        client.retrieve_series(doomed.study_uid, gone, media_types=ALL_TS)
    assert http_status(excinfo) == 404
    assert excinfo.value.response.text == "The specified series cannot be found."  # type: ignore[union-attr]
    remaining = client.retrieve_study(doomed.study_uid)
    assert [ds.SOPInstanceUID for ds in remaining] == [doomed.series[kept][0].SOPInstanceUID]
    with pytest.raises(requests.HTTPError) as excinfo:
        client.delete_series(doomed.study_uid, gone)
    assert http_status(excinfo) == 404


def test_delete_study(client: DICOMwebClient, doomed: Study) -> None:
    assert len(client.search_for_studies(search_filters={"PatientID": doomed.patient_id})) == 1
    client.delete_study(doomed.study_uid)
    assert client.search_for_studies(search_filters={"PatientID": doomed.patient_id}) == []
    assert client.search_for_instances(search_filters={"PatientID": doomed.patient_id}) == []
    with pytest.raises(requests.HTTPError) as excinfo:
        client.retrieve_study(doomed.study_uid, media_types=ALL_TS)
    assert http_status(excinfo) == 404
    assert excinfo.value.response.text == "The specified study cannot be found."  # type: ignore[union-attr]
    with pytest.raises(requests.HTTPError) as excinfo:
        client.retrieve_study_metadata(doomed.study_uid)
    assert http_status(excinfo) == 404
    with pytest.raises(requests.HTTPError) as excinfo:
        client.delete_study(doomed.study_uid)
    assert http_status(excinfo) == 404
    # Stored again after the delete: a new instance, not a 45070 conflict.
    response = client.store_instances(doomed.datasets[:1])
    assert "FailedSOPSequence" not in response
    assert len(client.search_for_instances(study_instance_uid=doomed.study_uid)) == 1
