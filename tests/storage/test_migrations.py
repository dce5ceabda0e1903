"""The shipped Alembic migrations produce exactly the schema of the models, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from dicom_emulator.config import Settings
from dicom_emulator.storage.db import create_engine, migrate
from dicom_emulator.storage.models import Base
from tests.conftest import PostgresServer


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """An empty database (not the suite's migrated template): the migrations run from the start here."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"{server.prefix}_empty_{uuid.uuid4().hex[:8]}"
        yield Settings(data_dir=tmp_path / "data", database_url=server.create(name))
        server.drop(name)
        return
    yield Settings(data_dir=tmp_path / "data")


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_head_matches_models(settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with engine.connect() as conn:
            assert await conn.run_sync(lambda c: c.dialect.get_table_names(c)) == []  # truly from scratch
        await migrate(engine)
        await migrate(engine)  # idempotent: a second start applies nothing
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
