"""The synchronous engine beside the async one: the store transaction runs in a worker thread on both databases."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi import FastAPI

from dicom_emulator.config import Settings, normalize_database_url
from dicom_emulator.storage.db import PING_AFTER_IDLE_SECONDS, create_engine, create_sync_engine
from tests.databases import PostgresServer


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


@pytest.mark.postgres
def test_postgres_commits_follow_durability_and_idle_connections_are_pinged(postgres_server: PostgresServer) -> None:
    url = normalize_database_url(postgres_server.url(postgres_server.template))
    for power_safe, expected in ((False, "off"), (True, "on")):
        engine = create_sync_engine(url, power_safe=power_safe)
        assert engine is not None
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == expected
        engine.dispose()

    async def async_setting() -> str | None:
        engine = create_engine(url, power_safe=False)
        try:
            async with engine.connect() as conn:
                return (await conn.exec_driver_sql("SHOW synchronous_commit")).scalar()
        finally:
            await engine.dispose()

    assert asyncio.run(async_setting()) == "off"

    # A pooled connection whose server session ended while it sat idle is replaced at the next checkout.
    engine = create_sync_engine(url)
    assert engine is not None
    with engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with engine.connect() as conn:  # used again at once: no ping, the same session
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid
        conn.commit()
    admin = create_sync_engine(url)
    assert admin is not None
    with admin.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        conn.commit()
    admin.dispose()
    time.sleep(PING_AFTER_IDLE_SECONDS + 0.1)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    engine.dispose()


@pytest.mark.postgres
def test_a_pinged_connection_can_still_switch_to_autocommit(postgres_server: PostgresServer) -> None:
    # The tag store reads in AUTOCOMMIT: a ping that left a transaction open would make that switch fail.
    engine = create_sync_engine(normalize_database_url(postgres_server.url(postgres_server.template)))
    assert engine is not None
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        conn.commit()
    time.sleep(PING_AFTER_IDLE_SECONDS + 0.1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()
