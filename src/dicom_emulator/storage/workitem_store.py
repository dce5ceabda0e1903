"""SQL storage of UPS-RS workitems (azure-behaviour §9): rows, optimistic concurrency, and search conditions to SQL.

Each change rewrites the whole row (dataset JSON, search columns, state, Transaction UID) in one statement that
also checks and bumps ``version``; a writer whose version is stale changes nothing and gets
:class:`StaleWorkitemError`, also across several emulator processes on one PostgreSQL. Condition values arrive
normalized (``dicom.ups``), so matching is equality, ranges and LIKE on the normalized columns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, false, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import utcnow
from dicom_emulator.dicom.query import Condition, SingleValue, Wildcard
from dicom_emulator.dicom.ups.search import LIST_DELIMITER, SearchKey
from dicom_emulator.storage.models import Workitem
from dicom_emulator.storage.querying import like_escape, match_clause, wildcard_like


class WorkitemExistsError(Exception):
    """A workitem with this SOP Instance UID exists in the partition (also when another process won the race)."""


class StaleWorkitemError(Exception):
    """The row changed (or vanished) since it was read: a concurrent update won."""


@dataclass(frozen=True, slots=True)
class WorkitemRow:
    """One stored workitem as the service sees it."""

    key: int
    partition_key: int
    sop_uid: str
    transaction_uid: str | None
    state: str
    dataset_json: str
    version: int
    created_at: datetime
    updated_at: datetime


def _row(row: Workitem) -> WorkitemRow:
    return WorkitemRow(
        key=row.workitem_key,
        partition_key=row.partition_key,
        sop_uid=row.sop_uid,
        transaction_uid=row.transaction_uid,
        state=row.state,
        dataset_json=row.dataset_json,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def condition_clause(key: SearchKey, cond: Condition) -> ColumnElement[bool]:
    """The WHERE clause of one workitem search condition (values already normalized)."""
    column = getattr(Workitem, key.column)
    if key.multiple:
        # One value per sequence item in a framed list ("\A\B\"): the condition holds when some item matches.
        if isinstance(cond, SingleValue):
            framed = f"{LIST_DELIMITER}{cond.value}{LIST_DELIMITER}"
            return column.contains(framed, autoescape=True)  # type: ignore[no-any-return]
        if isinstance(cond, Wildcard):
            # PS3.4 C.2.2.2.4 (DIMSE callers only): a pre-filter, exact per item in SqlWorkitemStore.search.
            return column.like(f"%{_framed_wildcard_like(cond.pattern)}%", escape="\\")  # type: ignore[no-any-return]
        raise TypeError(f"unsupported condition {cond!r} on {key.column}")
    # Single-valued columns match exactly like the QIDO index columns (one implementation).
    return match_clause(cond, column, Workitem.patient_name_words)


def _framed_wildcard_like(pattern: str) -> str:
    body = wildcard_like(pattern)
    # In a framed list a '%' may run across item boundaries, so this LIKE is only a pre-filter; rows are then
    # checked item by item with _framed_wildcard_matches.
    return f"{like_escape(LIST_DELIMITER)}{body}{like_escape(LIST_DELIMITER)}"


def _framed_wildcard_matches(framed: str | None, pattern: str) -> bool:
    """PS3.4 C.2.2.2.4 on each item of a framed list ("\\A\\B\\")."""
    if not framed:
        return False
    regex = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)
    return any(regex.fullmatch(item) for item in framed.split(LIST_DELIMITER) if item)


class SqlWorkitemStore:
    """Workitem rows over an async session factory (SQLite or PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def add(
        self,
        *,
        partition_key: int,
        sop_uid: str,
        state: str,
        dataset_json: str,
        values: Mapping[str, str | None],
    ) -> WorkitemRow:
        """Insert a new workitem; :class:`WorkitemExistsError` when the UID is taken (unique constraint)."""
        now = utcnow()
        row = Workitem(
            partition_key=partition_key,
            sop_uid=sop_uid,
            transaction_uid=None,
            state=state,
            dataset_json=dataset_json,
            version=1,
            created_at=now,
            updated_at=now,
            **values,
        )
        try:
            async with self.sessions.begin() as session:
                session.add(row)
                await session.flush()
                result = _row(row)
        except IntegrityError as exc:
            raise WorkitemExistsError(sop_uid) from exc
        return result

    async def get(self, partition_key: int, sop_uid: str) -> WorkitemRow | None:
        async with self.sessions() as session:
            row = await session.scalar(
                select(Workitem).where(Workitem.partition_key == partition_key, Workitem.sop_uid == sop_uid)
            )
            return None if row is None else _row(row)

    async def replace(
        self,
        current: WorkitemRow,
        *,
        state: str,
        transaction_uid: str | None,
        dataset_json: str,
        values: Mapping[str, str | None],
    ) -> WorkitemRow:
        """Write a new version of ``current`` unless it changed since it was read (:class:`StaleWorkitemError`)."""
        now = utcnow()
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(Workitem)
                .where(Workitem.workitem_key == current.key, Workitem.version == current.version)
                .values(
                    state=state,
                    transaction_uid=transaction_uid,
                    dataset_json=dataset_json,
                    version=current.version + 1,
                    updated_at=now,
                    **values,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise StaleWorkitemError(current.sop_uid)
        return WorkitemRow(
            key=current.key,
            partition_key=current.partition_key,
            sop_uid=current.sop_uid,
            transaction_uid=transaction_uid,
            state=state,
            dataset_json=dataset_json,
            version=current.version + 1,
            created_at=current.created_at,
            updated_at=now,
        )

    async def search(
        self,
        partition_key: int,
        conditions: Sequence[tuple[SearchKey, Condition]],
        *,
        limit: int | None,
        offset: int = 0,
        states: Sequence[str] | None = None,
    ) -> list[WorkitemRow]:
        """One page of matching workitems, newest first (Azure orders by WorkitemKey descending)."""
        stmt = select(Workitem).where(Workitem.partition_key == partition_key)
        for key, cond in conditions:
            stmt = stmt.where(condition_clause(key, cond))
        if states is not None:
            stmt = stmt.where(or_(*(Workitem.state == s for s in states)) if states else false())
        stmt = stmt.order_by(Workitem.workitem_key.desc())
        # Wildcards on framed lists are only pre-filtered in SQL; page after the exact per-item check then.
        exact = [(k, c) for k, c in conditions if k.multiple and isinstance(c, Wildcard)]
        if not exact:
            stmt = stmt.offset(offset)
            if limit is not None:
                stmt = stmt.limit(limit)
        async with self.sessions() as session:
            rows = list((await session.execute(stmt)).scalars().all())
        if exact:
            rows = [r for r in rows if all(_framed_wildcard_matches(getattr(r, k.column), c.pattern) for k, c in exact)]
            rows = rows[offset:] if limit is None else rows[offset : offset + limit]
        return [_row(r) for r in rows]
