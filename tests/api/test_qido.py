"""QIDO-RS through the HTTP API (azure-behaviour §4), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.factories import make_dataset, multipart, new_uid, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}


async def store(client: httpx.AsyncClient, *datasets: object) -> None:
    body, ctype = multipart([to_bytes(ds) for ds in datasets])  # type: ignore[arg-type]
    r = await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code in (200, 202), r.text


@pytest.fixture(scope="module")
def client(module_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Every test here only searches: one app and one corpus serve the whole module (per backend)."""
    return module_client


@pytest.fixture(scope="module")
async def corpus(client: httpx.AsyncClient) -> AsyncIterator[dict[str, str]]:
    """Three studies: A (CT+MR, 3 instances), B (CT, 1), C (US, 1, accented name)."""
    a, b, c = new_uid(), new_uid(), new_uid()
    a_ct, a_mr = new_uid(), new_uid()
    await store(
        client,
        make_dataset(study_uid=a, series_uid=a_ct, patient_id="P1", patient_name="Doe^John", study_date="20200105"),
        make_dataset(study_uid=a, series_uid=a_ct, patient_id="P1", patient_name="Doe^John", study_date="20200105"),
        make_dataset(
            study_uid=a, series_uid=a_mr, modality="MR", patient_id="P1", patient_name="Doe^John", study_date="20200105"
        ),
    )
    await store(client, make_dataset(study_uid=b, patient_id="P2", patient_name="Smith^Anna", study_date="20210610"))
    await store(
        client,
        make_dataset(
            study_uid=c, patient_id="p3", patient_name="Müller^Jürgen", study_date="20221231", modality="US",
            accession="ACC3",
        ),
    )  # fmt: skip
    yield {"a": a, "b": b, "c": c, "a_ct": a_ct, "a_mr": a_mr}


async def qido(client: httpx.AsyncClient, url: str, **params: object) -> httpx.Response:
    return await client.get(url, params=params, headers=ACCEPT)  # type: ignore[arg-type]


def uids(response: httpx.Response, tag: str = "0020000D") -> list[str]:
    return [item[tag]["Value"][0] for item in response.json()]


async def test_all_studies_newest_first(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    r = await qido(client, "/v2/studies")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/dicom+json"
    assert uids(r) == [corpus["c"], corpus["b"], corpus["a"]]


async def test_v2_default_study_attributes(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    r = await qido(client, "/v2/studies", PatientID="P2")
    (item,) = r.json()
    assert sorted(item) == [
        "00080020",
        "00080050",
        "00080090",
        "00081030",
        "00100010",
        "00100020",
        "00100030",
        "0020000D",
    ]
    assert item["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Smith^Anna"}]}


async def test_v1_default_study_attributes(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    r = await qido(client, "/v1/studies", PatientID="P2")
    (item,) = r.json()
    # v1 defaults that the instance has (00080005, 00080056, 00080201, 00200010 are absent from it).
    assert sorted(item) == [
        "00080020", "00080030", "00080050", "00080090", "00100010", "00100020", "00100030", "0020000D",
    ]  # fmt: skip


async def test_paging_is_by_study_not_instance(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    pages = [uids(await qido(client, "/v2/studies", limit=1, offset=i)) for i in range(3)]
    assert pages == [[corpus["c"]], [corpus["b"]], [corpus["a"]]]
    assert (await qido(client, "/v2/studies", limit=1, offset=3)).status_code == 204


async def test_exact_match_is_case_insensitive(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    assert uids(await qido(client, "/v2/studies", PatientID="P3")) == [corpus["c"]]
    assert uids(await qido(client, "/v2/studies", PatientName="doe^john")) == [corpus["a"]]


async def test_pn_match_is_accent_insensitive(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    assert uids(await qido(client, "/v2/studies", PatientName="Muller^Jurgen")) == [corpus["c"]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("joh", ["a"]), ("do", ["a"]), ("jo do", ["a"]), ("John Doe", ["a"]), ("ohn", []), ("jur", ["c"])],
)
async def test_fuzzy_prefix_matching(
    client: httpx.AsyncClient, corpus: dict[str, str], value: str, expected: list[str]
) -> None:
    r = await qido(client, "/v2/studies", PatientName=value, fuzzymatching="true")
    assert (uids(r) if r.status_code == 200 else []) == [corpus[k] for k in expected]


async def test_no_fuzzy_means_exact(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    assert (await qido(client, "/v2/studies", PatientName="joh")).status_code == 204


async def test_date_ranges(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    assert uids(await qido(client, "/v2/studies", StudyDate="20210101-20211231")) == [corpus["b"]]
    assert uids(await qido(client, "/v2/studies", StudyDate="20210101-")) == [corpus["c"], corpus["b"]]
    assert uids(await qido(client, "/v2/studies", StudyDate="-20200105")) == [corpus["a"]]
    assert uids(await qido(client, "/v2/studies", StudyDate="20221231")) == [corpus["c"]]


async def test_modalities_in_study(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    r = await qido(client, "/v2/studies", ModalitiesInStudy="MR")
    (item,) = r.json()
    assert item["0020000D"]["Value"] == [corpus["a"]]
    assert item["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_modalities_in_study_at_series_and_instance_level(
    client: httpx.AsyncClient, corpus: dict[str, str], version: str
) -> None:
    # A study-level attribute (azure-behaviour §4.3): every series and instance of a study with an MR series
    # matches, the study's CT series too (it once answered 500: the EXISTS lost its series table).
    series = await qido(client, f"/{version}/series", ModalitiesInStudy="MR")
    assert series.status_code == 200
    assert sorted(uids(series, "0020000E")) == sorted([corpus["a_ct"], corpus["a_mr"]])
    instances = await qido(client, f"/{version}/instances", ModalitiesInStudy="MR")
    assert instances.status_code == 200
    assert set(uids(instances)) == {corpus["a"]} and len(instances.json()) == 3


async def test_computed_counts_via_includefield(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    r = await qido(client, "/v2/studies", PatientID="P1", includefield="NumberOfStudyRelatedInstances")
    assert r.json()[0]["00201208"] == {"vr": "IS", "Value": [3]}
    r = await qido(client, f"/v2/studies/{corpus['a']}/series", includefield="00201209")
    counts = {i["0020000E"]["Value"][0]: i["00201209"]["Value"][0] for i in r.json()}
    assert counts == {corpus["a_ct"]: 2, corpus["a_mr"]: 1}


async def test_series_search(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    r = await qido(client, "/v2/series", Modality="MR")
    (item,) = r.json()
    assert item["0020000E"]["Value"] == [corpus["a_mr"]]
    assert item["0020000D"]["Value"] == [corpus["a"]]
    assert item["00080060"] == {"vr": "CS", "Value": ["MR"]}
    r = await qido(client, f"/v2/studies/{corpus['a']}/series")
    assert sorted(uids(r, "0020000E")) == sorted([corpus["a_ct"], corpus["a_mr"]])


async def test_instance_searches(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    assert len((await qido(client, "/v2/instances")).json()) == 5
    assert len((await qido(client, f"/v2/studies/{corpus['a']}/instances")).json()) == 3
    r = await qido(client, f"/v2/studies/{corpus['a']}/series/{corpus['a_ct']}/instances")
    items = r.json()
    assert len(items) == 2
    assert all(sorted(i) == ["00080018", "0020000D", "0020000E"] for i in items)
    sop = items[0]["00080018"]["Value"][0]
    r = await qido(client, "/v2/instances", SOPInstanceUID=sop)
    assert uids(r, "00080018") == [sop]


async def test_includefield_all_and_keyword(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    r = await qido(client, "/v2/studies", PatientID="P2", includefield="all")
    assert "00080030" in r.json()[0]  # StudyTime is in the "all" set
    r = await qido(client, "/v2/studies", PatientID="P2", includefield="StudyTime")
    assert r.json()[0]["00080030"] == {"vr": "TM", "Value": ["101010"]}


async def test_empty_result_is_204(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    r = await qido(client, "/v2/studies", PatientID="nobody")
    assert r.status_code == 204
    assert r.content == b""


async def test_wildcards_are_literal_without_loose(client: httpx.AsyncClient, corpus: dict[str, str]) -> None:
    assert (await qido(client, "/v2/studies", PatientID="P*")).status_code == 204
    assert (await qido(client, "/v2/studies", StudyInstanceUID=f"{corpus['a']},{corpus['b']}")).status_code == 204


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
        ({"limit": "201"}, "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."),
        ({"includefield": "all,PatientID"}, "Invalid query: cannot specify included fields in addition to 'all'."),
        ({"includefield": "Bogus"}, "Invalid query: IncludeField has unknown attribute 'Bogus'."),
        ({"PatientID": ""}, "Invalid query: AttributeId 'PatientID' has empty string value that is not supported."),
        (
            {"StudyDate": "2020-01-01"},
            "Invalid query: specified Date value '2020-01-01' is invalid for attribute 'StudyDate'. "
            "Date should be valid and formatted as yyyyMMdd.",
        ),
        (
            {"Modality": "CT"},
            "Invalid query: AttributeId Modality is not queryable.  If the parameter is an attribute keyword, "
            "check the casing as they are case-sensitive. The conformance statement has a list of supported "
            "query parameters, attributes and the levels.",
        ),
    ],
)
async def test_invalid_queries_are_400(client: httpx.AsyncClient, params: dict[str, str], message: str) -> None:
    r = await qido(client, "/v2/studies", **params)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == message


async def test_lowercase_keyword_is_unknown(client: httpx.AsyncClient) -> None:
    r = await qido(client, "/v2/studies", patientname="x")
    assert r.status_code == 400
    assert r.text.startswith("Invalid query: unknown query parameter 'patientname'.")


async def test_query_string_guard(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/studies?PatientID=%3Cscript%3E", headers=ACCEPT)
    assert r.status_code == 400
    assert r.text == "The query string included invalid characters."


async def test_invalid_route_uid_is_400(client: httpx.AsyncClient) -> None:
    r = await qido(client, "/v2/studies/1.2.abc/series")
    assert r.status_code == 400
    assert r.text.startswith("Dicom element 'StudyInstanceUid' failed validation for VR 'UI'")


async def test_missing_accept_is_406(client: httpx.AsyncClient) -> None:
    request = client.build_request("GET", "/v2/studies")
    del request.headers["accept"]
    assert (await client.send(request)).status_code == 406
