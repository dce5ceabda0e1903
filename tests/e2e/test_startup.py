"""Start-up failures a user can fix are one line on stderr naming the setting, with a non-zero exit."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.server import _child_env

pytestmark = pytest.mark.e2e


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dicom_emulator", "serve", "--host", "127.0.0.1", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_child_env(), **(env or {})},
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if "Traceback" in line or "error" in line.lower()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_port_in_use_fails_before_creating_anything(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert _one_error_line(result) == (
        f"dicom-emulator: error: HTTP port {port} on 127.0.0.1 is already in use (another dicom-emulator?): "
        "choose another with --port / DICOM_EMULATOR_PORT, or 0 for a free one"
    )
    assert " ready on " not in result.stderr
    assert not (tmp_path / "data").exists()


def test_dimse_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--port", "0", "--dimse-port", str(port), "--data-dir", str(tmp_path / "data"))
    assert _one_error_line(result) == (
        f"dicom-emulator: error: DIMSE port {port} on 127.0.0.1 is already in use (another dicom-emulator?): "
        "choose another with --dimse-port / DICOM_EMULATOR_DIMSE_PORT"
    )


def test_postgres_unreachable() -> None:
    result = _serve("--port", "0", "--database-url", "postgresql://someone:secret@127.0.0.1:1/db")
    line = _one_error_line(result)
    assert line.startswith(
        "dicom-emulator: error: cannot connect to PostgreSQL at postgresql+asyncpg://someone:***@127.0.0.1:1/db ("
    )
    assert line.endswith("): start it or fix --database-url / DICOM_EMULATOR_DATABASE_URL (or DATABASE_URL)")
    assert "secret" not in result.stderr


def test_corrupt_index(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "index.sqlite").write_bytes(b"this is not sqlite" * 100)
    result = _serve("--port", "0", "--data-dir", str(data))
    assert _one_error_line(result) == (
        f"dicom-emulator: error: {data}/index.sqlite is not a valid SQLite index (file is not a database): "
        "move it away to start empty, or choose another --data-dir / DICOM_EMULATOR_DATA_DIR"
    )


def test_data_dir_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = _serve("--port", "0", "--data-dir", str(tmp_path / "file" / "data"))
    assert _one_error_line(result) == (
        f"dicom-emulator: error: data directory {tmp_path}/file/data is not a directory (Not a directory): "
        "set --data-dir / DICOM_EMULATOR_DATA_DIR"
    )


def test_invalid_environment_value() -> None:
    result = _serve(env={"DICOM_EMULATOR_PORT": "eighty"})
    assert _one_error_line(result) == (
        "dicom-emulator: error: invalid port (--port / DICOM_EMULATOR_PORT): "
        "Input should be a valid integer, unable to parse string as an integer"
    )


def test_port_zero_url_file_and_healthcheck(tmp_path: Path) -> None:
    """``--port 0`` binds a free port, logs it and writes it to ``--url-file``; ``healthcheck`` probes it."""
    url_file = tmp_path / "url"
    log = tmp_path / "log"
    env = _child_env()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dicom_emulator",
                "serve",
                "--port",
                "0",
                "--in-memory",
                "--url-file",
                str(url_file),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = ""
        for _ in range(600):
            if " ready on " in log.read_text():
                url = url_file.read_text().strip()
                break
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert f"ready on {url} (API docs: {url}/emulator/docs)" in log.read_text()
        check = [sys.executable, "-m", "dicom_emulator", "healthcheck", "--url-file", str(url_file)]
        assert subprocess.run(check, env=env, timeout=30).returncode == 0
    finally:
        process.terminate()
        process.wait(timeout=30)
    result = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith(f"dicom-emulator: error: {url}/health: ")
