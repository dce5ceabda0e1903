"""Events (azure-behaviour §12): one per change-feed row, in Event Grid or CloudEvents shape, through the outbox."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from dicom_emulator.config import EventSinkSettings, Settings
from tests.apps import APP_POOL, asgi_client
from tests.factories import make_dataset, multipart, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}
HOST = "ws-dicom.dicom.azurehealthcareapis.com"
CREATED = "Microsoft.HealthcareApis.DicomImageCreated"
DELETED = "Microsoft.HealthcareApis.DicomImageDeleted"


async def store(client: httpx.AsyncClient, *datasets: object, method: str = "POST") -> None:
    body, ctype = multipart([to_bytes(ds) for ds in datasets])  # type: ignore[arg-type]
    r = await client.request(method, "/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 200, r.text


async def wait_for_lines(path: Path, count: int) -> list[dict[str, object]]:
    """The JSON lines of ``path`` once there are ``count`` (the runner delivers in the background)."""
    for _ in range(2000):
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            if len(lines) >= count:
                return lines
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} did not get {count} lines: {path.read_text() if path.exists() else 'missing'}")


@pytest.fixture
def event_settings(settings: Settings, tmp_path: Path) -> Settings:
    settings.event_service_host = HOST
    settings.event_sinks = [
        EventSinkSettings(type="file", path=tmp_path / "eg.jsonl"),
        EventSinkSettings(type="file", path=tmp_path / "ce.jsonl", delivery_schema="CloudEventSchemaV1_0"),
        EventSinkSettings(
            type="file",
            path=tmp_path / "deleted.jsonl",
            included_event_types=[DELETED],
            name="only-deletes",
        ),
    ]
    return settings


@pytest.fixture
async def event_client(event_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with APP_POOL.running(event_settings) as app, asgi_client(app) as c:
        yield c


async def test_published_events_follow_the_change_feed(client: httpx.AsyncClient, app: FastAPI) -> None:
    ds, other = make_dataset(), make_dataset()
    await store(client, ds, other)
    url = f"/v2/studies/{ds.StudyInstanceUID}"
    assert (await client.delete(url)).status_code == 204
    events = (await client.get("/emulator/events")).json()
    feed = (await client.get("/v2/changefeed")).json()
    assert [(e["eventType"], e["data"]["sequenceNumber"]) for e in events] == [
        (CREATED, 1),
        (CREATED, 2),
        (DELETED, 3),
    ]
    assert [e["sequence"] for e in feed] == [1, 2, 3]
    first = events[0]
    assert list(first) == ["id", "topic", "subject", "data", "eventType", "dataVersion", "metadataVersion", "eventTime"]
    host = "127.0.0.1:8080"  # the default serviceHostName: where this emulator listens
    assert first["data"] == {
        "partitionName": "Microsoft.Default",
        "imageStudyInstanceUid": ds.StudyInstanceUID,
        "imageSeriesInstanceUid": ds.SeriesInstanceUID,
        "imageSopInstanceUid": ds.SOPInstanceUID,
        "serviceHostName": host,
        "sequenceNumber": 1,
    }
    assert first["subject"] == (
        f"{host}/v1/partitions/Microsoft.Default/studies/{ds.StudyInstanceUID}"
        f"/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )
    assert first["topic"] == (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dicom-emulator"
        "/providers/Microsoft.HealthcareApis/workspaces/emulator"
    )
    assert (first["dataVersion"], first["metadataVersion"]) == ("1", "1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", first["eventTime"])
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", first["id"])
    # The id is fixed in the outbox: reading again (or redelivering) repeats it.
    again = (await client.get("/emulator/events", params={"after": 2})).json()
    assert [e["id"] for e in again] == [events[2]["id"]]
    assert (await client.get("/emulator/events", params={"after": 3})).json() == []
    paged = (await client.get("/emulator/events", params={"after": 0, "limit": 1})).json()
    assert [e["id"] for e in paged] == [first["id"]]
    cloud = (await client.get("/emulator/events", params={"schema": "CloudEventSchemaV1_0"})).json()
    assert list(cloud[0]) == ["source", "subject", "type", "time", "id", "data", "specversion"]
    assert (cloud[0]["id"], cloud[0]["type"], cloud[0]["specversion"]) == (first["id"], CREATED, "1.0")
    assert cloud[0]["source"] == first["topic"]
    assert cloud[0]["time"] == first["eventTime"]


async def test_failed_instances_publish_nothing(client: httpx.AsyncClient) -> None:
    ds = make_dataset()
    await store(client, ds)
    body, ctype = multipart([to_bytes(ds)])
    r = await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 409  # already exists: no feed row, no event
    assert len((await client.get("/emulator/events")).json()) == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"after": "x"}, "The query parameter 'after' is invalid. The value 'x' is not valid for after."),
        ({"limit": "0"}, "The query parameter 'limit' is invalid. The field limit must be between 1 and 1000."),
        ({"schema": "Custom"}, "The schema 'Custom' is not supported: use EventGridSchema or CloudEventSchemaV1_0."),
    ],
)
async def test_bad_parameters(client: httpx.AsyncClient, params: dict[str, str], message: str) -> None:
    r = await client.get("/emulator/events", params=params)
    assert (r.status_code, r.text) == (400, message)


async def test_file_sinks_get_every_event_in_order(event_client: httpx.AsyncClient, tmp_path: Path) -> None:
    ds, other = make_dataset(), make_dataset()
    await store(event_client, ds)
    await store(event_client, other)
    assert (await event_client.delete(f"/v2/studies/{ds.StudyInstanceUID}")).status_code == 204
    published = (await event_client.get("/emulator/events")).json()
    assert published[0]["data"]["serviceHostName"] == HOST
    lines = await wait_for_lines(tmp_path / "eg.jsonl", 3)
    assert lines == published
    cloud = await wait_for_lines(tmp_path / "ce.jsonl", 3)
    assert [(e["type"], e["data"]["sequenceNumber"], e["id"]) for e in cloud] == [
        (e["eventType"], e["data"]["sequenceNumber"], e["id"]) for e in published
    ]
    deleted = await wait_for_lines(tmp_path / "deleted.jsonl", 1)
    assert [(e["eventType"], e["data"]["imageSopInstanceUid"]) for e in deleted] == [(DELETED, ds.SOPInstanceUID)]
