"""Two real ``dicom-emulator serve`` processes on one store (SQLite file or PostgreSQL database).

The reliability tests race requests across both processes, so every lock that only works inside one
process (asyncio locks, the SQLite write queue) is out of the picture and only the database's own
locking, and the file lock beside a SQLite index, keep the answers exact.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.databases import PostgresServer
from tests.e2e.server import Emulator, EmulatorStartError, running_emulator

ACCEPT = {"Accept": "application/dicom+json"}


@dataclass
class Cluster:
    """The processes sharing one store, and the command-line arguments that point a new one at it."""

    emulators: list[Emulator]
    data_dir: Path
    store_args: tuple[str, ...]

    def url(self, i: int) -> str:
        """The base URL of process ``i`` modulo the number of processes (requests alternate between them)."""
        return self.emulators[i % len(self.emulators)].base_url

    def feed(self, study_uid: str | None = None) -> list[dict[str, object]]:
        """The whole v1 change feed (every page), optionally only the entries of one study."""
        entries: list[dict[str, object]] = []
        with httpx.Client(base_url=self.url(0), timeout=60) as client:
            latest = client.get("/v1/changefeed/latest")
            last = 0 if latest.status_code == 204 else int(latest.json()["sequence"])
            # v1 pages are sequence windows (offset < sequence <= offset + limit) and may have gaps.
            for offset in range(0, last, 100):
                entries.extend(client.get("/v1/changefeed", params={"offset": offset, "limit": 100}).json())
        return [e for e in entries if study_uid is None or e["studyInstanceUid"] == study_uid]


@pytest.fixture(scope="module", params=BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def store_args(
    store_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, tuple[str, ...]]]:
    """A data directory and, on PostgreSQL, a database of this module's own."""
    data_dir = tmp_path_factory.mktemp("reliability") / "data"
    if store_backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"{server.prefix}_r{uuid.uuid4().hex[:8]}"
        url = server.create_from_template(name)
        yield data_dir, ("--database-url", url)
        server.drop(name)
    else:
        yield data_dir, ()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(store_args: tuple[Path, tuple[str, ...]]) -> Iterator[Cluster]:
    """Two single-worker processes on one data directory and database, started one after the other."""
    data_dir, args = store_args
    with ExitStack() as stack:
        try:
            emulators = [
                stack.enter_context(running_emulator(data_dir, "--workers", "1", "--silent", *args, label=f"p{i}"))
                for i in range(2)
            ]
        except EmulatorStartError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield Cluster(emulators=emulators, data_dir=data_dir, store_args=args)
