"""``kill -9`` during ingest, then a restart: nothing acknowledged is lost, nothing unreachable is left behind."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Emulator, running_emulator
from tests.factories import make_dataset, make_instance, multipart, new_uid, to_bytes
from tests.reliability.conftest import ACCEPT

pytestmark = pytest.mark.e2e
# Orphans are removed however young: no other process stores into this data directory meanwhile.
ENV = {"DICOM_EMULATOR_ORPHAN_GRACE_SECONDS": "0"}


def _wait_for_log(emulator: Emulator, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in emulator.output():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{emulator.output()}"
        time.sleep(0.05)


def _ingest_until_killed(emulator: Emulator, acknowledged: set[str]) -> None:
    """Four clients store 3-instance requests until the process is killed after 12 acknowledged requests."""
    done = threading.Event()
    lock = threading.Lock()
    answered = [0]

    def client() -> None:
        with httpx.Client(base_url=emulator.base_url, timeout=30) as http:
            while not done.is_set():
                study = new_uid()
                datasets = [make_dataset(study_uid=study, rows=64, columns=64) for _ in range(3)]
                body, ctype = multipart([to_bytes(ds) for ds in datasets])
                try:
                    answer = http.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
                except httpx.TransportError:
                    return  # killed mid-request: this request was never acknowledged
                assert answer.status_code == 200, answer.text
                with lock:
                    acknowledged.update(ds.SOPInstanceUID for ds in datasets)
                    answered[0] += 1
                    if answered[0] >= 12 and not done.is_set():
                        done.set()
                        emulator.process.kill()  # SIGKILL while the other clients are mid-request

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(client) for _ in range(4)]:
            future.result()
    emulator.process.wait(timeout=30)


def _plant_leftovers(data_dir: Path) -> None:
    """What a crash can also leave: a spool directory of a dead process, and an old blob file without a row."""
    dead = data_dir / "tmp" / "999999-deadbeef"
    dead.mkdir(parents=True, exist_ok=True)
    (dead / ".lock").touch()
    (dead / "part-x.tmp").write_bytes(b"half an upload")
    orphan = data_dir / "blobs" / "1" / new_uid() / new_uid() / f"{new_uid()}.0123abcd.dcm"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(make_instance())
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))


def test_kill_during_ingest_then_restart_leaves_a_consistent_store(
    store_args: tuple[Path, tuple[str, ...]],
) -> None:
    data_dir, args = store_args
    acknowledged: set[str] = set()
    with running_emulator(data_dir, "--workers", "1", *args, env=ENV, label="crash") as first:
        _ingest_until_killed(first, acknowledged)
    assert len(acknowledged) >= 36
    _plant_leftovers(data_dir)
    with running_emulator(data_dir, "--workers", "1", *args, env=ENV, label="restart") as second:
        _wait_for_log(second, "start-up sweep: removed")
        assert second.spool_files() == set()
        with httpx.Client(base_url=second.base_url, timeout=60) as http:
            stored: dict[str, str] = {}
            offset = 0
            while True:
                page = http.get("/v2/instances", params={"limit": 200, "offset": offset}, headers=ACCEPT)
                if page.status_code == 204:
                    break
                for item in page.json():
                    stored[item["00080018"]["Value"][0]] = item["0020000D"]["Value"][0]
                offset += 200
            # Every acknowledged instance is there and retrievable; unacknowledged ones may be (committed
            # just before the kill) but then completely.
            assert acknowledged <= set(stored)
            for sop in acknowledged:
                answer = http.get(
                    f"/v2/studies/{stored[sop]}/instances", params={"SOPInstanceUID": sop}, headers=ACCEPT
                )
                assert answer.status_code == 200
            # One file per indexed instance, no orphan; one Create entry per instance in the feed.
            files = second.blob_files()
            assert sorted(p.name.split(".dcm")[0].rsplit(".", 1)[0] for p in files) == sorted(stored)
            latest = http.get("/v1/changefeed/latest").json()["sequence"]
            feed = [
                entry
                for offset in range(0, latest, 100)
                for entry in http.get("/v1/changefeed", params={"offset": offset, "limit": 100}).json()
            ]
            assert sorted(e["sopInstanceUid"] for e in feed) == sorted(stored)
            assert {e["action"] for e in feed} == {"Create"}
