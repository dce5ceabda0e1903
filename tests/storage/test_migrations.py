"""The shipped Alembic migrations produce exactly the schema of the models, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from dicom_emulator.config import Settings
from dicom_emulator.storage.db import create_engine, migrate
from dicom_emulator.storage.models import Base


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_head_matches_models(settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate(engine)
        await migrate(engine)  # idempotent: a second start applies nothing
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
