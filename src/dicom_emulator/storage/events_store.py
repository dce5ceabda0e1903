"""Reads of the event outbox and the delivery state of each event sink (cursor, lease, retries).

A sink is delivered by one process at a time: the one holding its lease (``owner`` until ``lease_until``), taken
with a conditional UPDATE, so several processes on one database deliver each event once per sink in the normal
case; after a crash the lease runs out and another process resumes from the committed cursor (at least once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import as_utc, utcnow
from dicom_emulator.storage.models import ChangeFeedEntry, EventOutbox, EventSinkState, Partition

# One event type per change-feed action (reference §12.6: Create → Created, Delete → Deleted, Update → Updated).
EVENT_TYPES = {
    "Create": "Microsoft.HealthcareApis.DicomImageCreated",
    "Delete": "Microsoft.HealthcareApis.DicomImageDeleted",
    "Update": "Microsoft.HealthcareApis.DicomImageUpdated",
}


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An outbox event with the change-feed row it announces."""

    sequence: int
    event_id: str
    action: str
    study_uid: str
    series_uid: str
    sop_uid: str
    timestamp: datetime
    partition_name: str | None = None

    @property
    def event_type(self) -> str:
        return EVENT_TYPES[self.action]


@dataclass(frozen=True, slots=True)
class SinkState:
    name: str
    cursor: int
    attempts: int
    next_attempt_at: datetime | None
    first_attempt_at: datetime | None
    last_outcome: str | None
    validated: str | None
    validation_code: str | None


def _state(row: EventSinkState) -> SinkState:
    return SinkState(
        name=row.name,
        cursor=row.cursor,
        attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at) if row.next_attempt_at else None,
        first_attempt_at=as_utc(row.first_attempt_at) if row.first_attempt_at else None,
        last_outcome=row.last_outcome,
        validated=row.validated,
        validation_code=row.validation_code,
    )


class LostSinkLeaseError(Exception):
    """Another process took the sink over (our lease ran out); stop delivering it."""


class SqlEventStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def events_after(self, sequence: int, limit: int) -> list[EventRecord]:
        """Outbox events with a sequence above ``sequence``, in sequence order."""
        stmt = (
            select(EventOutbox.event_id, ChangeFeedEntry, Partition.partition_name)
            .join(ChangeFeedEntry, ChangeFeedEntry.sequence == EventOutbox.sequence)
            .outerjoin(Partition, Partition.partition_key == ChangeFeedEntry.partition_key)
            .where(EventOutbox.sequence > sequence)
            .order_by(EventOutbox.sequence)
            .limit(limit)
        )
        async with self.sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [
            EventRecord(
                sequence=feed.sequence,
                event_id=event_id,
                action=feed.action,
                study_uid=feed.study_uid,
                series_uid=feed.series_uid,
                sop_uid=feed.sop_uid,
                timestamp=as_utc(feed.timestamp),
                partition_name=partition,
            )
            for event_id, feed, partition in rows
        ]

    async def ensure_sink(self, name: str) -> None:
        """Register a sink once; a new one starts after the newest event (Azure does not back-fill, §12.1)."""
        async with self.sessions.begin() as session:
            newest = await session.scalar(select(func.max(EventOutbox.sequence)))
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            await session.execute(
                dialect.insert(EventSinkState)
                .values(name=name, cursor=newest or 0, attempts=0, updated_at=utcnow())
                .on_conflict_do_nothing()
            )

    async def claim(self, name: str, owner: str, lease: timedelta) -> SinkState | None:
        """Take or renew the sink's lease; None while another live process holds it."""
        now = utcnow()
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(EventSinkState)
                .where(
                    EventSinkState.name == name,
                    or_(
                        EventSinkState.owner.is_(None),
                        EventSinkState.owner == owner,
                        EventSinkState.lease_until < now,
                    ),
                )
                .values(owner=owner, lease_until=now + lease)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = await session.get(EventSinkState, name, populate_existing=True)
            assert row is not None
            return _state(row)

    async def release(self, name: str, owner: str) -> None:
        """Give the lease up at shutdown, so a peer or the restarted process takes over at once."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(EventSinkState)
                .where(EventSinkState.name == name, EventSinkState.owner == owner)
                .values(owner=None, lease_until=None)
            )

    async def _update(self, name: str, owner: str, **values: object) -> None:
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(EventSinkState)
                .where(EventSinkState.name == name, EventSinkState.owner == owner)
                .values(updated_at=utcnow(), **values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise LostSinkLeaseError(name)

    async def advance(self, name: str, owner: str, cursor: int) -> None:
        """Events up to ``cursor`` are done (delivered, dead-lettered or filtered out); reset the retry state."""
        await self._update(
            name, owner, cursor=cursor, attempts=0, next_attempt_at=None, first_attempt_at=None, last_outcome=None
        )

    async def record_failure(
        self,
        name: str,
        owner: str,
        *,
        attempts: int,
        first_attempt_at: datetime,
        next_attempt_at: datetime,
        outcome: str,
        pending_code: str | None = None,
    ) -> None:
        """A failed attempt; the retry is due at ``next_attempt_at``.

        With ``pending_code`` (a validation handshake) only while that code is still pending: the endpoint may
        have confirmed it through the validationUrl meanwhile, and then delivery starts at once.
        """
        values: dict[str, object] = {
            "attempts": attempts,
            "first_attempt_at": first_attempt_at,
            "next_attempt_at": next_attempt_at,
            "last_outcome": outcome,
            "updated_at": utcnow(),
        }
        stmt = update(EventSinkState).where(EventSinkState.name == name, EventSinkState.owner == owner)
        if pending_code is not None:
            stmt = stmt.where(EventSinkState.validation_code == pending_code)
        async with self.sessions.begin() as session:
            await session.execute(stmt.values(**values))

    async def set_validation(self, name: str, owner: str, *, validated: str | None, code: str | None) -> None:
        """Validated (``validated`` = what for), or a handshake with ``code`` under way (None = none)."""
        if validated is None:
            await self._update(name, owner, validation_code=code)
        else:  # a validated subscription starts delivering at once
            await self._update(
                name,
                owner,
                validated=validated,
                validation_code=None,
                attempts=0,
                next_attempt_at=None,
                first_attempt_at=None,
                last_outcome=None,
            )

    async def confirm_validation(self, code: str, validated: dict[str, str]) -> bool:
        """The endpoint GET the validationUrl (asynchronous handshake): mark the sink holding ``code`` validated.

        ``validated`` maps sink names to the value that marks them validated (their endpoint and schema).
        """
        async with self.sessions.begin() as session:
            row = await session.scalar(select(EventSinkState).where(EventSinkState.validation_code == code))
            if row is None or row.name not in validated:
                return False
            row.validated = validated[row.name]
            row.validation_code = None
            row.attempts = 0
            row.next_attempt_at = None
            row.first_attempt_at = None
            row.last_outcome = None
            row.updated_at = utcnow()
            return True

    async def newest_sequence(self) -> int:
        """The highest outbox sequence (0 when empty): is there anything after a sink's cursor?"""
        async with self.sessions() as session:
            return int(await session.scalar(select(func.max(EventOutbox.sequence))) or 0)

    async def state(self, name: str) -> SinkState | None:
        async with self.sessions() as session:
            row = await session.get(EventSinkState, name)
            return _state(row) if row is not None else None
