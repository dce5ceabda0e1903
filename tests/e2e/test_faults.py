"""Fault injection in the real process: rules from ``--faults FILE``, a dropped connection, a delay, the log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import _child_env, running_emulator

pytestmark = pytest.mark.e2e
ACCEPT = {"Accept": "application/dicom+json"}


def test_faults_file_drop_delay_and_throttle(tmp_path: Path) -> None:
    rules = tmp_path / "faults.json"
    rules.write_text(
        json.dumps(
            {
                "seed": 3,
                "rules": [
                    {"fault": "drop", "path": "^/v2/series$", "count": 1},
                    {"fault": "delay", "path": "^/v2/instances$", "delay": 0.2, "count": 1},
                    {"fault": 429, "path": "^/v2/studies$", "retry_after": 2, "count": 1},
                ],
            }
        )
    )
    with running_emulator(tmp_path / "data", "--faults", str(rules), "--workers", "1") as emulator:
        with httpx.Client(base_url=emulator.base_url, timeout=30) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                client.get("/v2/series", headers=ACCEPT)  # the connection closes with no answer
            assert client.get("/v2/series", headers=ACCEPT).status_code == 204  # count 1: served again
            assert client.get("/v2/instances", headers=ACCEPT).status_code == 204  # delayed, then served
            r = client.get("/v2/studies", headers=ACCEPT)
            assert (r.status_code, r.headers["retry-after"]) == (429, "2")
            assert client.get("/v2/studies", headers=ACCEPT).status_code == 204
            state = client.get("/emulator/faults").json()
            assert [(rule["matched"], rule["fired"]) for rule in state["rules"]] == [(2, 1), (1, 1), (2, 1)]
        log = emulator.output()
    assert "fault injected: drop on GET /v2/series (rule 0, fault 1 of 1)" in log
    assert "fault injected: delay on GET /v2/instances (rule 1, fault 1 of 1)" in log
    assert "fault injected: 429 on GET /v2/studies (rule 2, fault 1 of 1)" in log
    assert "Traceback" not in log and "ASGI callable returned without" not in log


def test_put_refused_with_several_workers(tmp_path: Path) -> None:
    with running_emulator(tmp_path / "data", "--workers", "2") as emulator:
        r = httpx.put(f"{emulator.base_url}/emulator/faults", json={"rules": [{"fault": 503}]})
    assert r.status_code == 409
    assert r.text == (
        "Fault rules can be changed over HTTP only with --workers 1; with several workers use serve --faults FILE."
    )


def test_bad_faults_file_is_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "faults.json"
    rules.write_text('{"rules": [{"fault": "explode"}]}')
    result = subprocess.run(
        [sys.executable, "-m", "dicom_emulator", "serve", "--port", "0", "--in-memory", "--faults", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_child_env(),
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"dicom-emulator: error: {rules}: invalid fault rules: rules.0.fault: ")
    assert result.stderr.endswith("(--faults / DICOM_EMULATOR_FAULTS)\n")
    assert result.stderr.count("\n") == 1
