"""Data partitions (azure-behaviour §10.3, §14): routing, names, implicit creation, isolation, URLs, change feed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from pydicom import dcmread

from dicom_emulator.config import Settings
from tests.apps import APP_POOL, asgi_client
from tests.factories import make_dataset, multipart, new_uid, to_bytes
from tests.workitem_samples import create_body

ACCEPT = {"Accept": "application/dicom+json"}
DICOM_JSON = "application/dicom+json"
WORKITEM_HEADERS = {"Accept": DICOM_JSON, "Content-Type": DICOM_JSON}
DISABLED = "Data partitions feature is disabled."
MISSING = "PartitionName value is missing in the route segment."
NOT_FOUND = "Specified PartitionName does not exist."
INVALID = "The specified PartitionName is invalid. "


@pytest.fixture
async def pclient(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app started with ``--data-partitions``."""
    settings.data_partitions = True
    async with APP_POOL.running(settings) as app, asgi_client(app) as c:
        yield c


async def stow(client: httpx.AsyncClient, prefix: str, *datasets: object) -> httpx.Response:
    body, ctype = multipart([to_bytes(ds) for ds in datasets])  # type: ignore[arg-type]
    return await client.post(f"{prefix}/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})


def text_of(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.text


async def test_feature_off_partition_routes_are_400(client: httpx.AsyncClient) -> None:
    study = new_uid()
    base = "/v2/partitions/Microsoft.Default"
    for method, url in [
        ("GET", "/v2/partitions"),
        ("GET", f"{base}/studies"),
        ("GET", f"{base}/studies/{study}"),
        ("GET", f"{base}/studies/{study}/metadata"),
        ("DELETE", f"{base}/studies/{study}"),
        ("POST", f"{base}/studies"),
        ("GET", f"{base}/workitems"),
        ("POST", f"{base}/export"),
        ("POST", f"{base}/studies/$bulkUpdate"),
    ]:
        r = await client.request(method, url, headers=ACCEPT)
        assert text_of(r) == (400, DISABLED), (method, url)
        assert r.headers["content-type"] == "text/plain; charset=utf-8"


async def test_feature_on_routes_without_partition_are_400(pclient: httpx.AsyncClient) -> None:
    study = new_uid()
    for method, url in [
        ("GET", "/v2/studies"),
        ("GET", "/v1/series"),
        ("GET", f"/v2/studies/{study}"),
        ("GET", f"/v2/studies/{study}/series/{new_uid()}/instances/{new_uid()}/frames/1"),
        ("DELETE", f"/v2/studies/{study}"),
        ("POST", "/v2/studies"),
        ("PUT", "/v2/studies"),
        ("GET", "/v2/workitems"),
        ("POST", "/v2/workitems"),
        ("POST", "/v2/export"),
        ("POST", "/v2/studies/$bulkUpdate"),
    ]:
        r = await pclient.request(method, url, headers=ACCEPT)
        assert text_of(r) == (400, MISSING), (method, url)
    # Service-wide routes have no partition form and keep working.
    assert (await pclient.get("/v2/changefeed")).status_code == 200
    assert (await pclient.get("/v2/extendedquerytags")).status_code == 200
    assert (await pclient.get("/v2/partitions/p1/changefeed")).status_code == 404


async def test_list_partitions_and_implicit_creation(pclient: httpx.AsyncClient) -> None:
    r = await pclient.get("/v2/partitions")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    (default,) = r.json()
    assert (default["partitionKey"], default["partitionName"]) == (1, "Microsoft.Default")
    assert default["createdDate"].endswith("+00:00")

    # Reads, deletes and exports never create a partition.
    r = await pclient.get("/v2/partitions/clinicA/studies", headers=ACCEPT)
    assert text_of(r) == (400, NOT_FOUND)
    assert text_of(await pclient.delete(f"/v2/partitions/clinicA/studies/{new_uid()}")) == (400, NOT_FOUND)
    assert text_of(await pclient.get(f"/v1/partitions/clinicA/workitems/{new_uid()}", headers=ACCEPT)) == (
        400,
        NOT_FOUND,
    )
    assert [p["partitionName"] for p in (await pclient.get("/v2/partitions")).json()] == ["Microsoft.Default"]

    # STOW creates it; a workitem create creates another.
    assert (await stow(pclient, "/v2/partitions/clinicA", make_dataset())).status_code == 200
    uid = new_uid()
    r = await pclient.post(
        f"/v2/partitions/clinic-B/workitems?{uid}",
        content=json.dumps([create_body(uid)]).encode(),
        headers=WORKITEM_HEADERS,
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"http://testserver/v2/partitions/clinic-B/workitems/{uid}"
    listed = (await pclient.get("/v1/partitions")).json()
    assert [(p["partitionKey"], p["partitionName"]) for p in listed] == [
        (1, "Microsoft.Default"),
        (2, "clinicA"),
        (3, "clinic-B"),
    ]
    assert (await pclient.get("/v2/partitions/clinicA/studies", headers=ACCEPT)).status_code == 200


@pytest.mark.parametrize("name", ["a" * 65, "has%20space", "semi;colon", "%20", "caf%C3%A9", "a+b"])
async def test_invalid_partition_names(pclient: httpx.AsyncClient, name: str) -> None:
    r = await stow(pclient, f"/v2/partitions/{name}", make_dataset())
    assert text_of(r) == (400, INVALID)
    r = await pclient.get(f"/v2/partitions/{name}/studies", headers=ACCEPT)
    assert text_of(r) == (400, INVALID)


async def test_longest_valid_name(pclient: httpx.AsyncClient) -> None:
    name = "A-b_9." + "x" * 58
    assert len(name) == 64
    assert (await stow(pclient, f"/v2/partitions/{name}", make_dataset())).status_code == 200


async def test_identical_uids_in_two_partitions_are_isolated(pclient: httpx.AsyncClient) -> None:
    study, series, sop = new_uid(), new_uid(), new_uid()
    a = make_dataset(study_uid=study, series_uid=series, sop_uid=sop, patient_name="Alpha^A", patient_id="PA")
    b = make_dataset(study_uid=study, series_uid=series, sop_uid=sop, patient_name="Beta^B", patient_id="PB")
    r = await stow(pclient, "/v2/partitions/pa", a)
    assert r.status_code == 200, r.text
    url = r.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
    assert url == f"http://testserver/v2/partitions/pa/studies/{study}/series/{series}/instances/{sop}"
    # The same UIDs in another partition are another instance, not a 45070 duplicate.
    r = await stow(pclient, "/v2/partitions/pb", b)
    assert r.status_code == 200, r.text
    # The study form of STOW returns a partitioned study RetrieveURL too.
    body, ctype = multipart([to_bytes(make_dataset(study_uid=study, patient_name="Beta^B", patient_id="PB"))])
    r = await pclient.post(
        f"/v1/partitions/pb/studies/{study}", content=body, headers={**ACCEPT, "Content-Type": ctype}
    )
    assert r.json()["00081190"]["Value"] == [f"http://testserver/v1/partitions/pb/studies/{study}"]
    # And the same instance again in pa is a duplicate there.
    r = await stow(pclient, "/v2/partitions/pa", a)
    assert r.status_code == 409

    # QIDO sees each partition's own values.
    for partition, name, count in (("pa", "Alpha^A", 1), ("pb", "Beta^B", 2)):
        r = await pclient.get(f"/v2/partitions/{partition}/studies", headers=ACCEPT)
        (hit,) = r.json()
        assert hit["00100010"]["Value"] == [{"Alphabetic": name}]
        r = await pclient.get(f"/v2/partitions/{partition}/instances", headers=ACCEPT)
        assert len(r.json()) == count
    r = await pclient.get("/v2/partitions/pa/studies?PatientName=Beta", headers=ACCEPT)
    assert r.status_code == 204
    assert (await pclient.get("/v2/partitions/Microsoft.Default/studies", headers=ACCEPT)).status_code == 204

    # WADO: file, metadata, frames and rendered come from the addressed partition.
    instance = f"studies/{study}/series/{series}/instances/{sop}"
    for partition, pid in (("pa", "PA"), ("pb", "PB")):
        r = await pclient.get(
            f"/v2/partitions/{partition}/{instance}", headers={"Accept": "application/dicom; transfer-syntax=*"}
        )
        assert r.status_code == 200
        from io import BytesIO

        assert dcmread(BytesIO(r.content)).PatientID == pid
        r = await pclient.get(f"/v2/partitions/{partition}/{instance}/metadata", headers=ACCEPT)
        assert r.json()[0]["00100020"]["Value"] == [pid]
        r = await pclient.get(
            f"/v2/partitions/{partition}/{instance}/frames/1",
            headers={"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"},
        )
        assert r.status_code == 200
        r = await pclient.get(f"/v2/partitions/{partition}/{instance}/rendered", headers={"Accept": "image/png"})
        assert r.status_code == 200
    r = await pclient.get(f"/v2/partitions/Microsoft.Default/{instance}/metadata", headers=ACCEPT)
    assert text_of(r) == (404, "The specified study cannot be found.")

    # Delete in pa leaves pb alone.
    assert (await pclient.delete(f"/v2/partitions/pa/studies/{study}")).status_code == 204
    assert (await pclient.get(f"/v2/partitions/pa/{instance}/metadata", headers=ACCEPT)).status_code == 404
    assert (await pclient.get(f"/v2/partitions/pb/{instance}/metadata", headers=ACCEPT)).status_code == 200

    # The change feed is service-wide and names each entry's partition.
    feed = (await pclient.get("/v2/changefeed?includeMetadata=false")).json()
    assert [(e["partitionName"], e["action"], e["state"]) for e in feed if e["sopInstanceUid"] == sop] == [
        ("pa", "Create", "Deleted"),
        ("pb", "Create", "Current"),
        ("pa", "Delete", "Deleted"),
    ]
    latest = (await pclient.get("/v1/changefeed/latest")).json()
    assert latest["partitionName"] == "pa"


async def test_workitems_are_isolated(pclient: httpx.AsyncClient) -> None:
    uid = new_uid()
    for partition in ("wa", "wb"):
        r = await pclient.post(
            f"/v2/partitions/{partition}/workitems?{uid}",
            content=json.dumps([create_body(uid)]).encode(),
            headers=WORKITEM_HEADERS,
        )
        assert r.status_code == 201, r.text
    # A second create in the same partition is the usual conflict.
    r = await pclient.post(
        f"/v2/partitions/wa/workitems?{uid}", content=json.dumps([create_body(uid)]).encode(), headers=WORKITEM_HEADERS
    )
    assert r.status_code == 409
    transaction = new_uid()
    claim = {"00081195": {"vr": "UI", "Value": [transaction]}, "00741000": {"vr": "CS", "Value": ["IN PROGRESS"]}}
    r = await pclient.put(
        f"/v2/partitions/wa/workitems/{uid}/state",
        content=json.dumps([claim]).encode(),
        headers={"Content-Type": DICOM_JSON},
    )
    assert r.status_code == 200, r.text
    states = {}
    for partition in ("wa", "wb"):
        r = await pclient.get(f"/v2/partitions/{partition}/workitems/{uid}", headers=ACCEPT)
        states[partition] = r.json()["00741000"]["Value"][0]
    assert states == {"wa": "IN PROGRESS", "wb": "SCHEDULED"}
    r = await pclient.get("/v2/partitions/wb/workitems?ProcedureStepState=IN%20PROGRESS", headers=ACCEPT)
    assert r.status_code == 204


async def test_default_partition_holds_existing_data(settings: Settings) -> None:
    """Data stored with the feature off lives in Microsoft.Default and is found there once it is on."""
    ds = make_dataset()
    async with APP_POOL.running(settings) as app, asgi_client(app) as client:
        assert (await stow(client, "/v2", ds)).status_code == 200
    settings.data_partitions = True
    async with APP_POOL.running(settings) as app, asgi_client(app) as client:
        r = await client.get(f"/v2/partitions/Microsoft.Default/studies/{ds.StudyInstanceUID}/metadata", headers=ACCEPT)
        assert r.status_code == 200
        assert (await stow(client, "/v2/partitions/other", make_dataset())).status_code == 200


async def test_cannot_turn_off_once_partitioned(settings: Settings) -> None:
    settings.data_partitions = True
    async with APP_POOL.running(settings) as app, asgi_client(app) as client:
        assert (await stow(client, "/v2/partitions/other", make_dataset())).status_code == 200
    settings.data_partitions = False
    with pytest.raises(RuntimeError, match="cannot be disabled while existing data has already been partitioned"):
        async with APP_POOL.running(settings):
            pass
