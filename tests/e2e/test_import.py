"""``dicom-emulator import``: folders and zip files through the store service, resumable, with a summary."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import _child_env, running_emulator
from tests.factories import make_dataset, to_bytes

pytestmark = pytest.mark.e2e


def _import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dicom_emulator", "import", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_child_env(), "COLUMNS": "200"},
    )


def _counts(output: str) -> dict[str, int]:
    rows = re.findall(r"│ (stored|already stored \(skipped\)|not DICOM \(skipped\)|failed)\s+│\s+(\d+) │", output)
    return {name: int(count) for name, count in rows}


def test_import_folder_and_zip_then_resume(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    a, b, c = (make_dataset(patient_id="IMPORT-1") for _ in range(3))
    (source / "a.dcm").write_bytes(to_bytes(a))
    (source / "sub" / "b.dcm").write_bytes(to_bytes(b))
    (source / "notes.txt").write_text("not an image")
    (source / "sub" / "truncated.dcm").write_bytes(to_bytes(make_dataset())[:200])
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as archive:
        archive.writestr("x/c.dcm", to_bytes(c))
        archive.writestr("x/a-copy.dcm", to_bytes(a))
    data = tmp_path / "data"

    first = _import(str(source), str(tmp_path / "more.zip"), "--data-dir", str(data), "--jobs", "2")
    assert first.returncode == 1, first.stderr  # one file failed
    assert _counts(first.stdout) == {
        "stored": 3,
        "already stored (skipped)": 1,
        "not DICOM (skipped)": 1,
        "failed": 1,
    }
    assert re.search(r"validation failed \(43264\)\s+│\s+1 │ .*truncated\.dcm", first.stdout)

    # Again: everything is already there (an interrupted import resumes the same way).
    second = _import(str(source / "a.dcm"), str(tmp_path / "more.zip"), "--data-dir", str(data), "--quiet")
    assert second.returncode == 0, second.stderr
    assert _counts(second.stdout) == {"stored": 0, "already stored (skipped)": 3, "not DICOM (skipped)": 0, "failed": 0}
    assert "importing" not in second.stdout  # --quiet: the summary only

    stats = subprocess.run(
        [sys.executable, "-m", "dicom_emulator", "stats", "--data-dir", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_child_env(),
    )
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert {k: counts[k] for k in ("studies", "series", "instances", "change feed entries", "blob files")} == {
        "studies": 3,
        "series": 3,
        "instances": 3,
        "change feed entries": 3,
        "blob files": 3,
    }
    assert counts["blob bytes"] == sum(len(to_bytes(ds)) for ds in (a, b, c))

    with running_emulator(data) as emulator, httpx.Client(base_url=emulator.base_url) as client:
        r = client.get("/v2/instances", params={"PatientID": "IMPORT-1"}, headers={"Accept": "application/dicom+json"})
        assert r.status_code == 200
        assert {item["00080018"]["Value"][0] for item in r.json()} == {
            a.SOPInstanceUID,
            b.SOPInstanceUID,
            c.SOPInstanceUID,
        }
        feed = client.get("/v2/changefeed", headers={"Accept": "application/json"}).json()
        assert [entry["action"] for entry in feed] == ["Create"] * 3


def test_stats_without_a_store_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dicom_emulator", "stats", "--data-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        env=_child_env(),
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"dicom-emulator: error: no store in {tmp_path}/none (no index.sqlite): "
        "set --data-dir / DICOM_EMULATOR_DATA_DIR\n"
    )
    assert not (tmp_path / "none").exists()


def test_import_missing_path_is_one_line(tmp_path: Path) -> None:
    result = _import(str(tmp_path / "nope"), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert result.stderr == f"dicom-emulator: error: no such file or directory: {tmp_path}/nope\n"
