"""SQL storage of Modality Performed Procedure Step instances (PS3.4 Annex F), kept in the database.

Rows are inserted by N-CREATE (the unique constraint makes a second N-CREATE of one SOP Instance UID fail, also
across processes) and rewritten by N-SET under optimistic concurrency on ``version``, like workitems.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import utcnow
from dicom_emulator.storage.models import DEFAULT_PARTITION_KEY, PerformedProcedureStep


class MppsExistsError(Exception):
    """An MPPS instance with this SOP Instance UID exists."""


class StaleMppsError(Exception):
    """The row changed (or vanished) since it was read: a concurrent N-SET won."""


@dataclass(frozen=True, slots=True)
class MppsRow:
    key: int
    sop_uid: str
    status: str
    workitem_uids: tuple[str, ...]
    dataset_json: str
    version: int
    created_at: datetime
    updated_at: datetime


def _row(row: PerformedProcedureStep) -> MppsRow:
    return MppsRow(
        key=row.mpps_key,
        sop_uid=row.sop_uid,
        status=row.status,
        workitem_uids=tuple(json.loads(row.workitem_uids)),
        dataset_json=row.dataset_json,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlMppsStore:
    """MPPS rows over an async session factory (SQLite or PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], partition_key: int = DEFAULT_PARTITION_KEY) -> None:
        self.sessions = sessions
        self.partition_key = partition_key

    async def add(self, *, sop_uid: str, status: str, dataset_json: str, workitem_uids: tuple[str, ...]) -> MppsRow:
        """Insert a new instance; :class:`MppsExistsError` when the UID is taken."""
        now = utcnow()
        row = PerformedProcedureStep(
            partition_key=self.partition_key,
            sop_uid=sop_uid,
            status=status,
            workitem_uids=json.dumps(list(workitem_uids)),
            dataset_json=dataset_json,
            version=1,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.sessions.begin() as session:
                session.add(row)
                await session.flush()
                result = _row(row)
        except IntegrityError as exc:
            raise MppsExistsError(sop_uid) from exc
        return result

    async def get(self, sop_uid: str) -> MppsRow | None:
        async with self.sessions() as session:
            row = await session.scalar(
                select(PerformedProcedureStep).where(
                    PerformedProcedureStep.partition_key == self.partition_key,
                    PerformedProcedureStep.sop_uid == sop_uid,
                )
            )
            return None if row is None else _row(row)

    async def replace(self, current: MppsRow, *, status: str, dataset_json: str) -> MppsRow:
        """Write a new version of ``current`` unless it changed since it was read (:class:`StaleMppsError`)."""
        now = utcnow()
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(PerformedProcedureStep)
                .where(
                    PerformedProcedureStep.mpps_key == current.key, PerformedProcedureStep.version == current.version
                )
                .values(status=status, dataset_json=dataset_json, version=current.version + 1, updated_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise StaleMppsError(current.sop_uid)
        return MppsRow(
            key=current.key,
            sop_uid=current.sop_uid,
            status=status,
            workitem_uids=current.workitem_uids,
            dataset_json=dataset_json,
            version=current.version + 1,
            created_at=current.created_at,
            updated_at=now,
        )

    async def remove(self, key: int) -> None:
        """Undo an N-CREATE whose workitem could not be claimed."""
        async with self.sessions.begin() as session:
            await session.execute(delete(PerformedProcedureStep).where(PerformedProcedureStep.mpps_key == key))
