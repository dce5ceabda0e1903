"""Two emulator processes on one PostgreSQL with the same webhook sink: each event is delivered once, in order."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.databases import PostgresServer
from tests.e2e.server import running_emulator
from tests.factories import make_dataset, multipart, to_bytes
from tests.webhook import Receiver

pytestmark = pytest.mark.e2e
ACCEPT = {"Accept": "application/dicom+json"}


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"{postgres_server.prefix}_ev_{uuid.uuid4().hex[:8]}"
    yield postgres_server.create(name)
    postgres_server.drop(name)


def _store(base_url: str, count: int) -> list[str]:
    sops = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(count):
            ds = make_dataset()
            body, ctype = multipart([to_bytes(ds)])
            r = client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
            assert r.status_code == 200, r.text
            sops.append(str(ds.SOPInstanceUID))
    return sops


def test_two_processes_deliver_each_event_once(tmp_path: Path, postgres_url: str) -> None:
    receiver = Receiver().start()
    sink = json.dumps({"type": "webhook", "url": receiver.url, "name": "shared", "retry_scale": 0.001})
    args = ("--database-url", postgres_url, "--event-sink", sink)
    env = {"DICOM_EMULATOR_JOB_POLL_INTERVAL": "0.1"}
    try:
        with (
            running_emulator(tmp_path / "a", *args, env=env) as a,
            running_emulator(tmp_path / "b", *args, env=env) as b,
            ThreadPoolExecutor(max_workers=4) as pool,
        ):
            futures = [pool.submit(_store, url, 10) for url in (a.base_url, b.base_url, a.base_url, b.base_url)]
            stored = [sop for f in futures for sop in f.result()]
            events = receiver.wait_events(40)
            with httpx.Client(base_url=b.base_url) as client:
                published = client.get("/emulator/events", params={"limit": 1000}).json()
        assert len(events) == 40  # nothing twice
        assert [e["data"]["sequenceNumber"] for e in events] == sorted(e["data"]["sequenceNumber"] for e in events)
        assert sorted(e["data"]["imageSopInstanceUid"] for e in events) == sorted(stored)
        assert [e["id"] for e in events] == [e["id"] for e in published]
        assert [r.event_type for r in receiver.requests].count("SubscriptionValidation") == 1
    finally:
        receiver.stop()
