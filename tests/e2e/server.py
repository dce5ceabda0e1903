"""Run the real ``dicom-emulator serve`` as a child process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STARTUP_TIMEOUT = 30.0
_POLL_INTERVAL = 0.05
# Environment variables that would change how the child emulator is configured.
_ENV_PREFIXES = ("DICOM_EMULATOR_",)
_ENV_NAMES = ("DATABASE_URL", "DICOM_STORAGE_DIR")


class EmulatorStartError(RuntimeError):
    """The emulator did not answer ``GET /health`` with 200 in time (the message holds its output)."""


@dataclass
class Emulator:
    """A running ``dicom-emulator serve`` process."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    startup_seconds: float = 0.0
    command: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "tmp"

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def status_kib(self, key: str) -> int:
        """A ``kB`` field of ``/proc/<pid>/status``, e.g. ``VmRSS`` or ``VmHWM``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == key:
                return int(value.split()[0])
        raise KeyError(key)

    def reset_peak_rss(self) -> bool:
        """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` value 5); False when not allowed."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def blob_files(self) -> set[Path]:
        return {p for p in self.blob_dir.rglob("*") if p.is_file()} if self.blob_dir.exists() else set()

    def spool_files(self) -> set[Path]:
        # Each process spools into tmp/<pid>-<token>/ and holds a .lock file there (storage/sweep.py).
        if not self.spool_dir.exists():
            return set()
        return {p for p in self.spool_dir.rglob("*") if p.is_file() and not p.name.startswith(".")}


def free_port() -> int:
    """A port the OS just handed out for 127.0.0.1 (bind to port 0), released for the child to use."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env() -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(_ENV_PREFIXES) and key not in _ENV_NAMES
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_ready(emulator: Emulator, started: float, timeout: float) -> None:
    deadline = started + timeout
    with httpx.Client(timeout=2.0) as client:
        while True:
            code = emulator.process.poll()
            if code is not None:
                raise EmulatorStartError(
                    f"dicom-emulator exited with code {code} before it was ready.\n"
                    f"command: {' '.join(emulator.command)}\n--- output ---\n{emulator.output()}"
                )
            try:
                if client.get(f"{emulator.base_url}/health").status_code == 200:
                    emulator.startup_seconds = time.monotonic() - started
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise EmulatorStartError(
                    f"dicom-emulator did not answer GET /health with 200 within {timeout:.0f} s.\n"
                    f"command: {' '.join(emulator.command)}\n--- output ---\n{emulator.output()}"
                )
            time.sleep(_POLL_INTERVAL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # uvicorn shuts down gracefully (lifespan shutdown runs)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def running_emulator(
    data_dir: Path,
    *extra_args: str,
    timeout: float = STARTUP_TIMEOUT,
    attempts: int = 3,
    env: dict[str, str] | None = None,
    label: str = "emulator",
) -> Iterator[Emulator]:
    """Start ``python -m dicom_emulator serve`` on a free port, wait for ``/health``, stop it afterwards.

    Another process may grab the free port between our probe and the child's bind; the start is then
    retried on a new port (the child exits at once, which ``_wait_ready`` notices). ``label`` names the log
    file beside ``data_dir``: several processes on one data directory need one each.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    last_error: EmulatorStartError | None = None
    for attempt in range(attempts):
        port = free_port()
        log_path = data_dir.parent / f"{data_dir.name}-{label}-{attempt}.log"
        command = [
            sys.executable,
            "-m",
            "dicom_emulator",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *extra_args,
        ]
        with log_path.open("wb") as log:
            started = time.monotonic()
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**_child_env(), **(env or {})}
            )
        emulator = Emulator(process=process, port=port, data_dir=data_dir, log_path=log_path, command=command)
        try:
            _wait_ready(emulator, started, timeout)
        except EmulatorStartError as exc:
            _stop(process)
            last_error = exc
            if "address already in use" in emulator.output().lower():
                continue
            raise
        try:
            yield emulator
        finally:
            _stop(process)
        return
    assert last_error is not None
    raise last_error
