"""The SQL index: instance versions, study/series rows, and the change-feed rows they produce.

Every write that makes an instance visible or invisible happens in one transaction together with
its change-feed entry (DESIGN.md invariant 1); blobs are written before and deleted after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import utcnow
from dicom_emulator.dicom.extended_tags import IndexedValue, extract_value
from dicom_emulator.errors import InstanceAlreadyExistsError
from dicom_emulator.storage.models import (
    DEFAULT_PARTITION_KEY,
    DEFAULT_PARTITION_NAME,
    ChangeFeedEntry,
    Instance,
    Partition,
    Series,
    Study,
)
from dicom_emulator.storage.tags_store import active_tags, write_value

# Any constant: the advisory lock that orders change-feed commits (see _lock_feed).
FEED_LOCK_ID = 0x44434D46
ACTION_CREATE = "Create"
ACTION_DELETE = "Delete"
ACTION_UPDATE = "Update"


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

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads(self.metadata_json)  # type: ignore[no-any-return]


@dataclass(slots=True)
class NewInstance:
    """Everything the store service computed for one instance, ready to index."""

    partition_key: int
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str | None
    transfer_syntax: str
    blob_key: str
    size: int
    number_of_frames: int | None
    metadata_json: str
    study_values: dict[str, Any] = field(default_factory=dict)
    series_values: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    # The parsed metadata_json, for extended-query-tag values (read inside the store transaction).
    metadata: dict[str, Any] | None = None
    # Frame byte ranges computed at store time (dicom/frames.py JSON; "[]" = no frames, None = unknown).
    frames_json: str | None = None


def _record(row: Instance) -> InstanceRecord:
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
    )


class SqlIndex:
    """Index operations over an async session factory (SQLite or PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        # SQLite has one writer at a time and its busy handler backs off in sleeps of up to 100 ms;
        # queueing this process's index writes on a lock instead keeps store latency flat.
        bind = sessions.kw.get("bind")
        sqlite_bind = bind is not None and bind.dialect.name == "sqlite"
        self._write_lock: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if sqlite_bind else contextlib.nullcontext()
        )

    async def ensure_default_partition(self) -> None:
        async with self.sessions.begin() as session:
            stmt = self._insert_ignore(session, Partition).values(
                partition_key=DEFAULT_PARTITION_KEY, partition_name=DEFAULT_PARTITION_NAME, created_date=utcnow()
            )
            await session.execute(stmt)

    @staticmethod
    def _insert_ignore(session: AsyncSession, table: Any) -> Any:
        """INSERT … ON CONFLICT DO NOTHING on both dialects."""
        return SqlIndex._dialect_insert(session, table).on_conflict_do_nothing()

    async def add_instance(self, new: NewInstance, *, replace: bool) -> tuple[int, str | None]:
        """Make ``new`` visible with its change-feed entry, in one transaction.

        Returns the new watermark and, when ``replace`` swapped out an older version, that version's
        blob key (to delete after commit). Raises :class:`InstanceAlreadyExistsError` when the
        instance exists and ``replace`` is False, also when another process won the race.
        """
        try:
            async with self._write_lock, self.sessions.begin() as session:
                old_blob = None
                if replace:
                    # Upsert: the older version goes in this same transaction (its file after commit).
                    old_blob = await session.scalar(
                        delete(Instance)
                        .where(
                            Instance.partition_key == new.partition_key,
                            Instance.study_uid == new.study_uid,
                            Instance.series_uid == new.series_uid,
                            Instance.sop_uid == new.sop_uid,
                        )
                        .returning(Instance.blob_key)
                    )
                # Without replace, an existing instance fails the insert below on the identity
                # constraint (IntegrityError → 45070), also when another process wins a race.
                study_key = await self._upsert_study(session, new)
                series_key = await self._upsert_series(session, new, study_key)
                row = Instance(
                    partition_key=new.partition_key,
                    study_uid=new.study_uid,
                    series_uid=new.series_uid,
                    sop_uid=new.sop_uid,
                    study_key=study_key,
                    series_key=series_key,
                    sop_class_uid=new.sop_class_uid,
                    transfer_syntax=new.transfer_syntax,
                    blob_key=new.blob_key,
                    size=new.size,
                    number_of_frames=new.number_of_frames,
                    metadata_json=new.metadata_json,
                    frames_json=new.frames_json,
                    created_at=utcnow(),
                )
                session.add(row)
                await session.flush()
                watermark = row.watermark
                # Latest wins for the study and series attributes (reference §4.5): the upserts above
                # wrote this instance's values; the watermark points their metadata at it.
                await session.execute(
                    update(Study).where(Study.study_key == study_key).values(latest_watermark=watermark)
                )
                await session.execute(
                    update(Series).where(Series.series_key == series_key).values(latest_watermark=watermark)
                )
                await self._index_extended_tags(session, new, study_key, series_key, watermark)
                await self._lock_feed(session)
                session.add(
                    ChangeFeedEntry(
                        timestamp=utcnow(),
                        action=ACTION_CREATE,
                        partition_key=new.partition_key,
                        study_uid=new.study_uid,
                        series_uid=new.series_uid,
                        sop_uid=new.sop_uid,
                        watermark=watermark,
                    )
                )
        except IntegrityError as exc:
            # Another writer committed the same identity between our check and our insert.
            raise InstanceAlreadyExistsError("The instance already exists.") from exc
        return watermark, old_blob

    @staticmethod
    async def _index_extended_tags(
        session: AsyncSession, new: NewInstance, study_key: int, series_key: int, watermark: int
    ) -> None:
        """Index the new instance on every adding/ready tag, read in this transaction so a tag added
        concurrently is either seen here or covered by its reindex (reference §7.5)."""
        if new.metadata is None:
            return
        for tag in await active_tags(session):
            value = extract_value(new.metadata, tag.definition)
            # Invalid values were already failed (v1) or warned about and dropped (v2) by validation.
            if isinstance(value, IndexedValue):
                await write_value(session, tag, value, study_key=study_key, series_key=series_key, watermark=watermark)

    @staticmethod
    async def _lock_feed(session: AsyncSession) -> None:
        """Serialize change-feed appends until commit on PostgreSQL.

        Sequence values are handed out at INSERT; without this lock two processes could commit 12
        before 11, and a v1 reader that already moved past 12 would never see 11 (invariant 3).
        SQLite serializes writers already.
        """
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FEED_LOCK_ID})

    @staticmethod
    def _dialect_insert(session: AsyncSession, table: Any) -> Any:
        return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(table)

    async def _upsert_study(self, session: AsyncSession, new: NewInstance) -> int:
        """Create or update the study row in one statement; its attributes are the latest instance's."""
        values = {"expires_at": new.expires_at, **new.study_values}
        stmt = self._dialect_insert(session, Study).values(
            partition_key=new.partition_key, study_uid=new.study_uid, latest_watermark=0, **values
        )
        stmt = stmt.on_conflict_do_update(index_elements=["partition_key", "study_uid"], set_=values)
        key = await session.scalar(stmt.returning(Study.study_key))
        assert key is not None
        return int(key)

    async def _upsert_series(self, session: AsyncSession, new: NewInstance, study_key: int) -> int:
        values = dict(new.series_values)
        stmt = self._dialect_insert(session, Series).values(
            study_key=study_key,
            partition_key=new.partition_key,
            series_uid=new.series_uid,
            latest_watermark=0,
            **values,
        )
        stmt = stmt.on_conflict_do_update(index_elements=["study_key", "series_uid"], set_=values)
        key = await session.scalar(stmt.returning(Series.series_key))
        assert key is not None
        return int(key)

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
        """Remove instances at a level with one ``Delete`` feed entry each; drop emptied series/studies."""
        async with self._write_lock, self.sessions.begin() as session:
            stmt = select(Instance).where(Instance.partition_key == partition_key, Instance.study_uid == study_uid)
            if series_uid is not None:
                stmt = stmt.where(Instance.series_uid == series_uid)
            if sop_uid is not None:
                stmt = stmt.where(Instance.sop_uid == sop_uid)
            rows = (await session.execute(stmt.order_by(Instance.watermark))).scalars().all()
            if not rows:
                return []
            records = [_record(r) for r in rows]
            await self._lock_feed(session)
            now = utcnow()
            await session.execute(delete(Instance).where(Instance.watermark.in_([r.watermark for r in records])))
            session.add_all(
                ChangeFeedEntry(
                    timestamp=now,
                    action=ACTION_DELETE,
                    partition_key=r.partition_key,
                    study_uid=r.study_uid,
                    series_uid=r.series_uid,
                    sop_uid=r.sop_uid,
                    watermark=r.watermark,
                )
                for r in records
            )
            await self._refresh_parents(session, {r.study_uid for r in records}, partition_key)
        return records

    async def _refresh_parents(self, session: AsyncSession, study_uids: set[str], partition_key: int) -> None:
        """After deletes: remove empty series and studies, re-point latest_watermark of the rest."""
        studies = (
            (
                await session.execute(
                    select(Study).where(Study.partition_key == partition_key, Study.study_uid.in_(study_uids))
                )
            )
            .scalars()
            .all()
        )
        for study in studies:
            series_rows = (await session.execute(select(Series).where(Series.study_key == study.study_key))).scalars()
            for series in series_rows.all():
                latest = await session.scalar(
                    select(func.max(Instance.watermark)).where(Instance.series_key == series.series_key)
                )
                if latest is None:
                    await session.delete(series)
                elif latest != series.latest_watermark:
                    series.latest_watermark = latest
            latest = await session.scalar(
                select(func.max(Instance.watermark)).where(Instance.study_key == study.study_key)
            )
            if latest is None:
                await session.delete(study)
            elif latest != study.latest_watermark:
                study.latest_watermark = latest

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
        async with self.sessions() as session:
            rows = await session.execute(
                select(Instance.watermark, Instance.metadata_json).where(Instance.watermark.in_(list(watermarks)))
            )
            return dict(rows.all())
