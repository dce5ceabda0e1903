"""The synchronous engine beside the async one: the store transaction runs in a worker thread on both databases."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from dicom_emulator.config import Settings
from dicom_emulator.storage.db import create_sync_engine


def test_sync_engine_per_database() -> None:
    pg = create_sync_engine("postgresql+asyncpg://user:secret@db.example:5433/dicom?application_name=x")
    assert pg is not None
    assert (pg.url.drivername, pg.url.host, pg.url.port, pg.url.database) == (
        "postgresql+psycopg",
        "db.example",
        5433,
        "dicom",
    )
    assert (pg.url.username, pg.url.password, pg.url.query) == ("user", "secret", {"application_name": "x"})
    pg.dispose()
    lite = create_sync_engine("sqlite+aiosqlite:////tmp/x/index.sqlite")
    assert lite is not None and lite.url.drivername == "sqlite" and lite.url.database == "/tmp/x/index.sqlite"
    lite.dispose()
    assert create_sync_engine("sqlite+aiosqlite://") is None  # in memory: the one async connection holds it


async def test_store_runs_blocking_and_reads_the_active_tags_in_the_thread(
    app: FastAPI, settings: Settings, backend: str
) -> None:
    runtime = app.state.runtime
    assert runtime.store.stores_blocking, backend  # files on disk: one worker-thread hop for the whole store
    assert runtime.store.index.writes_blocking
    assert await asyncio.to_thread(runtime.store.tags.active_blocking) == []
    # Reads: a worker thread on the SQLite file, asyncpg on the loop for PostgreSQL.
    assert runtime.store.index._sync_reads is (backend == "sqlite")
