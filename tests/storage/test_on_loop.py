"""Work done in the event loop's own thread on a SQLite file: a lone instance's store, pinned QIDO reads."""

from __future__ import annotations

import asyncio
import fcntl
import os

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from dicom_emulator.services.search import is_pinned_query
from tests.factories import make_dataset, multipart, to_bytes

STOW_HEADERS = {"Accept": "application/dicom+json"}
# Only a SQLite file stores on the loop (the first test says so for both databases).
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def _stow_one(client: httpx.AsyncClient) -> tuple[httpx.Response, str]:
    ds = make_dataset()
    body, content_type = multipart([to_bytes(ds)])
    response = await client.post("/v2/studies", content=body, headers={**STOW_HEADERS, "Content-Type": content_type})
    return response, ds.StudyInstanceUID


async def _count(app: FastAPI, study_uid: str) -> int:
    async with app.state.runtime.store.index.sessions() as session:
        result = await session.execute(text("SELECT count(*) FROM instances WHERE study_uid = :s"), {"s": study_uid})
        return int(result.scalar_one())


async def test_lone_instances_are_stored_on_the_loop(app: FastAPI, backend: str) -> None:
    store = app.state.runtime.store
    # Both: SQLite's transaction waits for no server; on PostgreSQL a lone new instance is one statement,
    # awaited on the loop through asyncpg (storage/lone_store_pg.py).
    assert store.stores_on_loop
    assert store.index.stores_lone_async is (backend == "postgres")


@SQLITE_ONLY
async def test_the_loop_commits_in_a_thread_while_a_store_thread_of_this_process_holds_the_index(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    index = app.state.runtime.store.index
    # The lock a DIMSE association's (or a multi-part request's) store thread holds during its transaction.
    index._thread_lock.acquire()
    try:
        assert index.add_instances_now([], replace=False) is None
        stow = asyncio.create_task(_stow_one(client))
        await asyncio.sleep(0.3)
        assert not stow.done()  # waiting in a worker thread, not in the loop: this test still runs
    finally:
        index._thread_lock.release()
    response, study = await asyncio.wait_for(stow, 10)
    assert response.status_code == 200, response.text
    assert await _count(app, study) == 1


@SQLITE_ONLY
async def test_the_loop_never_waits_for_another_processs_writer(app: FastAPI, client: httpx.AsyncClient) -> None:
    index = app.state.runtime.store.index
    assert index._file_lock is not None
    # Another open file description of the lock file: flock excludes it as it excludes another process.
    fd = os.open(index._file_lock.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert index.add_instances_now([], replace=False) is None  # at once, not after the other writer
        stow = asyncio.create_task(_stow_one(client))
        await asyncio.sleep(0.3)
        assert not stow.done()  # waiting in a worker thread, not in the loop: this test still runs
        fcntl.flock(fd, fcntl.LOCK_UN)
        response, study = await asyncio.wait_for(stow, 10)
    finally:
        os.close(fd)
    assert response.status_code == 200, response.text
    assert await _count(app, study) == 1


@SQLITE_ONLY
async def test_a_lone_store_waits_for_an_async_transaction_of_this_process_without_blocking_the_loop(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    index = app.state.runtime.store.index
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    # A writer on the loop (a DELETE, a job claim) holds SQLite's write lock across awaits.
    async with index.engine.connect() as conn:
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
        stow = asyncio.create_task(_stow_one(client))
        await asyncio.sleep(0.3)
        assert not stow.done()
        ticks_while_held = ticks
        await conn.commit()
    response, study = await asyncio.wait_for(stow, 10)
    ticker.cancel()
    # The loop kept running while the store waited (a busy wait in the loop would have stopped the ticker and
    # this transaction with it, until SQLite's busy timeout failed the store).
    assert ticks_while_held >= 10
    assert response.status_code == 200, response.text
    assert await _count(app, study) == 1


@SQLITE_ONLY
async def test_pinned_qido_reads_on_the_loop_and_others_in_a_thread(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    response, study = await _stow_one(client)
    assert response.status_code == 200
    index = app.state.runtime.store.index
    hops: list[str] = []
    read = index.read

    async def counted_read(fn: object, *args: object, **kwargs: object) -> object:
        hops.append("thread")
        return await read(fn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(index, "read", counted_read)
    pinned = await client.get("/v2/studies", params={"StudyInstanceUID": study})
    assert pinned.status_code == 200 and len(pinned.json()) == 1
    assert hops == []
    in_study = await client.get(f"/v2/studies/{study}/series")
    assert in_study.status_code == 200 and len(in_study.json()) == 1
    assert hops == []
    listing = await client.get("/v2/studies", params={"PatientName": "Doe*"})
    assert listing.status_code in (200, 204)
    assert hops == ["thread"]


@pytest.mark.parametrize(
    ("params", "study_uid", "pinned"),
    [
        ([("SOPInstanceUID", "1.2.3")], None, True),
        ([("00080018", "1.2.3")], None, True),
        ([("0020000d", "1.2.3")], None, True),  # tags in either case
        ([("PatientID", "P1"), ("PatientName", "Doe*")], None, True),  # the exact match bounds it
        ([("AccessionNumber", "A*")], None, False),  # a wildcard may scan
        ([("PatientID", "P?")], None, False),
        ([("PatientID", "")], None, False),  # empty: matches everything (PS3.4 C.2.2.2.3)
        ([("StudyDate", "20200101-20201231")], None, False),
        ([("limit", "10"), ("offset", "100000")], None, False),
        ([], "1.2.3", True),  # a study's series or instances
    ],
)
def test_pinned_queries(params: list[tuple[str, str]], study_uid: str | None, pinned: bool) -> None:
    assert is_pinned_query(params, study_uid) is pinned
