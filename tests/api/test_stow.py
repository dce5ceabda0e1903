"""STOW-RS through the HTTP API (azure-behaviour §2), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.factories import deflated_instance, make_dataset, make_instance, multipart, new_uid, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}


async def stow(client: httpx.AsyncClient, parts: list[bytes], url: str = "/v2/studies", **kw: object) -> httpx.Response:
    body, ctype = multipart(parts)
    headers = {**ACCEPT, "Content-Type": ctype, **kw.pop("headers", {})}  # type: ignore[dict-item]
    return await client.post(url, content=body, headers=headers)


async def test_store_one_instance_v2(client: httpx.AsyncClient) -> None:
    study, series, sop = new_uid(), new_uid(), new_uid()
    r = await stow(client, [make_instance(study_uid=study, series_uid=series, sop_uid=sop)])
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/dicom+json"
    assert r.headers["api-supported-versions"] == "1.0-prerelease, 1, 2"
    body = r.json()
    assert "00081190" not in body  # no {study} in the URL
    item = body["00081199"]["Value"][0]
    assert item == {
        "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
        "00081155": {"vr": "UI", "Value": [sop]},
        "00081190": {"vr": "UR", "Value": [f"http://testserver/v2/studies/{study}/series/{series}/instances/{sop}"]},
        "00741048": {"vr": "SQ"},
    }


async def test_store_v1_has_no_failed_attributes_sequence(client: httpx.AsyncClient) -> None:
    r = await stow(client, [make_instance()], url="/v1/studies")
    assert r.status_code == 200
    assert "00741048" not in r.json()["00081199"]["Value"][0]


async def test_store_with_study_in_url_sets_retrieve_url(client: httpx.AsyncClient) -> None:
    study = new_uid()
    r = await stow(client, [make_instance(study_uid=study)], url=f"/v2/studies/{study}")
    assert r.status_code == 200
    assert r.json()["00081190"] == {"vr": "UR", "Value": [f"http://testserver/v2/studies/{study}"]}


async def test_study_mismatch_is_43264(client: httpx.AsyncClient) -> None:
    study = new_uid()
    sop = new_uid()
    r = await stow(client, [make_instance(sop_uid=sop)], url=f"/v2/studies/{study}")
    assert r.status_code == 409
    failed = r.json()["00081198"]["Value"][0]
    assert failed["00081197"] == {"vr": "US", "Value": [43264]}
    assert failed["00081155"] == {"vr": "UI", "Value": [sop]}
    comments = [i["00000902"]["Value"][0] for i in failed["00741048"]["Value"]]
    assert comments == [
        "DICOM100: (0020,000d) - The StudyInstanceUid in the payload does not match the specified StudyInstanceUid."
    ]


async def test_duplicate_post_is_409_with_45070(client: httpx.AsyncClient) -> None:
    data = make_instance()
    assert (await stow(client, [data])).status_code == 200
    r = await stow(client, [data])
    assert r.status_code == 409
    assert r.json()["00081198"]["Value"][0]["00081197"] == {"vr": "US", "Value": [45070]}


async def test_rejected_duplicate_changes_no_study_attribute_and_no_feed(client: httpx.AsyncClient) -> None:
    # On PostgreSQL a lone new instance is written without a savepoint: its unique violation must roll back
    # the study and series upserts that ran before it (storage/instance_writes.py).
    study, series, sop = new_uid(), new_uid(), new_uid()
    first = make_instance(study_uid=study, series_uid=series, sop_uid=sop, patient_name="First^Name")
    again = make_instance(study_uid=study, series_uid=series, sop_uid=sop, patient_name="Second^Name")
    assert (await stow(client, [first])).status_code == 200
    feed = (await client.get("/v2/changefeed/latest")).json()
    r = await stow(client, [again])
    assert r.status_code == 409
    assert r.json()["00081198"]["Value"][0]["00081197"] == {"vr": "US", "Value": [45070]}
    found = (await client.get(f"/v2/studies?StudyInstanceUID={study}", headers=ACCEPT)).json()
    assert found[0]["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "First^Name"}]}
    assert (await client.get("/v2/changefeed/latest")).json() == feed


async def test_study_attributes_are_the_latest_instances(client: httpx.AsyncClient) -> None:
    # azure-behaviour §4.5, latest wins. On SQLite an instance repeating its study's attributes leaves the
    # study row as it is (storage/instance_writes.py _upsert); a differing one rewrites it, also back again.
    study = new_uid()

    async def store_and_find(name: str) -> tuple[object, list[str]]:
        instance = make_instance(study_uid=study, patient_name=name)
        assert (await stow(client, [instance])).status_code == 200
        found = (await client.get(f"/v2/studies?StudyInstanceUID={study}", headers=ACCEPT)).json()
        by_name = await client.get(f"/v2/studies?PatientName={name}&StudyInstanceUID={study}", headers=ACCEPT)
        return found[0]["00100010"]["Value"][0]["Alphabetic"], [r["0020000D"]["Value"][0] for r in by_name.json()]

    assert await store_and_find("First^Name") == ("First^Name", [study])
    assert await store_and_find("First^Name") == ("First^Name", [study])  # unchanged attributes
    assert await store_and_find("Second^Name") == ("Second^Name", [study])
    assert await store_and_find("First^Name") == ("First^Name", [study])
    assert len((await client.get(f"/v2/studies/{study}/instances", headers=ACCEPT)).json()) == 4


async def test_duplicate_in_same_request_is_202(client: httpx.AsyncClient) -> None:
    data = make_instance()
    r = await stow(client, [data, data])
    assert r.status_code == 202
    body = r.json()
    assert len(body["00081199"]["Value"]) == 1
    assert body["00081198"]["Value"][0]["00081197"]["Value"] == [45070]


async def test_put_replaces_existing_without_45070(client: httpx.AsyncClient) -> None:
    ds = make_dataset(patient_name="Before^Name")
    study = ds.StudyInstanceUID
    assert (await stow(client, [to_bytes(ds)])).status_code == 200
    ds.PatientName = "After^Name"
    body, ctype = multipart([to_bytes(ds)])
    r = await client.put("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 200
    meta = (await client.get(f"/v2/studies/{study}/metadata", headers=ACCEPT)).json()
    assert len(meta) == 1
    assert meta[0]["00100010"]["Value"] == [{"Alphabetic": "After^Name"}]


async def test_concurrent_puts_of_one_new_instance_all_succeed(client: httpx.AsyncClient) -> None:
    # PUT never answers 45070: a PUT that loses the race for a new instance replaces the winner's version
    # (on PostgreSQL this also needs one lock order for study, series and instance rows: no deadlock, no 272).
    ds = make_dataset()
    body, ctype = multipart([to_bytes(ds)])
    headers = {**ACCEPT, "Content-Type": ctype}
    answers = await asyncio.gather(*(client.put("/v2/studies", content=body, headers=headers) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    found = await client.get(f"/v2/studies/{ds.StudyInstanceUID}/instances", headers=ACCEPT)
    assert len(found.json()) == 1


async def test_deflate_bomb_is_refused_with_43264(client: httpx.AsyncClient) -> None:
    # ~100 KB that inflates past 100 MiB (the inflated-size limit, README Limits): an unreadable part, as Azure
    # answers parts it cannot read (43264, no UIDs), and nothing is stored.
    bomb = deflated_instance(101 * 1024 * 1024)
    assert len(bomb) < 200_000
    small = deflated_instance(1000)
    body, ctype = multipart([bomb, small])
    r = await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 202
    failed = r.json()["00081198"]["Value"]
    assert failed == [{"00081197": {"vr": "US", "Value": [43264]}}]
    assert len(r.json()["00081199"]["Value"]) == 1
    assert len((await client.get("/v2/instances", headers=ACCEPT)).json()) == 1


async def test_single_part_application_dicom(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v2/studies", content=make_instance(), headers={**ACCEPT, "Content-Type": "application/dicom"}
    )
    assert r.status_code == 200


async def test_application_dicom_with_parameters_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v2/studies",
        content=make_instance(),
        headers={**ACCEPT, "Content-Type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"},
    )
    assert r.status_code == 415


@pytest.mark.parametrize("accept", [None, "application/dicom", "text/html"])
async def test_bad_accept_is_406(client: httpx.AsyncClient, accept: str | None) -> None:
    body, ctype = multipart([make_instance()])
    request = client.build_request("POST", "/v2/studies", content=body, headers={"Content-Type": ctype})
    del request.headers["accept"]  # httpx sends "Accept: */*" unless told otherwise
    if accept:
        request.headers["Accept"] = accept
    r = await client.send(request)
    assert r.status_code == 406
    assert r.content == b""  # Azure's Accept filter gives a bare 406


async def test_empty_multipart_is_204(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v2/studies", content=b"--b--", headers={**ACCEPT, "Content-Type": "multipart/related; boundary=b"}
    )
    assert r.status_code == 204
    assert r.content == b""


async def test_non_dicom_part_is_409_and_nothing_stored(client: httpx.AsyncClient) -> None:
    r = await stow(client, [b"this is not dicom at all" * 10])
    assert r.status_code == 409
    assert r.json() == {"00081198": {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [43264]}}]}}
    assert (await client.get("/v2/studies", headers=ACCEPT)).status_code == 204


async def test_mixed_good_and_bad_is_202(client: httpx.AsyncClient) -> None:
    r = await stow(client, [make_instance(), b"garbage"])
    assert r.status_code == 202


async def test_wrong_part_type_is_415_and_nothing_stored(client: httpx.AsyncClient) -> None:
    body, ctype = multipart([make_instance()], part_type="application/dicom+json")
    r = await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 415
    assert (await client.get("/v2/studies", headers=ACCEPT)).status_code == 204


async def test_missing_boundary_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/studies", content=b"x", headers={**ACCEPT, "Content-Type": "multipart/related"})
    assert r.status_code == 415


@pytest.mark.parametrize("study", ["../etc", "1.2.abc", "1" * 65, "1.2.3-4"])
async def test_hostile_study_uid_in_url_is_400(client: httpx.AsyncClient, study: str) -> None:
    r = await stow(client, [make_instance()], url=f"/v2/studies/{study}")
    assert r.status_code in (400, 404)  # "../" is normalized away by the URL layer before routing
    if r.status_code == 400:
        assert "failed validation for VR 'UI'" in r.text


async def test_hostile_uid_in_payload_fails_43264(client: httpx.AsyncClient) -> None:
    r = await stow(client, [make_instance(sop_uid="../../../etc/passwd")])
    assert r.status_code == 409
    assert r.json()["00081198"]["Value"][0]["00081197"]["Value"] == [43264]


async def test_missing_patient_id_fails(client: httpx.AsyncClient) -> None:
    r = await stow(client, [make_instance(patient_id=None)])
    assert r.status_code == 409
    failed = r.json()["00081198"]["Value"][0]
    assert failed["00741048"]["Value"][0]["00000902"]["Value"] == [
        "DICOM100: (0010,0020) - The required tag '(0010,0020)' is missing."
    ]


async def test_invalid_attribute_is_a_v2_warning_and_v1_failure(client: httpx.AsyncClient) -> None:
    data = make_instance(study_date="2024-01-15")
    r2 = await stow(client, [data])
    assert r2.status_code == 202
    item = r2.json()["00081199"]["Value"][0]
    assert item["00081196"] == {"vr": "US", "Value": [1]}
    assert item["00741048"]["Value"][0]["00000902"]["Value"][0].startswith("DICOM100: (0008,0020) - ")
    r1 = await stow(client, [make_instance(study_date="2024-01-15")], url="/v1/studies")
    assert r1.status_code == 409
    assert r1.json()["00081198"]["Value"][0]["00081197"]["Value"] == [43264]


async def test_v2_drops_invalid_attribute_from_metadata(client: httpx.AsyncClient) -> None:
    ds = make_dataset(study_date="2024-01-15")
    await stow(client, [to_bytes(ds)])
    meta = (await client.get(f"/v2/studies/{ds.StudyInstanceUID}/metadata", headers=ACCEPT)).json()
    assert "00080020" not in meta[0]
    assert meta[0]["00100020"] == {"vr": "LO", "Value": ["PID-1"]}


async def test_implicit_vr_gets_warning_45063(client: httpx.AsyncClient) -> None:
    r = await stow(client, [make_instance(implicit=True)])
    assert r.status_code == 202
    assert r.json()["00081199"]["Value"][0]["00081196"] == {"vr": "US", "Value": [45063]}
    r1 = await stow(client, [make_instance(implicit=True)], url="/v1/studies")
    assert r1.status_code == 200


async def test_truncated_file_is_rejected_and_nothing_stored(client: httpx.AsyncClient) -> None:
    data = make_instance(rows=64, columns=64)
    r = await stow(client, [data[: len(data) - 100]])
    assert r.status_code == 409
    assert (await client.get("/v2/studies", headers=ACCEPT)).status_code == 204


async def test_multiple_values_warning_header(client: httpx.AsyncClient) -> None:
    ds = make_dataset()
    # ModalitiesInStudy is indexed and may hold several values (VM 1-n), so only the header warns.
    # v1 checks every indexed tag; v2 checks only the required core tags (azure-behaviour §2.3 steps 4 and 6).
    ds.ModalitiesInStudy = ["CT", "MR"]
    r = await stow(client, [to_bytes(ds)], url="/v1/studies")
    assert r.status_code == 200
    assert r.headers["warning"] == (
        '299 testserver: "One or more indexed Dicom tag(s) have multiple values, only first value is indexed."'
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"msdicom-expiry-time-milliseconds": "60000", "msdicom-expiry-option": "RelativeToNow",
          "msdicom-expiry-level": "Study"}, 200),
        ({"msdicom-expiry-time-milliseconds": "0"}, 400),
        ({"msdicom-expiry-time-milliseconds": "abc"}, 400),
        ({"msdicom-expiry-time-milliseconds": "1000", "msdicom-expiry-option": "Absolute"}, 400),
        ({"msdicom-expiry-time-milliseconds": "1000", "msdicom-expiry-level": "Series"}, 400),
        ({"msdicom-expiry-level": "Study"}, 400),
    ],
)  # fmt: skip
async def test_expiry_headers_validated(client: httpx.AsyncClient, headers: dict[str, str], status: int) -> None:
    r = await stow(client, [make_instance()], headers=headers)
    assert r.status_code == status


@pytest.mark.parametrize("millis", ["9999999999999999", "9223372036854775808"])
async def test_expiry_past_year_9999_is_400(client: httpx.AsyncClient, millis: str) -> None:
    """Found by the fuzz run (tests/fuzz): an expiry beyond the last representable date was a 500 (OverflowError)."""
    r = await stow(client, [make_instance()], headers={"msdicom-expiry-time-milliseconds": millis})
    assert (r.status_code, r.headers["content-type"], r.text) == (
        400,
        "text/plain; charset=utf-8",
        "The value of header 'msdicom-expiry-time-milliseconds' is too large: the expiry time must be before the "
        "year 10000.",
    )
    r = await client.get("/v2/studies", headers={"Accept": "application/dicom+json"})
    assert r.status_code == 204  # nothing was stored


async def test_azure_feature_routes_reachable_from_stow(client: httpx.AsyncClient) -> None:
    """$bulkUpdate shares the STOW route (any case); v1 has none. Behaviour in test_bulk_update/test_partitions."""
    r = await client.post("/v2/studies/$bulkupdate", json={"studyInstanceUids": []})
    assert (r.status_code, r.text) == (400, "The required field 'StudyInstanceUids' is missing or empty.")
    r = await client.post("/v1/studies/$bulkUpdate", json={"studyInstanceUids": ["1.2.3"], "changeDataset": {}})
    assert (r.status_code, r.content) == (404, b"")
