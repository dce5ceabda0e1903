"""The store transaction: index rows, extended-query-tag values and change-feed entries of a batch.

Written as synchronous SQLAlchemy Core over a :class:`~sqlalchemy.engine.Connection`, so one body serves
two ways of running it (storage/index.py chooses):

- on a SQLite file or PostgreSQL, in ONE worker thread on a synchronous connection (pysqlite, psycopg 3):
  the whole transaction is a single hop off the event loop instead of one hop per statement through
  aiosqlite or asyncpg, which cost more than the SQL itself at hundreds of stores per second;
- on the in-memory SQLite of ``--in-memory``, through ``AsyncConnection.run_sync`` on the app's async
  engine (the database lives in its one connection).

Statements are Core, not ORM: the unit of work (flush, identity map) cost more than the SQL it ran.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from dicom_emulator.dicom.extended_tags import IndexedValue, extract_value
from dicom_emulator.errors import InstanceAlreadyExistsError
from dicom_emulator.storage import compiled_sql
from dicom_emulator.storage.feed_append import append_feed
from dicom_emulator.storage.models import Instance, Series, Study
from dicom_emulator.storage.tags_store import TagRecord, active_tags_sync, value_statements

ACTION_CREATE = "Create"
ACTION_UPDATE = "Update"
ALREADY_EXISTS_MESSAGE = "The instance already exists."

STUDIES: Table = Study.__table__  # type: ignore[assignment]
SERIES: Table = Series.__table__  # type: ignore[assignment]
INSTANCES: Table = Instance.__table__  # type: ignore[assignment]


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
    study_values: dict[str, Any]
    series_values: dict[str, Any]
    expires_at: datetime | None = None
    # The parsed metadata_json, for extended-query-tag values (read inside the store transaction).
    metadata: dict[str, Any] | None = None
    # Frame byte ranges computed at store time (dicom/frames.py JSON; "[]" = no frames, None = unknown).
    frames_json: str | None = None
    # The change-feed action: Create for a store, Update for a new version written by $bulkUpdate.
    action: str = ACTION_CREATE
    # $bulkUpdate keeps the study's msdicom-expiry time (a store sets it from the request's headers).
    keep_expiry: bool = False
    # The first version of an updated instance (azure-behaviour §15.3), carried over to the new row.
    original_watermark: int | None = None
    original_blob_key: str | None = None
    original_size: int | None = None
    original_metadata_json: str | None = None


@dataclass(slots=True)
class AddResult:
    """What the store transaction did with one instance: stored (``watermark``) or ``error``."""

    watermark: int | None = None
    # Blob of the version an upsert replaced, to delete after commit.
    old_blob: str | None = None
    # The original version's blob of the replaced row (kept by $bulkUpdate): a store deletes it too.
    old_original_blob: str | None = None
    study_key: int = 0
    series_key: int = 0
    # InstanceAlreadyExistsError for a duplicate (45070), any other exception for a storage error (272).
    error: Exception | None = None


_STUDY_LOCK_SPACE = 0x44434D53  # first key of the two-key advisory locks of lock_studies
_LOCK_STUDY = text(f"SELECT pg_advisory_xact_lock({_STUDY_LOCK_SPACE}, :key)")
_POINT_STUDY = STUDIES.update().where(STUDIES.c.study_key == bindparam("key"))
_POINT_SERIES = SERIES.update().where(SERIES.c.series_key == bindparam("key"))
# PostgreSQL, a batch of one study and one series (every single-instance store): both pointers in one round
# trip, the study's UPDATE as a data-modifying CTE of the series' (different tables: no row is updated twice).
_POINT_BOTH_PG = (
    SERIES.update()
    .where(SERIES.c.series_key == bindparam("series"))
    .values(latest_watermark=bindparam("series_watermark"))
    .add_cte(
        STUDIES.update()
        .where(STUDIES.c.study_key == bindparam("study"))
        .values(latest_watermark=bindparam("study_watermark"))
        .cte("point_study")
    )
)


# The instances columns a store sets from its NewInstance, by the same names (created_at aside).
INSTANCE_VALUE_COLUMNS = (
    "partition_key",
    "study_uid",
    "series_uid",
    "sop_uid",
    "sop_class_uid",
    "transfer_syntax",
    "blob_key",
    "size",
    "number_of_frames",
    "metadata_json",
    "frames_json",
    "original_watermark",
    "original_blob_key",
    "original_size",
    "original_metadata_json",
)


def instance_values(new: NewInstance, now: datetime) -> dict[str, Any]:
    """The row of ``new`` in ``instances``, but its watermark and its study and series keys."""
    return {**{name: getattr(new, name) for name in INSTANCE_VALUE_COLUMNS}, "created_at": now}


def write_batch(conn: Connection, batch: Sequence[NewInstance], *, replace: bool, now: datetime) -> list[AddResult]:
    """Index every instance of ``batch`` with its change-feed entry, inside the caller's transaction.

    Outcomes are per instance (azure-behaviour §2.3): a duplicate or a storage error of one instance does not
    fail the others. On SQLite the caller holds the write lock (BEGIN IMMEDIATE), so checking for a
    duplicate before inserting is exclusive; on PostgreSQL each instance gets a savepoint and a unique
    violation (another process stored the same identity meanwhile) undoes only that instance.
    """
    postgres = conn.dialect.name == "postgresql"
    tags = active_tags_sync(conn) if any(n.metadata is not None for n in batch) else []
    results: list[AddResult] = []
    studies: dict[int, int] = {}
    series: dict[int, int] = {}
    feed: list[dict[str, Any]] = []
    if postgres:
        lock_studies(conn, {(new.partition_key, new.study_uid) for new in batch})
    # A savepoint per instance (two round trips) isolates one instance's unique violation from the others of
    # its batch; a new instance stored alone needs none: its violation fails the whole transaction, which
    # then holds nothing else and is rolled back (SqlIndex).
    savepoints = replace or len(batch) > 1
    for new in batch:
        try:
            if postgres:
                result = _add_with_savepoint(conn, new, tags, now, replace=replace, savepoint=savepoints)
            else:
                result = _add_one(conn, new, tags, now, replace=replace, check=not replace)
        except Exception as exc:  # noqa: BLE001 - a storage error fails this instance only (272)
            result = AddResult(error=exc)
        results.append(result)
        if result.watermark is None:
            continue
        studies[result.study_key] = result.watermark
        series[result.series_key] = result.watermark
        feed.append(
            {
                "timestamp": now,
                "action": new.action,
                "partition_key": new.partition_key,
                "study_uid": new.study_uid,
                "series_uid": new.series_uid,
                "sop_uid": new.sop_uid,
                "watermark": result.watermark,
            }
        )
    if not feed:
        return results
    # Latest wins for the study and series attributes (azure-behaviour §4.5): the upserts wrote the values of
    # the batch's last instance of each; latest_watermark points their metadata at that instance.
    if postgres and len(studies) == 1 and len(series) == 1:
        ((study_key, study_watermark),), ((series_key, series_watermark),) = studies.items(), series.items()
        params = {"study": study_key, "study_watermark": study_watermark, "series": series_key}
        compiled_sql.execute(conn, _POINT_BOTH_PG, {**params, "series_watermark": series_watermark}).close()
    elif studies:
        compiled_sql.execute_many(conn, _POINT_STUDY, [{"key": k, "latest_watermark": w} for k, w in studies.items()])
        compiled_sql.execute_many(conn, _POINT_SERIES, [{"key": k, "latest_watermark": w} for k, w in series.items()])
    append_feed(conn, feed)
    return results


def lock_studies(conn: Connection, studies: set[tuple[int, str]]) -> None:
    """Take a transaction lock per study of a store batch, in one global order (PostgreSQL).

    The batch then upserts its study rows in the request's order (which sets the change-feed order, as Azure
    stores a request's instances one after another), yet two requests spanning the same studies in opposite
    orders queue on the first shared study here instead of deadlocking on the rows. Nothing else waits for
    these locks, so they add no cycle with the delete path (study -> series -> instance -> feed). Two-key
    advisory locks live apart from the single-key feed lock; a hash collision only serializes two studies.
    """
    keys = sorted({zlib.crc32(f"{partition}/{study}".encode()) - 2**31 for partition, study in studies})
    for key in keys:
        compiled_sql.execute(conn, _LOCK_STUDY, {"key": key}).close()


def _add_with_savepoint(
    conn: Connection,
    new: NewInstance,
    tags: Sequence[TagRecord],
    now: datetime,
    *,
    replace: bool,
    savepoint: bool = True,
) -> AddResult:
    # An upsert that loses a race against a concurrent insert of the same new instance tries again once the
    # winner has committed: PUT replaces, it never answers 45070.
    attempts = 3 if replace else 1
    unique_violation = compiled_sql.integrity_errors(conn)
    for attempt in range(attempts):
        try:
            if not savepoint:
                return _add_one(conn, new, tags, now, replace=replace, check=False)
            with conn.begin_nested():
                return _add_one(conn, new, tags, now, replace=replace, check=False)
        except unique_violation:
            if attempt + 1 == attempts:
                return AddResult(error=InstanceAlreadyExistsError(ALREADY_EXISTS_MESSAGE))
    raise AssertionError("unreachable")


def _add_one(
    conn: Connection,
    new: NewInstance,
    tags: Sequence[TagRecord],
    now: datetime,
    *,
    replace: bool,
    check: bool,
) -> AddResult:
    """Write one instance's rows (not its feed entry)."""
    identity = {
        "partition_key": new.partition_key,
        "study_uid": new.study_uid,
        "series_uid": new.series_uid,
        "sop_uid": new.sop_uid,
    }
    if not replace and check and compiled_sql.first(conn, _FIND_INSTANCE, identity) is not None:
        return AddResult(error=InstanceAlreadyExistsError(ALREADY_EXISTS_MESSAGE))
    study_values = new.study_values if new.keep_expiry else {"expires_at": new.expires_at, **new.study_values}
    study_key = _upsert(
        conn,
        STUDIES,
        ("partition_key", "study_uid"),
        {"partition_key": new.partition_key, "study_uid": new.study_uid},
        study_values,
    )
    series_key = _upsert(
        conn,
        SERIES,
        ("study_key", "series_uid"),
        {"study_key": study_key, "partition_key": new.partition_key, "series_uid": new.series_uid},
        new.series_values,
    )
    old_blob: str | None = None
    old_original_blob: str | None = None
    if replace:
        # Upsert: the older version goes in this same transaction (its file after commit). Only now, after
        # the study and series rows: every writer locks study → series → instance in that order, so two
        # PUTs of one instance on PostgreSQL cannot deadlock (one holding the study row, the other the
        # instance row it deleted).
        old = compiled_sql.first(conn, _DELETE_INSTANCE, identity)
        if old is not None:
            old_blob, old_original_blob = old[0], old[1]
    watermark = compiled_sql.scalar(
        conn, _INSERT_INSTANCE, {**instance_values(new, now), "study_key": study_key, "series_key": series_key}
    )
    assert watermark is not None
    if new.metadata is not None:
        # Tags were read in this transaction: a tag added concurrently is seen here or covered by its
        # reindex (azure-behaviour §7.5). Invalid values were already failed (v1) or dropped (v2) by validation.
        for tag in tags:
            value = extract_value(new.metadata, tag.definition)
            if isinstance(value, IndexedValue):
                for statement in value_statements(
                    tag, value, study_key=study_key, series_key=series_key, watermark=watermark
                ):
                    conn.execute(statement)
    return AddResult(
        watermark=int(watermark),
        old_blob=old_blob,
        old_original_blob=old_original_blob,
        study_key=study_key,
        series_key=series_key,
    )


# Statements are built once and executed with parameter dictionaries: building a statement per call
# (``.values(...)``, cache-key generation) cost several times more than SQLite took to run it.
_IDENTITY = (
    (INSTANCES.c.partition_key == bindparam("partition_key"))
    & (INSTANCES.c.study_uid == bindparam("study_uid"))
    & (INSTANCES.c.series_uid == bindparam("series_uid"))
    & (INSTANCES.c.sop_uid == bindparam("sop_uid"))
)
_DELETE_INSTANCE = INSTANCES.delete().where(_IDENTITY).returning(INSTANCES.c.blob_key, INSTANCES.c.original_blob_key)
_FIND_INSTANCE = select(INSTANCES.c.watermark).where(_IDENTITY).limit(1)
_INSERT_INSTANCE = INSTANCES.insert().returning(INSTANCES.c.watermark)
_UPSERTS: dict[tuple[str, str, frozenset[str]], Any] = {}
# The key of an existing study or series row by its identity (the conflict columns of _upsert), per table.
_KEYS: dict[tuple[str, tuple[str, ...]], Any] = {}


def _upsert(
    conn: Connection, table: Table, conflict: tuple[str, ...], identity: dict[str, Any], values: dict[str, Any]
) -> int:
    """Create or update a study/series row in one statement; its attributes are the latest instance's.

    On SQLite the row is rewritten only when an attribute differs: an UPDATE rewrites the entry of every
    index on a column it sets, equal or not, and the instances of a study mostly repeat its attributes
    (24.7 -> 18.7 log pages per single-instance commit). The key then comes from a read instead of RETURNING.
    On PostgreSQL that read would be one more round trip, dearer than the rewrite.
    """
    dialect = conn.dialect.name
    cache_key = (dialect, table.name, frozenset(values))
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
        changed = (
            or_(*(table.c[name].is_distinct_from(insert.excluded[name]) for name in values))
            if values and dialect == "sqlite"
            else None
        )
        stmt = insert.on_conflict_do_update(
            index_elements=list(conflict), set_={name: insert.excluded[name] for name in values}, where=changed
        ).returning(table.primary_key.columns.values()[0])
        _UPSERTS[cache_key] = stmt
    result = compiled_sql.scalar(conn, stmt, {**identity, "latest_watermark": 0, **values})
    if result is None:  # SQLite, nothing changed: the existing row's key
        key_stmt = _KEYS.get((table.name, conflict))
        if key_stmt is None:
            key_column = table.primary_key.columns.values()[0]
            key_stmt = select(key_column).where(*(table.c[name] == bindparam(name) for name in conflict))
            _KEYS[(table.name, conflict)] = key_stmt
        result = compiled_sql.scalar(conn, key_stmt, {name: identity[name] for name in conflict})
    assert result is not None
    return int(result)
