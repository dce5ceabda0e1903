"""Event Grid webhook delivery (azure-behaviour §12.8) from the in-process app to a real HTTP receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from dicom_emulator.config import EventSinkSettings, Settings
from tests.apps import APP_POOL, asgi_client
from tests.factories import make_dataset, multipart, to_bytes
from tests.webhook import Answer, Received, Receiver, echo_validation

ACCEPT = {"Accept": "application/dicom+json"}


async def store(client: httpx.AsyncClient, count: int = 1) -> list[str]:
    datasets = [make_dataset() for _ in range(count)]
    body, ctype = multipart([to_bytes(ds) for ds in datasets])
    r = await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 200, r.text
    return [str(ds.SOPInstanceUID) for ds in datasets]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@asynccontextmanager
async def running(settings: Settings, **sink: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings.job_poll_interval = 0.05
    settings.event_sinks = [EventSinkSettings(type="webhook", retry_scale=0.0001, **sink)]
    async with APP_POOL.running(settings) as app, asgi_client(app) as client:
        yield client


async def wait_until(client: httpx.AsyncClient, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll the sink's state until ``check`` holds (the runner works in the background)."""
    for _ in range(3000):
        state: dict[str, Any] = (await client.get("/emulator/eventsubscriptions")).json()[0]
        if check(state):
            return state
        await asyncio.sleep(0.01)
    raise AssertionError(f"sink state never matched: {state}")


async def test_handshake_then_one_request_per_event(settings: Settings, receiver: Receiver) -> None:
    async with running(settings, url=receiver.url, subscription_name="dicom-sub") as client:
        sops = await store(client, 2)
        events = await asyncio.to_thread(receiver.wait_events, 2)
        validation, *notifications = receiver.requests
        assert (validation.method, validation.event_type) == ("POST", "SubscriptionValidation")
        assert validation.headers["content-type"] == "application/json; charset=utf-8"
        assert validation.headers["aeg-subscription-name"] == "DICOM-SUB"
        [handshake] = validation.json
        assert handshake["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"
        assert (handshake["subject"], handshake["dataVersion"], handshake["metadataVersion"]) == ("", "1", "1")
        code = handshake["data"]["validationCode"]
        assert handshake["data"]["validationUrl"] == (
            f"http://127.0.0.1:8080/emulator/eventsubscriptions/dicom-sub/validate?id={code}"
        )
        assert [r.event_type for r in notifications] == ["Notification", "Notification"]
        first = notifications[0]
        assert first.headers["content-type"] == "application/json; charset=utf-8"
        assert (first.headers["aeg-subscription-name"], first.headers["aeg-delivery-count"]) == ("DICOM-SUB", "0")
        assert (first.headers["aeg-data-version"], first.headers["aeg-metadata-version"]) == ("1", "1")
        assert isinstance(first.json, list) and len(first.json) == 1  # an array, also for one event
        assert [e["data"]["imageSopInstanceUid"] for e in events] == sops
        assert events == (await client.get("/emulator/events")).json()
        state = await wait_until(client, lambda s: s["deliveredThrough"] == 2)
        assert state == {
            "name": f"webhook:{receiver.url}",
            "type": "webhook",
            "deliverySchema": "EventGridSchema",
            "deliveredThrough": 2,
            "failedAttempts": 0,
            "lastDeliveryOutcome": None,
            "nextAttemptTime": None,
            "validated": True,
        }


async def test_retries_on_5xx_with_the_delivery_count(settings: Settings) -> None:
    failures = {"left": 2}

    def respond(request: Received) -> Answer:
        if request.event_type == "Notification" and failures["left"] > 0:
            failures["left"] -= 1
            return Answer(503)
        return echo_validation(request)

    receiver = Receiver(respond).start()
    try:
        async with running(settings, url=receiver.url, headers={"Authorization": "Bearer static"}) as client:
            await store(client)
            await asyncio.to_thread(
                receiver.wait, lambda rs: len([r for r in rs if r.event_type == "Notification"]) == 3
            )
            counts = [r.headers["aeg-delivery-count"] for r in receiver.notifications()]
            assert counts == ["0", "1", "2"]
            assert {r.headers["authorization"] for r in receiver.notifications()} == {"Bearer static"}
            assert len({json.dumps(r.json) for r in receiver.notifications()}) == 1  # the same event, same id
            await wait_until(client, lambda s: s["deliveredThrough"] == 1 and s["failedAttempts"] == 0)
    finally:
        receiver.stop()


@pytest.mark.parametrize("status", [400, 401, 403, 413])
async def test_no_retry_statuses_dead_letter_at_once(settings: Settings, tmp_path: Path, status: int) -> None:
    def respond(request: Received) -> Answer:
        return Answer(status) if request.event_type == "Notification" else echo_validation(request)

    receiver = Receiver(respond).start()
    dead = tmp_path / "dead.jsonl"
    try:
        async with running(settings, url=receiver.url, dead_letter_path=dead) as client:
            await store(client)
            await wait_until(client, lambda s: s["deliveredThrough"] == 1)
            assert len(receiver.notifications()) == 1
            [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
            published = (await client.get("/emulator/events")).json()[0]
            outcome = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 413: "RequestEntityTooLarge"}[status]
            assert {k: letter[k] for k in published} == published
            assert (letter["deadLetterReason"], letter["deliveryAttempts"], letter["lastDeliveryOutcome"]) == (
                "NonRetriableError", 1, outcome,
            )  # fmt: skip
            assert letter["publishTime"] == published["eventTime"]
            assert sorted(set(letter) - set(published)) == [
                "deadLetterReason", "deliveryAttempts", "lastDeliveryAttemptTime", "lastDeliveryOutcome", "publishTime",
            ]  # fmt: skip
    finally:
        receiver.stop()


async def test_max_delivery_attempts_then_dead_letter_and_the_next_event(settings: Settings, tmp_path: Path) -> None:
    def respond(request: Received) -> Answer:
        if request.event_type == "Notification" and request.json[0]["data"]["sequenceNumber"] == 1:
            return Answer(500)
        return echo_validation(request)

    receiver = Receiver(respond).start()
    dead = tmp_path / "dead.jsonl"
    try:
        async with running(settings, url=receiver.url, dead_letter_path=dead, max_delivery_attempts=3) as client:
            await store(client)
            await store(client)
            events = await asyncio.to_thread(receiver.wait_events, 4)
            assert [e["data"]["sequenceNumber"] for e in events] == [1, 1, 1, 2]  # in order: 2 waits for 1
            [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
            assert (letter["deadLetterReason"], letter["deliveryAttempts"], letter["lastDeliveryOutcome"]) == (
                "MaxDeliveryAttemptsExceeded", 3, "GenericError",
            )  # fmt: skip
    finally:
        receiver.stop()


async def test_batches(settings: Settings, receiver: Receiver) -> None:
    async with running(settings, url=receiver.url, max_events_per_batch=3) as client:
        receiver.stop()  # down: the five events queue up, then go in batches of at most three
        await store(client, 5)
        await wait_until(client, lambda s: s["failedAttempts"] >= 1)
        receiver.start()
        await asyncio.to_thread(receiver.wait_events, 5)
        sizes = [len(r.json) for r in receiver.notifications()]
        assert sizes[-2:] == [3, 2] and all(size <= 3 for size in sizes)
        assert [e["data"]["sequenceNumber"] for e in receiver.events()][-5:] == [1, 2, 3, 4, 5]


async def test_cloud_events_handshake_and_structured_mode(settings: Settings, receiver: Receiver) -> None:
    async with running(settings, url=receiver.url, delivery_schema="CloudEventSchemaV1_0") as client:
        await store(client)
        [event] = await asyncio.to_thread(receiver.wait_events, 1)
        options, notification = receiver.requests
        assert (options.method, options.headers["webhook-request-origin"]) == ("OPTIONS", "eventgrid.azure.net")
        assert notification.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
        assert event["specversion"] == "1.0" and event["type"] == "Microsoft.HealthcareApis.DicomImageCreated"


async def test_refused_validation_delivers_nothing(settings: Settings) -> None:
    def respond(request: Received) -> Answer:
        return Answer(403)

    receiver = Receiver(respond).start()
    try:
        async with running(settings, url=receiver.url) as client:
            await store(client)
            state = await wait_until(client, lambda s: s["failedAttempts"] >= 2)
            assert (state["validated"], state["lastDeliveryOutcome"], state["deliveredThrough"]) == (
                False, "ValidationFailed", 0,
            )  # fmt: skip
            assert {r.event_type for r in receiver.requests} == {"SubscriptionValidation"}
    finally:
        receiver.stop()


async def test_asynchronous_validation_through_the_validation_url(settings: Settings) -> None:
    def respond(request: Received) -> Answer:
        return Answer(200) if request.event_type == "SubscriptionValidation" else echo_validation(request)

    receiver = Receiver(respond).start()
    try:
        async with running(settings, url=receiver.url) as client:
            await store(client)
            await wait_until(client, lambda s: s["lastDeliveryOutcome"] == "ValidationPending")
            url = receiver.requests[0].json[0]["data"]["validationUrl"]
            path = url.removeprefix("http://127.0.0.1:8080")
            r = await client.get(path)
            assert (r.status_code, r.text) == (200, "Webhook successfully validated as a subscription endpoint.")
            r = await client.get(path)
            assert (r.status_code, r.text) == (404, "The validation code is unknown or was already used.")
            await asyncio.to_thread(receiver.wait_events, 1)
    finally:
        receiver.stop()
