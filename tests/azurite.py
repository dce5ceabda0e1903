"""A real Azurite (Azure Blob and Queue Storage emulator) for the tests, started on free ports.

Azurite comes from ``tools/node`` (``npm ci`` there; ``scripts/test`` does it when the lock file changed). It runs
with ``--inMemoryPersistence`` (nothing on disk), ``--disableTelemetry`` (otherwise it tries to phone home) and
``--skipApiVersionCheck`` (newer ``azure-storage-*`` SDKs send API versions Azurite may not know yet).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

AZURITE_BIN = Path(__file__).resolve().parent.parent / "tools" / "node" / "node_modules" / ".bin" / "azurite"
REQUIRE_AZURITE = os.environ.get("DICOM_EMULATOR_TEST_REQUIRE_AZURITE") == "1"

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class Azurite:
    """Where a running Azurite listens."""

    blob_port: int
    queue_port: int

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azurite exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"azurite did not listen on {port} within the deadline")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A session's Azurite (Blob + Queue), or a clear skip when it is not installed."""
    if not AZURITE_BIN.exists():
        message = f"Azurite not installed at {AZURITE_BIN}; run `npm ci --prefix tools/node`"
        if REQUIRE_AZURITE:
            pytest.fail(message + " — DICOM_EMULATOR_TEST_REQUIRE_AZURITE=1 forbids skipping")
        pytest.skip(message)
    work = tmp_path_factory.mktemp("azurite")
    service = Azurite(blob_port=_free_port(), queue_port=_free_port())
    command = [
        str(AZURITE_BIN),
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(service.blob_port),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(service.queue_port),
        "--tablePort",
        str(_free_port()),
    ]
    log = (work / "azurite.log").open("wb")
    # cwd: Azurite still writes its debug/extent leftovers next to where it runs, even in memory.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    try:
        deadline = time.monotonic() + 30
        _wait_listening(service.blob_port, process, deadline)
        _wait_listening(service.queue_port, process, deadline)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
