"""PostgreSQL: a new instance stored alone, as ONE autocommitted statement (one round trip, not nine).

A lone store (every C-STORE, every one-instance STOW) ran BEGIN, the study lock, two upserts, the instance
INSERT, the parents' pointers, the change-feed append and COMMIT as separate statements: nine round trips to
the server, each a wait for PostgreSQL and a pass through the driver, where the work itself is a few index
entries. Here they are the data-modifying CTEs of one statement, run in autocommit (a statement is atomic on
its own), with the same effects and the same guarantees:

- Rows or nothing: a duplicate identity fails the whole statement on ``uq_instances_identity`` (45070), and
  nothing it wrote is kept, study and series rows included (architecture invariant 1).
- Change-feed order: the feed lock is taken after the instance row exists (``feed_lock`` reads ``ins``), as
  :func:`~dicom_emulator.storage.feed_append.append_feed` takes it last in the transactional path; rows
  before the feed lock, in every writer, so no lock cycle.
- Latest wins (azure-behaviour §4.5): the instance's watermark is drawn first and written to the study and
  series rows, which keep the greater of theirs and it, with the attributes that go with it. Deletes recompute
  the same maximum (instance_deletes.py).
- Extended query tags: the statement does nothing when any tag is being added or ready (one ``NOT EXISTS``
  in the same snapshot as the inserts, like the transactional path's read inside its transaction); the
  caller then stores through the transactional path, which writes the tag values.

The study's advisory lock of :func:`~dicom_emulator.storage.instance_writes.lock_studies` orders batches
spanning several studies; one study's row lock (taken by its upsert) does that for a lone instance.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from dicom_emulator.storage.feed_append import FEED, FEED_COLUMNS, FEED_LOCK_ID, OUTBOX
from dicom_emulator.storage.instance_writes import (
    ACTION_CREATE,
    INSTANCE_VALUE_COLUMNS,
    INSTANCES,
    SERIES,
    STUDIES,
    AddResult,
    NewInstance,
    instance_values,
)
from dicom_emulator.storage.models import ExtendedQueryTag
from dicom_emulator.storage.tags_store import STATUS_ADDING, STATUS_READY

TAGS: Table = ExtendedQueryTag.__table__  # type: ignore[assignment]

# The instance columns a store sets (the original_* of a bulk update's version: NULL for a new instance).
_INSTANCE_COLUMNS = (*INSTANCE_VALUE_COLUMNS, "created_at")


def eligible(new: NewInstance, *, replace: bool) -> bool:
    """Whether ``new`` alone can be stored by :func:`store_lone`: a new instance (not an upsert, not a bulk
    update's new version)."""
    return (
        not replace
        and new.action == ACTION_CREATE
        and not new.keep_expiry
        and new.original_watermark is None
        and new.original_blob_key is None
    )


def _latest_wins(alias: str, columns: tuple[str, ...]) -> str:
    # An attribute takes the incoming value only when the incoming instance is the newer (greater watermark).
    sets = [
        f"{name} = CASE WHEN {alias}.latest_watermark < EXCLUDED.latest_watermark "
        f"THEN EXCLUDED.{name} ELSE {alias}.{name} END"
        for name in columns
    ]
    sets.append(f"latest_watermark = GREATEST({alias}.latest_watermark, EXCLUDED.latest_watermark)")
    return ", ".join(sets)


_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect classes are untyped


def _param(table: Table, column: str, name: str | None = None) -> str:
    # Typed: in a SELECT list a parameter sent untyped (a None) would be taken as text, which PostgreSQL does not
    # assign to a timestamp or number column as it does in VALUES.
    return f"%({name or column})s::{table.c[column].type.compile(dialect=_DIALECT)}"


def _params(table: Table, prefix: str, columns: tuple[str, ...]) -> str:
    return ", ".join(_param(table, name, prefix + name) for name in columns)


@functools.cache
def _statement(study_columns: tuple[str, ...], series_columns: tuple[str, ...]) -> str:
    """The statement for these study and series attribute columns (psycopg's named placeholders)."""
    watermark_sequence = f"{INSTANCES.name}_watermark_seq"  # the BIGSERIAL's sequence (PostgreSQL's naming)
    study_cols = ", ".join(study_columns)
    series_cols = ", ".join(series_columns)
    instance_cols = ", ".join(_INSTANCE_COLUMNS)
    feed_cols = ", ".join(FEED_COLUMNS)
    return f"""
WITH guard AS (
    SELECT nextval('{watermark_sequence}') AS w
    WHERE NOT EXISTS (SELECT 1 FROM {TAGS.name} WHERE status IN ('{STATUS_ADDING}', '{STATUS_READY}'))
), st AS (
    INSERT INTO {STUDIES.name} AS s (partition_key, study_uid, latest_watermark, {study_cols})
    SELECT {_params(STUDIES, "", ("partition_key", "study_uid"))}, guard.w, {_params(STUDIES, "study_", study_columns)}
    FROM guard
    ON CONFLICT (partition_key, study_uid) DO UPDATE SET {_latest_wins("s", study_columns)}
    RETURNING s.study_key
), se AS (
    INSERT INTO {SERIES.name} AS r (study_key, partition_key, series_uid, latest_watermark, {series_cols})
    SELECT st.study_key, {_params(SERIES, "", ("partition_key", "series_uid"))}, guard.w,
        {_params(SERIES, "series_", series_columns)}
    FROM st, guard
    ON CONFLICT (study_key, series_uid) DO UPDATE SET {_latest_wins("r", series_columns)}
    RETURNING r.study_key, r.series_key
), ins AS (
    INSERT INTO {INSTANCES.name} (watermark, study_key, series_key, {instance_cols})
    SELECT guard.w, se.study_key, se.series_key, {_params(INSTANCES, "", _INSTANCE_COLUMNS)} FROM se, guard
    RETURNING watermark, study_key, series_key
), feed_lock AS (
    SELECT pg_advisory_xact_lock(%(feed_lock)s::BIGINT) AS locked, ins.watermark FROM ins
), feed AS (
    INSERT INTO {FEED.name} ({feed_cols})
    SELECT {_param(FEED, "timestamp", "created_at")}, {_params(FEED, "", FEED_COLUMNS[1:-1])}, feed_lock.watermark
    FROM feed_lock
    RETURNING sequence
), outbox AS (
    INSERT INTO {OUTBOX.name} (sequence, event_id) SELECT sequence, {_param(OUTBOX, "event_id")} FROM feed
)
SELECT watermark, study_key, series_key FROM ins
"""


@functools.cache
def _numbered(study_columns: tuple[str, ...], series_columns: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """:func:`_statement` with asyncpg's numbered placeholders ($1, $2, ...) and the parameter names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    sql = re.sub(r"%\((\w+)\)s", number, _statement(study_columns, series_columns))
    return sql, tuple(names)


def _parameters(new: NewInstance, now: datetime) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]:
    """The study and series attribute columns of ``new`` and every parameter of its statement, by name."""
    study_values = {"expires_at": new.expires_at, **new.study_values}
    params: dict[str, Any] = {
        **instance_values(new, now),
        "action": new.action,
        "feed_lock": FEED_LOCK_ID,
        "event_id": str(uuid.uuid4()),
    }
    params.update({f"study_{name}": value for name, value in study_values.items()})
    params.update({f"series_{name}": value for name, value in new.series_values.items()})
    return tuple(study_values), tuple(new.series_values), params


def _result(row: Sequence[Any] | None) -> AddResult | None:
    if row is None:
        return None
    watermark, study_key, series_key = row
    return AddResult(watermark=int(watermark), study_key=int(study_key), series_key=int(series_key))


def store_lone(conn: Connection, new: NewInstance, now: datetime) -> AddResult | None:
    """Store ``new`` (:func:`eligible`) in one statement on ``conn``, a psycopg connection in autocommit.

    None when extended query tags are active (nothing was written: use the transactional path). A duplicate
    raises the driver's IntegrityError, nothing written.
    """
    study_columns, series_columns, params = _parameters(new, now)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_statement(study_columns, series_columns), params)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return _result(row)


async def store_lone_async(conn: Any, new: NewInstance, now: datetime) -> AddResult | None:
    """:func:`store_lone` on an asyncpg connection (outside any transaction: the statement commits itself).

    asyncpg prepares the statement once per connection and keeps it; a duplicate raises its
    UniqueViolationError.
    """
    study_columns, series_columns, params = _parameters(new, now)
    sql, names = _numbered(study_columns, series_columns)
    return _result(await conn.fetchrow(sql, *(params[name] for name in names)))
