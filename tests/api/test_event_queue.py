"""Events to an Azure Storage Queue (azure-behaviour §12.9), read back from a real Azurite with Azure's SDK."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import httpx
from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient

from dicom_emulator.config import EventSinkSettings, Settings
from tests.apps import APP_POOL, asgi_client
from tests.azurite import Azurite
from tests.factories import make_dataset, multipart, to_bytes


async def _store(client: httpx.AsyncClient) -> str:
    ds = make_dataset()
    body, ctype = multipart([to_bytes(ds)])
    r = await client.post(
        "/v2/studies", content=body, headers={"Accept": "application/dicom+json", "Content-Type": ctype}
    )
    assert r.status_code == 200, r.text
    return str(ds.StudyInstanceUID)


def _receive(queue: QueueClient, count: int) -> list[bytes]:
    """Messages as raw bytes (each one is taken off the queue), once ``count`` have arrived."""
    got: list[bytes] = []
    for _ in range(3000):
        for message in queue.receive_messages(messages_per_page=32):
            got.append(message.content)
            queue.delete_message(message)
        if len(got) >= count:
            return got
        time.sleep(0.01)
    raise AssertionError(f"only {len(got)} of {count} queue messages arrived")


async def test_queue_sink_in_both_encodings(settings: Settings, azurite: Azurite) -> None:
    base64_queue, plain_queue = f"events-{uuid.uuid4().hex[:8]}", f"plain-{uuid.uuid4().hex[:8]}"
    settings.job_poll_interval = 0.05
    settings.event_sinks = [
        EventSinkSettings(type="queue", connection_string=azurite.connection_string, queue_name=base64_queue),
        EventSinkSettings(
            type="queue",
            connection_string=azurite.connection_string,
            queue_name=plain_queue,
            queue_base64=False,
            delivery_schema="CloudEventSchemaV1_0",
        ),
    ]
    async with APP_POOL.running(settings) as app, asgi_client(app) as client:
        study = await _store(client)
        await _store(client)
        assert (await client.delete(f"/v2/studies/{study}")).status_code == 204
        published: list[dict[str, Any]] = (await client.get("/emulator/events")).json()
        for _ in range(6000):
            states = (await client.get("/emulator/eventsubscriptions")).json()
            if all(s["deliveredThrough"] == 3 for s in states):
                break
            await asyncio.sleep(0.01)
        assert [s["deliveredThrough"] for s in states] == [3, 3], states

    # The SDK reads raw bytes; Event Grid's default encoding is base64 of the event's JSON (one event per message).
    raw = QueueClient.from_connection_string(
        azurite.connection_string, base64_queue, message_decode_policy=BinaryBase64DecodePolicy()
    )
    messages = await asyncio.to_thread(_receive, raw, 3)
    assert [json.loads(m) for m in messages] == published
    plain = QueueClient.from_connection_string(azurite.connection_string, plain_queue)
    texts = await asyncio.to_thread(_receive, plain, 3)
    events = [json.loads(t) for t in texts]
    assert [(e["type"], e["id"], e["data"]["sequenceNumber"]) for e in events] == [
        (p["eventType"], p["id"], p["data"]["sequenceNumber"]) for p in published
    ]
    assert all(not _is_base64_json(t) for t in texts)


def _is_base64_json(text: Any) -> bool:
    try:
        json.loads(base64.b64decode(text, validate=True))
    except ValueError:
        return False
    return True
