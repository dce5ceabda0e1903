"""Change feed v1 and v2 (azure-behaviour §6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.factories import make_dataset, multipart, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}


async def store(client: httpx.AsyncClient, *datasets: object, method: str = "POST") -> None:
    body, ctype = multipart([to_bytes(ds) for ds in datasets])  # type: ignore[arg-type]
    r = await client.request(method, "/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 200, r.text


async def test_empty_feed(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/changefeed")
    assert (r.status_code, r.json()) == (200, [])
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert (await client.get("/v2/changefeed/latest")).status_code == 204
    assert (await client.get("/v1/changefeed/latest")).status_code == 204


async def test_entry_shape_and_states(client: httpx.AsyncClient) -> None:
    ds = make_dataset()
    await store(client, ds)
    url = f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    assert (await client.delete(url)).status_code == 204
    await store(client, ds)
    entries = (await client.get("/v2/changefeed")).json()
    assert [(e["sequence"], e["action"], e["state"]) for e in entries] == [
        (1, "Create", "Replaced"),
        (2, "Delete", "Replaced"),
        (3, "Create", "Current"),
    ]
    first = entries[0]
    assert sorted(first) == [
        "action", "metadata", "partitionName", "sequence", "seriesInstanceUid", "sopInstanceUid",
        "state", "studyInstanceUid", "timestamp",
    ]  # fmt: skip
    assert first["partitionName"] == "Microsoft.Default"
    assert first["sopInstanceUid"] == ds.SOPInstanceUID
    assert first["metadata"]["00080018"] == {"vr": "UI", "Value": [ds.SOPInstanceUID]}
    stamp = first["timestamp"]
    assert stamp.endswith("+00:00") and len(stamp.split(".")[1]) == len("1234567+00:00")
    await client.delete(url)
    states = [e["state"] for e in (await client.get("/v2/changefeed")).json()]
    assert states == ["Deleted"] * 4
    assert all("metadata" not in e for e in (await client.get("/v2/changefeed")).json())


async def test_put_upsert_marks_older_entry_replaced(client: httpx.AsyncClient) -> None:
    ds = make_dataset()
    await store(client, ds)
    await store(client, ds, method="PUT")
    entries = (await client.get("/v2/changefeed?includeMetadata=false")).json()
    assert [(e["action"], e["state"]) for e in entries] == [("Create", "Replaced"), ("Create", "Current")]
    assert all("metadata" not in e for e in entries)


async def test_v1_sequence_window(client: httpx.AsyncClient) -> None:
    await store(client, *[make_dataset() for _ in range(5)])
    seqs = [e["sequence"] for e in (await client.get("/v1/changefeed?offset=1&limit=3")).json()]
    assert seqs == [2, 3, 4]
    assert len((await client.get("/v1/changefeed")).json()) == 5
    latest = (await client.get("/v1/changefeed/latest")).json()
    assert latest["sequence"] == 5


async def test_largest_offsets_are_empty_pages(client: httpx.AsyncClient) -> None:
    # offset is a long: the window offset < sequence <= offset + limit must not overflow (it answered 500).
    await store(client, make_dataset())
    for url in ("/v1/changefeed?offset=9223372036854775807", "/v1/changefeed?offset=9223372036854775800&limit=100",
                "/v2/changefeed?offset=9223372036854775807"):  # fmt: skip
        r = await client.get(url)
        assert (r.status_code, r.json()) == (200, []), url
    r = await client.get("/v2/studies?offset=9223372036854775807", headers={"Accept": "application/dicom+json"})
    assert r.status_code == 204


async def test_v2_time_window_and_skip(client: httpx.AsyncClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await store(client, *[make_dataset() for _ in range(4)])
    after = datetime.now(UTC) + timedelta(seconds=1)
    params = {"startTime": before.isoformat(), "endTime": after.isoformat(), "offset": "1", "limit": "2"}
    seqs = [e["sequence"] for e in (await client.get("/v2/changefeed", params=params)).json()]
    assert seqs == [2, 3]
    assert (await client.get("/v2/changefeed", params={"endTime": before.isoformat()})).json() == []
    assert (await client.get("/v2/changefeed/latest")).json()["sequence"] == 4


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "/v1/changefeed?limit=0",
            "The query parameter 'limit' is invalid. The field limit must be between 1 and 100.",
        ),
        (
            "/v1/changefeed?limit=101",
            "The query parameter 'limit' is invalid. The field limit must be between 1 and 100.",
        ),
        (
            "/v2/changefeed?limit=201",
            "The query parameter 'limit' is invalid. The field limit must be between 1 and 200.",
        ),
        (
            "/v1/changefeed?offset=abc",
            "The query parameter 'offset' is invalid. The value 'abc' is not valid for offset.",
        ),
        (
            "/v2/changefeed?includeMetadata=0",
            "The query parameter 'includeMetadata' is invalid. The value '0' is not valid for includeMetadata.",
        ),
        (
            "/v2/changefeed?startTime=2024-01-01T00:00:00",
            "The query parameter 'startTime' is invalid. Date and time value must specify a time zone.",
        ),
        (
            # Before year 1 in UTC: .NET cannot represent it either (model binding fails, not a 500).
            "/v2/changefeed?startTime=0001-01-01T00:00:00%2B14:00",
            "The query parameter 'startTime' is invalid. The value '0001-01-01T00:00:00+14:00' is not valid for "
            "startTime.",
        ),
        (
            "/v2/changefeed?endTime=9999-12-31T23:59:59-14:00",
            "The query parameter 'endTime' is invalid. The value '9999-12-31T23:59:59-14:00' is not valid for endTime.",
        ),
        (
            "/v2/changefeed?startTime=2024-01-02T00:00:00Z&endTime=2024-01-01T00:00:00Z",
            "The start time '2024-01-02T00:00:00.0000000+00:00' must occur strictly before the end time "
            "'2024-01-01T00:00:00.0000000+00:00'.",
        ),
    ],
)
async def test_invalid_parameters(client: httpx.AsyncClient, url: str, message: str) -> None:
    r = await client.get(url)
    assert (r.status_code, r.text) == (400, message)


async def test_one_request_across_studies_feeds_in_request_order(client: httpx.AsyncClient) -> None:
    # Azure stores a request's instances one after another: the feed follows the request, whatever the study
    # UIDs (the store's study locks on PostgreSQL are taken in UID order, the rows are not written in it).
    datasets = [make_dataset(study_uid=f"1.2.3.{n}") for n in (9, 1, 5, 1, 9)]
    await store(client, *datasets)
    entries = (await client.get("/v2/changefeed")).json()
    assert [e["sopInstanceUid"] for e in entries] == [ds.SOPInstanceUID for ds in datasets]
    assert [e["sequence"] for e in entries] == [1, 2, 3, 4, 5]
