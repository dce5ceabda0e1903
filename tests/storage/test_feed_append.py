"""``append_feed``: the one insert of change-feed rows also writes their outbox events, in the same transaction.

Bulk update (an ``Update`` row per instance) appends through it too, which makes ``DicomImageUpdated`` events.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from dicom_emulator.clock import utcnow
from dicom_emulator.config import Settings
from dicom_emulator.services.event_envelopes import render
from dicom_emulator.storage.db import create_engine, migrate, session_factory
from dicom_emulator.storage.events_store import SqlEventStore
from dicom_emulator.storage.feed_append import append_feed
from dicom_emulator.storage.index import SqlIndex
from dicom_emulator.storage.models import ChangeFeedEntry, EventOutbox


def _row(action: str, sop: str) -> dict[str, object]:
    return {
        "timestamp": utcnow(),
        "action": action,
        "partition_key": 1,
        "study_uid": "1.2",
        "series_uid": "1.2.3",
        "sop_uid": sop,
        "watermark": 1,
    }


async def test_rows_and_events_commit_or_roll_back_together(settings: Settings, tmp_path: Path) -> None:
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        await SqlIndex(session_factory(engine)).ensure_default_partition()
        async with engine.begin() as conn:
            sequences = await conn.run_sync(lambda c: append_feed(c, [_row("Create", "1"), _row("Update", "1")]))
        assert sequences == [1, 2]
        try:
            async with engine.begin() as conn:
                await conn.run_sync(lambda c: append_feed(c, [_row("Delete", "1")]))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(ChangeFeedEntry)) == 2
            assert await conn.scalar(select(func.count()).select_from(EventOutbox)) == 2
        records = await SqlEventStore(session_factory(engine)).events_after(0, 10)
        types = [render(r, "EventGridSchema", topic="/t", service_host="h")["eventType"] for r in records]
        assert types == ["Microsoft.HealthcareApis.DicomImageCreated", "Microsoft.HealthcareApis.DicomImageUpdated"]
        assert [r.partition_name for r in records] == ["Microsoft.Default"] * 2
    finally:
        await engine.dispose()
