"""Extended query tags in SQL: definitions, indexed values and reindex errors (azure-behaviour §7)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from dicom_emulator.clock import utcnow
from dicom_emulator.dicom.extended_tags import MAX_EXTENDED_QUERY_TAGS, IndexedValue, TagDefinition
from dicom_emulator.dicom.tags import Level
from dicom_emulator.errors import ConflictError, ServiceUnavailableError
from dicom_emulator.storage import compiled_sql
from dicom_emulator.storage.models import ExtendedQueryTag, ExtendedQueryTagError, ExtendedQueryTagValue

# Any constant: the advisory lock that serializes adding tag definitions on PostgreSQL (see exclusive).
_TAG_DEFINITIONS_LOCK_ID = 0x44434D47
STATUS_ADDING = "adding"
STATUS_READY = "ready"
STATUS_DELETING = "deleting"
QUERY_ENABLED = "enabled"
QUERY_DISABLED = "disabled"


class TooManyTagsError(ServiceUnavailableError):
    """Azure's 128-tag limit falls through to its generic server-error branch: 503 (azure-behaviour §7.2)."""


@dataclass(frozen=True, slots=True)
class TagRecord:
    tag_key: int
    path: str
    vr: str
    level: str
    private_creator: str | None
    status: str
    query_status: str
    error_count: int
    operation_id: str | None

    @property
    def definition(self) -> TagDefinition:
        return TagDefinition(self.path, self.vr, Level(self.level), self.private_creator)


@dataclass(frozen=True, slots=True)
class TagErrorRecord:
    partition_key: int
    study_uid: str
    series_uid: str
    sop_uid: str
    created_at: datetime
    error_message: str


def _record(row: ExtendedQueryTag) -> TagRecord:
    return TagRecord(
        tag_key=row.tag_key,
        path=row.path,
        vr=row.vr,
        level=row.level,
        private_creator=row.private_creator,
        status=row.status,
        query_status=row.query_status,
        error_count=row.error_count,
        operation_id=row.operation_id,
    )


async def active_tags(session: AsyncSession) -> list[TagRecord]:
    """Tags that new instances must be indexed on: adding (reindex running) and ready."""
    rows = await session.execute(
        select(ExtendedQueryTag)
        .where(ExtendedQueryTag.status.in_((STATUS_ADDING, STATUS_READY)))
        .order_by(ExtendedQueryTag.tag_key)
    )
    return [_record(r) for r in rows.scalars().all()]


def value_statements(
    tag: TagRecord, value: IndexedValue, *, study_key: int, series_key: int, watermark: int
) -> tuple[Executable, Executable]:
    """The two statements that index one value at the tag's level: delete the owner's old value, insert
    the new one (study/series values are replaced, latest wins, §4.5). Core statements, so they run on a
    session, an async connection or the synchronous store connection alike."""
    owner: dict[str, int | None] = {"study_key": None, "series_key": None, "watermark": None}
    if tag.level == Level.STUDY:
        owner["study_key"] = study_key
        column = ExtendedQueryTagValue.study_key
        key = study_key
    elif tag.level == Level.SERIES:
        owner["series_key"] = series_key
        column = ExtendedQueryTagValue.series_key
        key = series_key
    else:
        owner["watermark"] = watermark
        column = ExtendedQueryTagValue.watermark
        key = watermark
    remove = delete(ExtendedQueryTagValue).where(ExtendedQueryTagValue.tag_key == tag.tag_key, column == key)
    add = insert(cast(Table, ExtendedQueryTagValue.__table__)).values(
        tag_key=tag.tag_key,
        text_value=value.text_value,
        words=value.words,
        int_value=value.int_value,
        float_value=value.float_value,
        **owner,
    )
    return remove, add


async def write_value(
    session: AsyncSession,
    tag: TagRecord,
    value: IndexedValue,
    *,
    study_key: int,
    series_key: int,
    watermark: int,
) -> None:
    """Index one value at the tag's level (see :func:`value_statements`)."""
    for statement in value_statements(tag, value, study_key=study_key, series_key=series_key, watermark=watermark):
        await session.execute(statement)


_TAGS = ExtendedQueryTag.__table__


def _tag_records(*statuses: str) -> Select[Any]:
    """The tags in ``statuses`` as TagRecord arguments (its fields' columns, in order), by tag key."""
    return (
        select(*(_TAGS.c[field.name] for field in fields(TagRecord)))
        # One comparison per status, not IN: an IN list is an expanding parameter, which compiled_sql does not run.
        .where(or_(*(_TAGS.c.status == status for status in statuses)))
        .order_by(_TAGS.c.tag_key)
    )


# Built once: the store path reads the active tags on every request, every QIDO the ready ones, and building
# a statement cost more than running it on this small, usually empty table.
_READY_TAGS = _tag_records(STATUS_READY)
_ACTIVE_TAGS = _tag_records(STATUS_ADDING, STATUS_READY)
# The same read as SQL text for the bare sqlite3 connections of SqlTagStore.active_blocking.
_ACTIVE_TAGS_SQL = str(_ACTIVE_TAGS.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def _active_tags_sqlite(dbapi_conn: sqlite3.Connection) -> list[TagRecord]:
    cursor = dbapi_conn.cursor()
    try:
        return [TagRecord(*row) for row in cursor.execute(_ACTIVE_TAGS_SQL).fetchall()]
    finally:
        cursor.close()


def _tags_sync(conn: Connection, statement: Select[Any]) -> list[TagRecord]:
    # On the driver's cursor where it can be (storage/compiled_sql.py): SQLAlchemy's checkout and result
    # machinery cost several times this query.
    cursor = compiled_sql.execute(conn, statement, {})
    try:
        return [TagRecord(*row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def active_tags_sync(conn: Connection) -> list[TagRecord]:
    """:func:`active_tags` on a synchronous connection (the store transaction, storage/instance_writes.py)."""
    return _tags_sync(conn, _ACTIVE_TAGS)


def ready_tags_sync(conn: Connection) -> list[TagRecord]:
    """The ready (queryable) extended query tags, on a synchronous connection (the QIDO read hop)."""
    return _tags_sync(conn, _READY_TAGS)


class SqlTagStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, sync_engine: Engine | None = None) -> None:
        self.sessions = sessions
        # A synchronous engine on the same database lets the store path read the active tags inside its
        # worker thread (storage/instance_writes.py explains why the store path avoids event-loop hops).
        self._sync_engine = sync_engine
        # Read-only DB-API connections on that file for active_blocking, one per concurrent caller.
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    def close(self) -> None:
        """Close the DB-API connections :meth:`active_blocking` keeps."""
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                return

    @property
    def reads_blocking(self) -> bool:
        """Whether :meth:`active_blocking` can be called from a worker thread."""
        return self._sync_engine is not None

    def active_blocking(self) -> list[TagRecord]:
        """:meth:`active` for code already running in a worker thread (needs ``sync_engine``)."""
        assert self._sync_engine is not None
        if self._sync_engine.dialect.name != "sqlite":
            # Autocommit: one statement, without the BEGIN and ROLLBACK round trips of a transaction.
            with self._sync_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                return active_tags_sync(conn)
        try:
            reader = self._readers.get_nowait()
        except queue.Empty:
            database = self._sync_engine.url.database
            assert database is not None
            # Autocommit: each read sees the newest commit of any process (WAL); busy waits as the engine's.
            reader = sqlite3.connect(database, timeout=30, check_same_thread=False, isolation_level=None)
        try:
            tags = _active_tags_sqlite(reader)
        except BaseException:
            reader.close()
            raise
        self._readers.put(reader)
        return tags

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[AsyncSession]:
        """A transaction that holds the one lock of tag definitions until it ends (committed on success).

        Adding tags checks (an active reindex, existing paths, the 128-tag limit) and then inserts; without
        this lock two concurrent adds both pass the checks and one fails on the unique path (500) or two
        reindex jobs run at once. PostgreSQL: a transaction-scoped advisory lock; SQLite: its write lock,
        taken at BEGIN (IMMEDIATE), which also excludes the other processes on the file.
        """
        async with self.sessions() as session:
            conn = await session.connection()
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _TAG_DEFINITIONS_LOCK_ID})
            else:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    async def list_tags(self, limit: int, offset: int) -> list[TagRecord]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(ExtendedQueryTag).order_by(ExtendedQueryTag.tag_key).offset(offset).limit(limit)
            )
            return [_record(r) for r in rows.scalars().all()]

    async def get(self, path: str) -> TagRecord | None:
        async with self.sessions() as session:
            row = await session.scalar(select(ExtendedQueryTag).where(ExtendedQueryTag.path == path))
            return _record(row) if row is not None else None

    async def active(self) -> list[TagRecord]:
        # A bare connection, not a session: this runs once per STOW request.
        async with self.sessions.kw["bind"].connect() as conn:
            rows = await conn.execute(_ACTIVE_TAGS)
            return [_record(row) for row in rows]

    async def adding(self, keys: Sequence[int]) -> list[TagRecord]:
        """The tags among ``keys`` that are still being added (their reindex has not completed)."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(ExtendedQueryTag).where(
                    ExtendedQueryTag.tag_key.in_(keys), ExtendedQueryTag.status == STATUS_ADDING
                )
            )
            return [_record(r) for r in rows.scalars().all()]

    async def ready(self) -> list[TagRecord]:
        # A bare connection and a prebuilt statement: every QIDO request reads this. On a SQLite file, in a
        # worker thread on the synchronous engine (one hop, not aiosqlite's several per statement).
        sync_engine = self._sync_engine
        if sync_engine is not None and sync_engine.dialect.name == "sqlite":

            def _read() -> list[TagRecord]:
                with sync_engine.connect() as conn:
                    return ready_tags_sync(conn)

            return await asyncio.to_thread(_read)
        async with self.sessions.kw["bind"].connect() as conn:
            rows = await conn.execute(_READY_TAGS)
            return [_record(row) for row in rows]

    async def add(self, session: AsyncSession, definitions: Sequence[TagDefinition], operation_id: str) -> list[int]:
        """Insert the tags as 'adding' inside the caller's transaction (with its reindex job row)."""
        paths = [d.path for d in definitions]
        existing = await session.scalar(
            select(func.count()).select_from(ExtendedQueryTag).where(ExtendedQueryTag.path.in_(paths))
        )
        if existing:
            raise ConflictError("One or more extended query tags already exist.")
        total = await session.scalar(select(func.count()).select_from(ExtendedQueryTag)) or 0
        if total + len(definitions) > MAX_EXTENDED_QUERY_TAGS:
            raise TooManyTagsError(f"Extended query tags exceeds max allowed count '{MAX_EXTENDED_QUERY_TAGS}'.")
        for definition in definitions:
            session.add(
                ExtendedQueryTag(
                    path=definition.path,
                    vr=definition.vr,
                    private_creator=definition.private_creator,
                    level=definition.level.value,
                    status=STATUS_ADDING,
                    query_status=QUERY_ENABLED,
                    error_count=0,
                    operation_id=operation_id,
                    created_at=utcnow(),
                )
            )
        await session.flush()
        rows = await session.execute(select(ExtendedQueryTag.tag_key).where(ExtendedQueryTag.path.in_(paths)))
        return [r[0] for r in rows.all()]

    async def set_query_status(self, path: str, status: str) -> TagRecord | None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(ExtendedQueryTag).where(ExtendedQueryTag.path == path).values(query_status=status)
            )
            row = await session.scalar(select(ExtendedQueryTag).where(ExtendedQueryTag.path == path))
            return _record(row) if row is not None else None

    async def delete(self, path: str) -> bool:
        """Mark the tag deleting (queries stop seeing it), then drop it with its values and errors."""
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(ExtendedQueryTag).where(ExtendedQueryTag.path == path).values(status=STATUS_DELETING)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
        async with self.sessions.begin() as session:
            key = await session.scalar(select(ExtendedQueryTag.tag_key).where(ExtendedQueryTag.path == path))
            await session.execute(delete(ExtendedQueryTagValue).where(ExtendedQueryTagValue.tag_key == key))
            await session.execute(delete(ExtendedQueryTagError).where(ExtendedQueryTagError.tag_key == key))
            await session.execute(delete(ExtendedQueryTag).where(ExtendedQueryTag.tag_key == key))
        return True

    async def errors(self, tag_key: int, limit: int, offset: int) -> list[TagErrorRecord]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(ExtendedQueryTagError)
                .where(ExtendedQueryTagError.tag_key == tag_key)
                .order_by(ExtendedQueryTagError.error_key)
                .offset(offset)
                .limit(limit)
            )
            return [
                TagErrorRecord(
                    partition_key=r.partition_key,
                    study_uid=r.study_uid,
                    series_uid=r.series_uid,
                    sop_uid=r.sop_uid,
                    created_at=r.created_at,
                    error_message=r.error_message,
                )
                for r in rows.scalars().all()
            ]
