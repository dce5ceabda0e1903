"""The one place change-feed rows are appended, together with the event outbox rows they produce.

Every writer that changes what is visible (store, delete, bulk update) appends its change-feed rows through
:func:`append_feed`, inside its own transaction, so the feed row and its event are committed together or not at
all (architecture invariant 1): an event is never announced for a change that rolled back, and never lost for one
that committed. Events are delivered later by the job runner (jobs/event_delivery.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, func, select, text
from sqlalchemy.engine import Connection

from dicom_emulator.storage import compiled_sql
from dicom_emulator.storage.models import ChangeFeedEntry, EventOutbox

# Any constant: the advisory lock that orders change-feed commits on PostgreSQL (see lock_feed).
FEED_LOCK_ID = 0x44434D46

FEED: Table = ChangeFeedEntry.__table__  # type: ignore[assignment]
OUTBOX: Table = EventOutbox.__table__  # type: ignore[assignment]
_INSERT_FEED = FEED.insert().returning(FEED.c.sequence)
_INSERT_OUTBOX = OUTBOX.insert()
_LOCK_FEED = text("SELECT pg_advisory_xact_lock(:k)")
FEED_COLUMNS = ("timestamp", "action", "partition_key", "study_uid", "series_uid", "sop_uid", "watermark")


def _append_one_statement() -> Any:
    """PostgreSQL: the feed lock, one feed row and its outbox row in ONE statement (one round trip, not three).

    WITH feed_lock AS (SELECT pg_advisory_xact_lock(:k)),
         feed AS (INSERT INTO changefeed (...) SELECT :timestamp, ... FROM feed_lock RETURNING sequence)
    INSERT INTO event_outbox (sequence, event_id) SELECT sequence, :event_id FROM feed RETURNING sequence

    The row's values are selected FROM the lock's CTE, so the lock is held before the INSERT draws its
    sequence value (column defaults are evaluated per inserted row): the ordering lock_feed guarantees.
    """
    feed_lock = select(func.pg_advisory_xact_lock(bindparam("k", type_=BigInteger))).cte("feed_lock")
    values = select(*(bindparam(name, type_=FEED.c[name].type) for name in FEED_COLUMNS)).select_from(feed_lock)
    feed = FEED.insert().from_select(list(FEED_COLUMNS), values).returning(FEED.c.sequence).cte("feed")
    event = select(feed.c.sequence, bindparam("event_id", type_=OUTBOX.c.event_id.type))
    return OUTBOX.insert().from_select(["sequence", "event_id"], event).returning(OUTBOX.c.sequence)


_APPEND_ONE_PG = _append_one_statement()


def lock_feed(conn: Connection) -> None:
    """Serialize change-feed appends until commit on PostgreSQL.

    Sequence values are handed out at INSERT; without this lock two processes could commit 12 before 11,
    and a v1 reader (or an event sink's cursor) that already moved past 12 would never see 11 (architecture
    invariant 3). SQLite serializes writers already.
    """
    if conn.dialect.name == "postgresql":
        compiled_sql.execute(conn, _LOCK_FEED, {"k": FEED_LOCK_ID}).close()


def append_feed(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert change-feed ``rows`` (column values) and one outbox event each; returns their sequences in order."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        return [
            int(
                compiled_sql.scalar(
                    conn,
                    _APPEND_ONE_PG,
                    {
                        "k": FEED_LOCK_ID,
                        "event_id": str(uuid.uuid4()),
                        **{name: row.get(name) for name in FEED_COLUMNS},
                    },
                )
            )
            for row in rows
        ]
    lock_feed(conn)
    # One INSERT per row, in order: the sequences come back in the order of ``rows``.
    sequences = [int(compiled_sql.scalar(conn, _INSERT_FEED, row)) for row in rows]
    add_events(conn, sequences)
    return sequences


def add_events(conn: Connection, sequences: Sequence[int]) -> None:
    """The outbox rows of freshly inserted feed rows: the event id is fixed now, so redeliveries repeat it."""
    compiled_sql.execute_many(conn, _INSERT_OUTBOX, [{"sequence": s, "event_id": str(uuid.uuid4())} for s in sequences])
