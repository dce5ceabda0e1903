"""Extended query tags, reindex operations and QIDO on new tags (azure-behaviour §7, §8)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.factories import make_dataset, multipart, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}


async def store(client: httpx.AsyncClient, *datasets: object, url: str = "/v2/studies") -> httpx.Response:
    body, ctype = multipart([to_bytes(ds) for ds in datasets])  # type: ignore[arg-type]
    return await client.post(url, content=body, headers={**ACCEPT, "Content-Type": ctype})


async def add_tags(client: httpx.AsyncClient, tags: list[dict[str, object]]) -> httpx.Response:
    return await client.post("/v2/extendedquerytags", json=tags)


async def wait_operation(client: httpx.AsyncClient, href: str, version: str = "v2") -> dict[str, object]:
    path = href.replace("http://testserver", "").replace("/v2/", f"/{version}/")
    for _ in range(200):
        r = await client.get(path)
        if r.status_code == 200:
            return r.json()  # type: ignore[no-any-return]
        assert r.status_code == 202
        assert r.headers["location"] == f"http://testserver/{version}/operations/{r.json()['operationId']}"
        await asyncio.sleep(0.05)
    raise AssertionError("operation did not finish")


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    # A fast-polling runner so operations finish within the test.
    return settings.model_copy(update={"job_poll_interval": 0.05, "reindex_batch_size": 2})


async def test_add_reindex_and_query(client: httpx.AsyncClient) -> None:
    old = [make_dataset(PatientAge="045Y") for _ in range(3)] + [make_dataset(PatientAge="030Y")]
    assert (await store(client, *old)).status_code == 200
    r = await add_tags(client, [{"path": "PatientAge", "vr": "AS", "level": "Study"}])
    assert r.status_code == 202
    ref = r.json()
    assert sorted(ref) == ["href", "id"]
    assert len(ref["id"]) == 32 and int(ref["id"], 16) >= 0
    assert r.headers["location"] == ref["href"] == f"http://testserver/v2/operations/{ref['id']}"
    op = await wait_operation(client, ref["href"])
    assert op["status"] == "succeeded"
    assert op["type"] == "reindex"
    assert op["percentComplete"] == 100
    assert op["resources"] == ["http://testserver/v2/extendedquerytags/00101010"]
    assert sorted(op) == [
        "createdTime",
        "lastUpdatedTime",
        "operationId",
        "percentComplete",
        "resources",
        "status",
        "type",
    ]
    v1 = await wait_operation(client, ref["href"], "v1")
    assert v1["status"] == "completed"

    tag = (await client.get("/v2/extendedquerytags/PatientAge")).json()
    assert tag == {"path": "00101010", "vr": "AS", "level": "study", "status": "ready", "queryStatus": "enabled"}
    # Data stored before the tag is found by it, and new data is indexed at store time.
    r = await client.get("/v2/studies", params={"PatientAge": "045Y"}, headers=ACCEPT)
    assert sorted(i["0020000D"]["Value"][0] for i in r.json()) == sorted(ds.StudyInstanceUID for ds in old[:3])
    assert r.json()[0]["00101010"] == {"vr": "AS", "Value": ["045Y"]}
    new = make_dataset(PatientAge="045Y")
    await store(client, new)
    r = await client.get("/v2/studies", params={"00101010": "045Y"}, headers=ACCEPT)
    assert len(r.json()) == 4
    assert (await client.get("/v2/studies", params={"PatientAge": "099Y"}, headers=ACCEPT)).status_code == 204

    # PATCH disables querying; QIDO then refuses the filter.
    r = await client.patch("/v2/extendedquerytags/00101010", json={"queryStatus": "Disabled"})
    assert (r.status_code, r.json()["queryStatus"]) == (200, "disabled")
    r = await client.get("/v2/studies", params={"PatientAge": "045Y"}, headers=ACCEPT)
    assert (r.status_code, r.text) == (400, "Query is disabled on specified attribute 'PatientAge'.")
    await client.patch("/v2/extendedquerytags/00101010", json={"queryStatus": "enabled"})

    assert (await client.delete("/v2/extendedquerytags/PatientAge")).status_code == 204
    assert (await client.get("/v2/extendedquerytags/PatientAge")).status_code == 404
    r = await client.get("/v2/studies", params={"PatientAge": "045Y"}, headers=ACCEPT)
    assert r.status_code == 400


async def test_series_and_instance_level_tags(client: httpx.AsyncClient) -> None:
    a = make_dataset(BodyPartExamined="CHEST", ImageComments="first")
    b = make_dataset(BodyPartExamined="HEAD", ImageComments="second")
    await store(client, a, b)
    r = await add_tags(
        client,
        [
            {"path": "BodyPartExamined", "level": "series"},
            {"path": "00204000", "vr": "LT", "level": "Instance"},
        ],
    )
    # LT is not a supported VR.
    assert (r.status_code, r.text) == (400, "The VR code 'LT' specified for tag '00204000' is not supported.")
    r = await add_tags(client, [{"path": "BodyPartExamined", "level": "series"}, {"path": "Rows", "level": "instance"}])
    await wait_operation(client, r.json()["href"])
    r = await client.get("/v2/series", params={"BodyPartExamined": "head"}, headers=ACCEPT)
    assert [i["0020000E"]["Value"][0] for i in r.json()] == [b.SeriesInstanceUID]
    r = await client.get("/v2/instances", params={"Rows": "4"}, headers=ACCEPT)
    assert len(r.json()) == 2
    r = await client.get("/v2/instances", params={"Rows": "five"}, headers=ACCEPT)
    assert r.status_code == 400
    # A series-level tag is not queryable on the study resource.
    r = await client.get("/v2/studies", params={"BodyPartExamined": "HEAD"}, headers=ACCEPT)
    assert r.status_code == 400
    listing = (await client.get("/v2/extendedquerytags")).json()
    assert [t["path"] for t in listing] == ["00180015", "00280010"]
    assert [t["path"] for t in (await client.get("/v2/extendedquerytags?limit=1&offset=1")).json()] == ["00280010"]


async def test_invalid_values_are_errors_and_disable_query(client: httpx.AsyncClient) -> None:
    good = make_dataset(PatientAge="045Y")
    bad = make_dataset()
    bad.add_new(0x00101010, "AS", "45 years")
    # v1 would reject the bad value now; store it through v2 before the tag exists (warning, kept in file).
    bad_v1 = make_dataset()
    await store(client, good)
    await store(client, bad, url="/v1/studies")  # no tag yet: v1 does not validate PatientAge
    r = await add_tags(client, [{"path": "00101010", "level": "Study"}])
    await wait_operation(client, r.json()["href"])
    tag = (await client.get("/v2/extendedquerytags/00101010")).json()
    assert tag["status"] == "ready"
    assert tag["queryStatus"] == "disabled"
    assert tag["errors"] == {"count": 1, "href": "http://testserver/v2/extendedquerytags/00101010/errors"}
    errors = (await client.get("/v2/extendedquerytags/00101010/errors")).json()
    assert len(errors) == 1
    error = errors[0]
    assert sorted(error) == ["createdTime", "errorMessage", "seriesInstanceUid", "sopInstanceUid", "studyInstanceUid"]
    assert error["sopInstanceUid"] == bad.SOPInstanceUID
    assert "+" not in error["createdTime"] and not error["createdTime"].endswith("Z")
    assert error["errorMessage"].startswith("Dicom element 'PatientAge' failed validation for VR 'AS'")
    assert (await client.get("/v2/extendedquerytags/00101010/errors?offset=1")).json() == []
    # Re-enabled by hand, queries work and name the erroneous attribute.
    await client.patch("/v2/extendedquerytags/00101010", json={"queryStatus": "Enabled"})
    r = await client.get("/v2/studies", params={"PatientAge": "045Y"}, headers=ACCEPT)
    assert r.status_code == 200
    assert r.headers["erroneous-dicom-attributes"] == "PatientAge"
    # With the tag in force, v1 rejects an invalid value and v2 stores with a warning.
    bad_v1.add_new(0x00101010, "AS", "45 years")
    assert (await store(client, bad_v1, url="/v1/studies")).status_code == 409
    assert (await store(client, bad_v1)).status_code == 202


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ([], 400, "The extended query tag(s) is missing."),
        (
            [{"level": "Study"}],
            400,
            "The field '[0].Path' in request body is invalid: The Dicom Tag Property Path must be specified and "
            "must not be null, empty or whitespace",
        ),
        (
            [{"path": "PatientAge", "level": "Studys"}],
            400,
            "The field '$[0].Level' in request body is invalid: Expected value 'Studys' to be one of the following "
            "values: ['Instance', 'Series', 'Study']",
        ),
        ([{"path": "PatientID", "level": "Study"}], 400, "The query tag 'PatientID' is already supported."),
        (
            [{"path": "PatientAge", "level": "Study"}, {"path": "00101010", "level": "Study"}],
            400,
            "The extended query tag '00101010' has been specified before.",
        ),
        (
            [{"path": "PatientAge", "level": "Study", "privateCreator": "X"}],
            400,
            "The private creator is not empty for standard tag 'PatientAge'.",
        ),
        (
            [{"path": "00091001", "vr": "LO", "level": "Study"}],
            400,
            "The private creator for private tag '00091001' is missing.",
        ),
        (
            [{"path": "00091001", "privateCreator": "ACME", "level": "Study"}],
            400,
            "The vr for tag '00091001' is missing.",
        ),
        (
            [{"path": "PatientAge", "vr": "DA", "level": "Study"}],
            400,
            "The VR code 'DA' is incorrectly specified for 'PatientAge'. The expected VR code for it is 'AS'. "
            "Retry this request either with the correct VR code or without specifying it.",
        ),
        (
            [{"path": "Bogus", "level": "Study"}],
            400,
            "The extended query tag 'Bogus' is invalid as it cannot be parsed into a valid Dicom Tag.",
        ),
        (
            [{"path": "00400275.00321060", "level": "Study"}],
            400,
            "The extended query tag '00400275.00321060' is invalid as it cannot be parsed into a valid Dicom Tag.",
        ),
    ],
)
async def test_add_validation(client: httpx.AsyncClient, body: list[dict[str, str]], status: int, message: str) -> None:
    r = await add_tags(client, body)
    assert (r.status_code, r.text) == (status, message)


async def test_conflicts_and_not_found(client: httpx.AsyncClient) -> None:
    r = await add_tags(client, [{"path": "00091001", "vr": "LO", "privateCreator": "ACME", "level": "Instance"}])
    assert r.status_code == 202
    await wait_operation(client, r.json()["href"])
    tag = (await client.get("/v2/extendedquerytags/00091001")).json()
    assert tag["privateCreator"] == "ACME"
    r = await add_tags(client, [{"path": "00091001", "vr": "LO", "privateCreator": "ACME", "level": "Instance"}])
    assert (r.status_code, r.text) == (409, "One or more extended query tags already exist.")
    r = await client.get("/v2/extendedquerytags/PatientAge")
    assert (r.status_code, r.text) == (
        404,
        "The specified extended query tag with tag path PatientAge cannot be found.",
    )
    r = await client.get("/v2/extendedquerytags/NotATag")
    assert r.status_code == 400
    r = await client.patch("/v2/extendedquerytags/00091001", json={"queryStatus": "Enabled", "other": 1})
    assert (r.status_code, r.text) == (400, 'The field is not supported: "other".')
    r = await client.post("/v2/extendedquerytags", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.text) == (400, "The syntax of the request body is invalid.")
    assert (await client.get("/v2/operations/" + "0" * 32)).status_code == 404
    assert (await client.get("/v2/operations/not-a-guid")).status_code == 404
    assert (await client.get("/v2/extendedquerytags?limit=201")).status_code == 400


async def test_existing_reindex_is_409_with_location(client: httpx.AsyncClient, app: object) -> None:
    await app.state.jobs_runner.stop()  # type: ignore[attr-defined]  # keep the first operation pending
    r = await add_tags(client, [{"path": "PatientAge", "level": "Study"}])
    first = r.json()["id"]
    op = await client.get(f"/v2/operations/{first}")
    assert (op.status_code, op.json()["status"]) == (202, "notStarted")
    tag = (await client.get("/v2/extendedquerytags/PatientAge")).json()
    assert tag["status"] == "adding"
    assert tag["operation"] == {"id": first, "href": f"http://testserver/v2/operations/{first}"}
    r = await add_tags(client, [{"path": "PatientSex", "level": "Study"}])
    assert r.status_code == 409
    assert r.text == f"There is already an active re-index operation with ID '{first}'."
    assert r.headers["location"] == f"http://testserver/v2/operations/{first}"
    # An adding tag is not queryable yet.
    r = await client.get("/v2/studies", params={"PatientAge": "045Y"}, headers=ACCEPT)
    assert r.status_code == 400


async def test_more_than_128_tags_is_503(client: httpx.AsyncClient) -> None:
    tags = [
        {"path": f"0009{0x1000 + i:04X}", "vr": "LO", "privateCreator": "ACME", "level": "Instance"} for i in range(129)
    ]
    r = await add_tags(client, tags)
    # Azure's code lets this fall through to its generic data-store branch (azure-behaviour §7.2).
    assert (r.status_code, r.text) == (503, "Extended query tags exceeds max allowed count '128'.")
    assert (await client.get("/v2/extendedquerytags")).json() == []
    r = await add_tags(client, tags[:128])
    assert r.status_code == 202
