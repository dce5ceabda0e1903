"""The delete transaction: instance rows, emptied series and studies, and one ``Delete`` feed entry each.

Lock order is the store's (storage/instance_writes.py): the study row, then its series rows, then the
instance rows, and the change-feed advisory lock LAST. Taking the feed lock first (as this path once did)
deadlocked on PostgreSQL against a STOW holding the study row and waiting for the feed lock.

Locking the study row ``FOR UPDATE`` first also makes concurrent deletes of one study exact: the second
waits for the first to commit, then finds the study gone (PostgreSQL re-checks a locked row after the
holder commits, and every later statement of a READ COMMITTED transaction sees the commit), so it deletes
nothing and answers 404 instead of a second 204 with duplicate feed entries. SQLite needs none of this:
the caller holds its write lock for the whole transaction (BEGIN IMMEDIATE).

Synchronous Core over a :class:`~sqlalchemy.engine.Connection`, run through ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.engine import Connection

from dicom_emulator.storage.feed_append import append_feed
from dicom_emulator.storage.instance_writes import INSTANCES, SERIES, STUDIES

ACTION_DELETE = "Delete"

_LOCK_STUDY = (
    select(STUDIES.c.study_key)
    .where(STUDIES.c.partition_key == bindparam("partition_key"), STUDIES.c.study_uid == bindparam("study_uid"))
    .with_for_update()
)
_LOCK_SERIES = (
    select(SERIES.c.series_key, SERIES.c.latest_watermark)
    .where(SERIES.c.study_key == bindparam("study_key"))
    .order_by(SERIES.c.series_key)
    .with_for_update()
)
_LATEST_IN_SERIES = select(func.max(INSTANCES.c.watermark)).where(INSTANCES.c.series_key == bindparam("key"))
_LATEST_IN_STUDY = select(func.max(INSTANCES.c.watermark)).where(INSTANCES.c.study_key == bindparam("key"))


def delete_level(
    conn: Connection,
    partition_key: int,
    study_uid: str,
    series_uid: str | None,
    sop_uid: str | None,
    *,
    now: datetime,
) -> list[Row[Any]]:
    """Delete the instances at a level in the caller's transaction; the deleted rows, in watermark order."""
    study_key = conn.execute(_LOCK_STUDY, {"partition_key": partition_key, "study_uid": study_uid}).scalar()
    if study_key is None:
        return []
    series = conn.execute(_LOCK_SERIES, {"study_key": study_key}).all()
    stmt = select(INSTANCES).where(INSTANCES.c.study_key == study_key)
    if series_uid is not None:
        stmt = stmt.where(INSTANCES.c.series_uid == series_uid)
    if sop_uid is not None:
        stmt = stmt.where(INSTANCES.c.sop_uid == sop_uid)
    rows = conn.execute(stmt.order_by(INSTANCES.c.watermark).with_for_update()).all()
    if not rows:
        return []
    watermarks = [row.watermark for row in rows]
    deleted = set(
        conn.execute(
            INSTANCES.delete().where(INSTANCES.c.watermark.in_(watermarks)).returning(INSTANCES.c.watermark)
        ).scalars()
    )
    rows = [row for row in rows if row.watermark in deleted]
    if not rows:
        return []
    _refresh_parents(conn, study_key, [(s.series_key, s.latest_watermark) for s in series])
    # The feed lock is taken last, inside append_feed, with the event outbox rows (storage/feed_append.py).
    append_feed(
        conn,
        [
            {
                "timestamp": now,
                "action": ACTION_DELETE,
                "partition_key": row.partition_key,
                "study_uid": row.study_uid,
                "series_uid": row.series_uid,
                "sop_uid": row.sop_uid,
                "watermark": row.watermark,
            }
            for row in rows
        ],
    )
    return rows


def _refresh_parents(conn: Connection, study_key: int, series: list[tuple[int, int]]) -> None:
    """Remove emptied series and the study if emptied; re-point latest_watermark of the rest."""
    for series_key, current in series:
        latest = conn.execute(_LATEST_IN_SERIES, {"key": series_key}).scalar()
        if latest is None:
            conn.execute(SERIES.delete().where(SERIES.c.series_key == series_key))
        elif latest != current:
            conn.execute(SERIES.update().where(SERIES.c.series_key == series_key).values(latest_watermark=latest))
    latest = conn.execute(_LATEST_IN_STUDY, {"key": study_key}).scalar()
    if latest is None:
        conn.execute(STUDIES.delete().where(STUDIES.c.study_key == study_key))
    else:
        conn.execute(STUDIES.update().where(STUDIES.c.study_key == study_key).values(latest_watermark=latest))
