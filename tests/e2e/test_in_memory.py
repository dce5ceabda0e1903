"""--in-memory: the real process keeps nothing on disk, and a restart starts empty."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.server import running_emulator
from tests.factories import make_dataset, multipart, to_bytes

pytestmark = pytest.mark.e2e
ACCEPT = {"Accept": "application/dicom+json"}


def test_in_memory_keeps_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    ds = make_dataset()
    for run in range(2):
        with running_emulator(tmp_path / f"logs{run}", "--in-memory", "--data-dir", str(data_dir)) as emulator:
            with httpx.Client(base_url=emulator.base_url) as client:
                assert client.get("/v2/studies", headers=ACCEPT).status_code == 204  # empty at every start
                body, ctype = multipart([to_bytes(ds)])
                r = client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
                assert r.status_code == 200
                url = f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
                r = client.get(url, headers={"Accept": "application/dicom; transfer-syntax=*"})
                assert r.status_code == 200
                assert r.content[128:132] == b"DICM"
            assert "'blobs': 'memory'" in emulator.output()
        assert not data_dir.exists()
