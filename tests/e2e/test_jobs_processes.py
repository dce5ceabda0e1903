"""Issue 3 across real processes: two emulators on one PostgreSQL, and a reindex that survives a kill."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.databases import PostgresServer
from tests.e2e.server import running_emulator
from tests.factories import make_dataset, multipart, to_bytes

pytestmark = pytest.mark.e2e
ACCEPT = {"Accept": "application/dicom+json"}


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database per test (two processes must start on an empty one and migrate together)."""
    name = f"{postgres_server.prefix}_e2e_{uuid.uuid4().hex[:8]}"
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


def test_two_processes_share_one_change_feed(tmp_path: Path, postgres_url: str) -> None:
    args = ("--database-url", postgres_url)
    with (
        running_emulator(tmp_path / "a", *args) as a,
        running_emulator(tmp_path / "b", *args) as b,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        futures = [pool.submit(_store, url, 15) for url in (a.base_url, b.base_url, a.base_url, b.base_url)]
        stored = [sop for f in futures for sop in f.result()]
        entries = []
        with httpx.Client(base_url=a.base_url) as client:
            offset = 0
            while True:
                page = client.get("/v1/changefeed", params={"offset": offset, "limit": 100}).json()
                if not page:
                    break
                entries.extend(page)
                offset = page[-1]["sequence"]
            # Each process sees the other's instances.
            r = client.get("/v2/instances", params={"limit": 200}, headers=ACCEPT)
            assert len(r.json()) == 60
    sequences = [e["sequence"] for e in entries]
    assert sequences == sorted(set(sequences))
    assert sorted(e["sopInstanceUid"] for e in entries) == sorted(stored)
    assert {e["action"] for e in entries} == {"Create"}


def test_reindex_resumes_after_the_process_is_killed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "DICOM_EMULATOR_REINDEX_BATCH_SIZE": "5",
        "DICOM_EMULATOR_REINDEX_BATCH_PAUSE": "0.1",
        "DICOM_EMULATOR_JOB_LEASE_SECONDS": "1",
        "DICOM_EMULATOR_JOB_POLL_INTERVAL": "0.1",
    }
    with running_emulator(data, env=env) as first:
        with httpx.Client(base_url=first.base_url, timeout=30) as client:
            datasets = [make_dataset(PatientAge=f"{i % 3:03d}Y") for i in range(120)]
            for chunk in range(0, len(datasets), 20):
                body, ctype = multipart([to_bytes(ds) for ds in datasets[chunk : chunk + 20]])
                r = client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
                assert r.status_code == 200
            r = client.post("/v2/extendedquerytags", json=[{"path": "PatientAge", "level": "Study"}])
            assert r.status_code == 202
            operation = r.json()["id"]
            deadline = time.monotonic() + 20
            while True:
                state = client.get(f"/v2/operations/{operation}").json()
                if state["status"] == "running" and 0 < state["percentComplete"] < 60:
                    break
                assert state["status"] in ("notStarted", "running"), state
                assert time.monotonic() < deadline, state
                time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
    interrupted = state["percentComplete"]

    with running_emulator(data, env=env) as second, httpx.Client(base_url=second.base_url, timeout=30) as client:
        state = client.get(f"/v2/operations/{operation}").json()
        # Still the dead runner's claim until its lease runs out, or already resumed (and perhaps
        # finished) by the new process on a slow machine; never failed.
        assert state["status"] in ("running", "succeeded"), state
        deadline = time.monotonic() + 30
        while state["status"] != "succeeded":
            assert state["status"] == "running", state
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
            state = client.get(f"/v2/operations/{operation}").json()
        assert state["percentComplete"] == 100
        assert interrupted < 100
        tag = client.get("/v2/extendedquerytags/PatientAge").json()
        assert (tag["status"], tag["queryStatus"]) == ("ready", "enabled")
        r = client.get("/v2/studies", params={"PatientAge": "001Y", "limit": 200}, headers=ACCEPT)
        assert len(r.json()) == 40
