"""The SQL index: instance versions, study/series rows, and the change-feed rows they produce.

Every write that makes an instance visible or invisible happens in one transaction together with
its change-feed entry (architecture invariant 1); blobs are written before and deleted after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dicom_emulator.clock import utcnow
from dicom_emulator.errors import InstanceAlreadyExistsError
from dicom_emulator.storage import compiled_sql, lone_store_pg
from dicom_emulator.storage.db import SQLITE_BUSY_TIMEOUT_MS
from dicom_emulator.storage.feed_append import FEED_LOCK_ID
from dicom_emulator.storage.instance_deletes import delete_level
from dicom_emulator.storage.instance_writes import (
    ACTION_CREATE,
    ACTION_UPDATE,
    ALREADY_EXISTS_MESSAGE,
    AddResult,
    NewInstance,
    write_batch,
)
from dicom_emulator.storage.models import (
    DEFAULT_PARTITION_KEY,
    DEFAULT_PARTITION_NAME,
    Instance,
    Partition,
    Study,
)
from dicom_emulator.storage.querying import metadata_texts
from dicom_emulator.storage.wal_checkpoint import WalCheckpointer
from dicom_emulator.storage.write_lock import ProcessWriteLock

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["ACTION_CREATE", "ACTION_UPDATE", "AddResult", "InstanceRecord", "NewInstance", "SqlIndex"]

ACTION_DELETE = "Delete"


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One visible instance version as the services see it."""

    watermark: int
    partition_key: int
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str | None
    transfer_syntax: str | None
    blob_key: str
    size: int
    number_of_frames: int | None
    metadata_json: str
    # Frame byte ranges (dicom/frames.py JSON); None when unknown (computed on demand).
    frames_json: str | None = None
    # The first version, when $bulkUpdate replaced it (azure-behaviour §15.3); None otherwise.
    original_watermark: int | None = None
    original_blob_key: str | None = None
    original_size: int | None = None
    original_metadata_json: str | None = None

    def original(self) -> InstanceRecord:
        """The original version (``msdicom-request-original``, azure-behaviour §15.4); itself when never updated."""
        if self.original_watermark is None or self.original_blob_key is None:
            return self
        return replace(
            self,
            watermark=self.original_watermark,
            blob_key=self.original_blob_key,
            size=self.original_size if self.original_size is not None else self.size,
            metadata_json=self.original_metadata_json or self.metadata_json,
            frames_json=None,  # byte ranges of the latest file; the original's are located on demand
        )

    @property
    def blob_keys(self) -> list[str]:
        """Every file of this instance: the latest version and the original one."""
        keys = [self.blob_key]
        if self.original_blob_key is not None and self.original_blob_key != self.blob_key:
            keys.append(self.original_blob_key)
        return keys

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads(self.metadata_json)  # type: ignore[no-any-return]


def _record(row: Any) -> InstanceRecord:
    """From an ``Instance`` or a row of the instances table."""
    return InstanceRecord(
        watermark=row.watermark,
        partition_key=row.partition_key,
        study_uid=row.study_uid,
        series_uid=row.series_uid,
        sop_uid=row.sop_uid,
        sop_class_uid=row.sop_class_uid,
        transfer_syntax=row.transfer_syntax,
        blob_key=row.blob_key,
        size=row.size,
        number_of_frames=row.number_of_frames,
        metadata_json=row.metadata_json,
        frames_json=row.frames_json,
        original_watermark=row.original_watermark,
        original_blob_key=row.original_blob_key,
        original_size=row.original_size,
        original_metadata_json=row.original_metadata_json,
    )


def _write_in_transaction(conn: Connection, batch: Sequence[NewInstance], replace: bool) -> list[AddResult]:
    """The store transaction's statements and its end on a synchronous connection; rolled back on any error."""
    try:
        results = write_batch(conn, batch, replace=replace, now=utcnow())
        _finish(conn, results)
    except BaseException:
        conn.rollback()
        raise
    return results


def _failed_add(exc: Exception, *, duplicate: bool) -> AddResult:
    """A lone store's failure as write_batch reports it: a duplicate is 45070, anything else a storage error (272)."""
    return AddResult(error=InstanceAlreadyExistsError(ALREADY_EXISTS_MESSAGE) if duplicate else exc)


def _finish(conn: Connection, results: Sequence[AddResult]) -> None:
    """Commit a store transaction that stored something; roll back one that stored nothing.

    On PostgreSQL a lone instance's unique violation leaves its transaction failed (write_batch takes no
    savepoint for it): there is nothing to keep, and the study and series rows it touched revert.
    """
    if any(result.watermark is not None for result in results):
        conn.commit()
    else:
        conn.rollback()


class SqlIndex:
    """Index operations over an async session factory (SQLite or PostgreSQL).

    ``sync_engine`` (a synchronous engine on the same database: pysqlite on a SQLite file, psycopg on
    PostgreSQL) runs the store transaction in one worker thread; without it (in-memory SQLite) the store
    transaction runs on the async engine (storage/instance_writes.py). On a SQLite file the reads use it too.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        lock_path: Path | None = None,
        sync_engine: Engine | None = None,
    ) -> None:
        self.sessions = sessions
        bind = sessions.kw.get("bind")
        assert isinstance(bind, AsyncEngine)
        self.engine: AsyncEngine = bind
        sqlite_bind = bind.dialect.name == "sqlite"
        # SQLite has one writer at a time and its busy handler backs off in sleeps of up to 100 ms;
        # queueing this process's index writes on a lock instead keeps store latency flat, and
        # ``lock_path`` (a file beside a SQLite index) queues the writers of other processes the same way.
        self._write_lock: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if sqlite_bind else contextlib.nullcontext()
        )
        self._file_lock = ProcessWriteLock(lock_path) if sqlite_bind and lock_path is not None else None
        self._sync_engine = sync_engine
        # PostgreSQL: the same pool's connections in autocommit, for a lone store's single statement.
        self._lone_engine: Engine | None = (
            sync_engine.execution_options(isolation_level="AUTOCOMMIT")
            if sync_engine is not None and sync_engine.dialect.name == "postgresql"
            else None
        )
        # Reads hop to a thread only on a SQLite file (aiosqlite costs several hops per statement); on
        # PostgreSQL asyncpg serves them on the loop.
        self._sync_reads = sqlite_bind and sync_engine is not None
        # SQLite: held by the one thread per process that runs a store transaction (the asyncio lock admits one).
        self._thread_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if sqlite_bind else contextlib.nullcontext()
        )
        # Called after a commit that appended change-feed rows (the event dispatcher delivers at once).
        self.feed_listeners: list[Callable[[], None]] = []
        # The synchronous engine's connections leave WAL checkpoints to this thread (storage/wal_checkpoint.py).
        self._checkpointer: WalCheckpointer | None = None
        if sqlite_bind and sync_engine is not None and sync_engine.url.database:
            self._checkpointer = WalCheckpointer(Path(sync_engine.url.database))
            self._checkpointer.start()

    def _feed_committed(self) -> None:
        for listener in self.feed_listeners:
            listener()

    def _process_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._file_lock() if self._file_lock is not None else contextlib.nullcontext()

    @contextlib.contextmanager
    def _file_lock_blocking(self) -> Iterator[None]:
        with self._thread_lock:
            if self._file_lock is None:
                yield
            else:
                with self._file_lock.blocking():
                    yield

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._file_lock is not None:
            self._file_lock.close()
        if self._sync_engine is not None:
            self._sync_engine.dispose()

    async def ensure_default_partition(self) -> None:
        async with self.sessions.begin() as session:
            stmt = self._insert_ignore(session, Partition).values(
                partition_key=DEFAULT_PARTITION_KEY, partition_name=DEFAULT_PARTITION_NAME, created_date=utcnow()
            )
            await session.execute(stmt)

    @staticmethod
    def _insert_ignore(session: AsyncSession, table: Any) -> Any:
        """INSERT … ON CONFLICT DO NOTHING on both dialects."""
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    async def add_instances(self, batch: Sequence[NewInstance], *, replace: bool) -> list[AddResult]:
        """Make each instance of ``batch`` visible with its change-feed entry, in ONE transaction.

        One commit per STOW request instead of one per instance: the write lock, the WAL append and the
        change-feed lock are paid once. Outcomes stay per instance (storage/instance_writes.py); a crash
        at any point leaves the whole batch or none of it (architecture invariant 1).
        """
        if not batch:
            return []
        if self._sync_engine is not None:
            async with self._write_lock:
                results = await asyncio.to_thread(self._write_blocking, batch, replace)
        else:
            async with self._write_lock, self.engine.connect() as conn:
                if conn.dialect.name == "sqlite":
                    # Take SQLite's write lock first: the duplicate check is then exclusive.
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
                results = await conn.run_sync(write_batch, batch, replace=replace, now=utcnow())
                await conn.run_sync(_finish, results)
        if any(r.watermark is not None for r in results):
            self._feed_committed()
        return results

    @property
    def writes_blocking(self) -> bool:
        """Whether :meth:`add_instances_blocking` works: a synchronous engine (SQLite file or PostgreSQL)."""
        return self._sync_engine is not None

    @property
    def on_local_file(self) -> bool:
        """Whether the index is a SQLite file: its statements wait for no server, so short ones may run on the loop."""
        return self._sync_reads

    def add_instances_blocking(
        self, batch: Sequence[NewInstance], *, replace: bool, loop: asyncio.AbstractEventLoop
    ) -> list[AddResult]:
        """:meth:`add_instances` from a thread that is not the event loop's (only when :attr:`writes_blocking`).

        The same transaction under the same locks: this process's store threads queue on the thread lock,
        other processes on the lock file. ``loop`` runs the feed listeners (they wake loop tasks).
        """
        results = self._write_blocking(batch, replace)
        # Only when someone listens (an event sink): waking the loop is a thread hand-off per commit.
        if self.feed_listeners and any(r.watermark is not None for r in results):
            loop.call_soon_threadsafe(self._feed_committed)
        return results

    def add_instances_now(self, batch: Sequence[NewInstance], *, replace: bool) -> list[AddResult] | None:
        """:meth:`add_instances` run in the event loop's own thread, or None when that would wait for this process.

        Only where :attr:`on_local_file`. The loop must never wait for a writer that needs the loop to finish:
        one of this process's store threads (its thread lock, tried once), a transaction of this process
        awaiting on the loop (SQLite's lock, tried once with no busy wait), or another process's writer (the lock
        file, tried once). That last one can need this loop too: the lock file is one ``flock`` per process, so a
        thread of this process that releases it releases it for an async DELETE of this process still running, and
        the other process's writer then waits in SQLite for that DELETE, whose statements need this loop (a lone
        STOW that blocked the loop on the lock file deadlocked so until SQLite's busy timeout: a 500). The caller
        commits from a worker thread instead, which may wait.
        """
        assert self._sync_engine is not None and self._sync_reads
        thread_lock = self._thread_lock
        assert isinstance(thread_lock, type(threading.Lock()))  # SQLite: a real lock
        if not thread_lock.acquire(blocking=False):
            return None
        try:
            file_lock = self._file_lock.attempt() if self._file_lock is not None else contextlib.nullcontext(True)
            with file_lock as locked, self._sync_engine.connect() as conn:
                if not locked:
                    return None  # another process is writing: a worker thread waits for it instead
                conn.exec_driver_sql("PRAGMA busy_timeout=0")
                try:
                    try:
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                    except OperationalError:
                        return None  # SQLITE_BUSY: a writer holds the database; no transaction was opened
                    results = _write_in_transaction(conn, batch, replace)
                finally:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            thread_lock.release()
        if self.feed_listeners and any(r.watermark is not None for r in results):
            self._feed_committed()
        return results

    def _write_blocking(self, batch: Sequence[NewInstance], replace: bool) -> list[AddResult]:
        """The store transaction in this worker thread, on the synchronous connection (one hop off the loop)."""
        assert self._sync_engine is not None
        if self._lone_engine is not None and len(batch) == 1 and lone_store_pg.eligible(batch[0], replace=replace):
            lone = self._write_lone(batch[0])
            if lone is not None:
                return [lone]
        with self._file_lock_blocking(), self._sync_engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # Take SQLite's write lock now: the duplicate check is then exclusive, and a deferred
                # transaction can never fail to upgrade from reader to writer (SQLITE_BUSY).
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            return _write_in_transaction(conn, batch, replace)

    @property
    def stores_lone_async(self) -> bool:
        """Whether :meth:`add_lone_async` works: PostgreSQL, where a lone new instance is one statement."""
        return self._lone_engine is not None

    async def add_lone_async(self, new: NewInstance) -> AddResult | None:
        """A lone new instance (lone_store_pg.eligible) in one statement on the event loop's asyncpg connection.

        PostgreSQL only (:attr:`stores_lone_async`). None when extended query tags need the transactional path
        (nothing written). A duplicate is a result with InstanceAlreadyExistsError, any other storage error a
        result with that error (272), as write_batch reports them. Run it shielded: once the statement is sent
        it may commit, and only its answer says whether the instance became visible.
        """
        assert self._lone_engine is not None
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            try:
                result = await lone_store_pg.store_lone_async(raw.driver_connection, new, utcnow())
            except Exception as exc:  # noqa: BLE001 - a storage error fails this instance only (272)
                from asyncpg.exceptions import UniqueViolationError  # type: ignore[import-untyped]  # no stubs

                return _failed_add(exc, duplicate=isinstance(exc, UniqueViolationError))
        if result is not None and self.feed_listeners:
            self._feed_committed()
        return result

    def _write_lone(self, new: NewInstance) -> AddResult | None:
        """PostgreSQL: a lone new instance in one autocommitted statement (storage/lone_store_pg.py); None when
        extended query tags need the transactional path."""
        assert self._lone_engine is not None
        with self._lone_engine.connect() as conn:
            try:
                return lone_store_pg.store_lone(conn, new, utcnow())
            except Exception as exc:  # noqa: BLE001 - a storage error fails this instance only (272), as write_batch
                return _failed_add(exc, duplicate=isinstance(exc, compiled_sql.integrity_errors(conn)))

    @staticmethod
    async def _lock_feed(session: AsyncSession) -> None:
        """Serialize change-feed appends until commit on PostgreSQL (see feed_append.lock_feed)."""
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FEED_LOCK_ID})

    async def get_instances(
        self,
        partition_key: int,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
    ) -> list[InstanceRecord]:
        """Visible instances at a level, in watermark order."""
        stmt = select(Instance).where(Instance.partition_key == partition_key, Instance.study_uid == study_uid)
        if series_uid is not None:
            stmt = stmt.where(Instance.series_uid == series_uid)
        if sop_uid is not None:
            stmt = stmt.where(Instance.sop_uid == sop_uid)
        async with self.sessions() as session:
            rows = (await session.execute(stmt.order_by(Instance.watermark))).scalars().all()
        return [_record(r) for r in rows]

    async def exists(self, partition_key: int, study_uid: str, series_uid: str | None = None) -> bool:
        stmt = (
            select(func.count())
            .select_from(Instance)
            .where(Instance.partition_key == partition_key, Instance.study_uid == study_uid)
        )
        if series_uid is not None:
            stmt = stmt.where(Instance.series_uid == series_uid)
        async with self.sessions() as session:
            return bool(await session.scalar(stmt))

    async def delete_instances(
        self,
        partition_key: int,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
    ) -> list[InstanceRecord]:
        """Remove instances at a level with one ``Delete`` feed entry each; drop emptied series/studies.

        Lock order and the exactly-once answer under concurrency: storage/instance_deletes.py.
        """
        async with self._write_lock, self._process_lock(), self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # SQLite's write lock for the whole transaction: no reader-to-writer upgrade that can fail.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            rows = await conn.run_sync(delete_level, partition_key, study_uid, series_uid, sop_uid, now=utcnow())
            await conn.commit()
        if rows:
            self._feed_committed()
        return [_record(row) for row in rows]

    async def expired_studies(self, now: datetime) -> list[tuple[int, str]]:
        """(partition key, study UID) of the studies whose ``msdicom-expiry-*`` time is ``now`` or earlier."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(Study.partition_key, Study.study_uid).where(
                    Study.expires_at.is_not(None), Study.expires_at <= now
                )
            )
            return [(partition_key, study_uid) for partition_key, study_uid in rows.all()]

    async def metadata_for(self, watermarks: Sequence[int]) -> dict[int, str]:
        """Stored DICOM JSON text by watermark."""
        if not watermarks:
            return {}
        return await self.read(metadata_texts, list(watermarks))

    def read_now(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """:meth:`read` in the calling thread (the event loop's), for a read known to be short.

        Only where :attr:`on_local_file`: a SQLite reader in WAL mode waits for no writer, so the loop blocks for
        the statements alone, less than the two thread hand-offs of :meth:`read` cost (one-hit QIDO p50 -15 to
        -25 %, benchmarks/README.md, session 10).
        """
        assert self._sync_engine is not None and self._sync_reads
        with self._sync_engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    async def read(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the read-only ``fn(conn, ...)`` on one synchronous connection, in one hop off the event loop.

        On a SQLite file that is a worker thread on the synchronous engine: aiosqlite costs several thread
        round trips per statement (execute, fetch), so a QIDO page of five statements paid about twenty.
        Elsewhere (PostgreSQL, in-memory SQLite) it is ``AsyncConnection.run_sync`` on the async engine.
        """
        if self._sync_reads:
            return await asyncio.to_thread(lambda: self.read_now(fn, *args, **kwargs))
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn, *args, **kwargs)
