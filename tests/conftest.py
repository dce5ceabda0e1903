"""Shared fixtures: the app on SQLite and on PostgreSQL, an httpx client through the lifespan."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from dicom_emulator.app import create_app
from dicom_emulator.config import Settings

# Tests must not inherit a developer's emulator configuration (procrastinate-style hygiene).
for _key in list(os.environ):
    if _key.startswith("DICOM_EMULATOR_") and not _key.startswith("DICOM_EMULATOR_TEST_"):
        del os.environ[_key]
os.environ.pop("DATABASE_URL", None)
os.environ.pop("DICOM_STORAGE_DIR", None)

POSTGRES_ADMIN_URL = os.environ.get("DICOM_EMULATOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("DICOM_EMULATOR_TEST_REQUIRE_POSTGRES") == "1"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test session, or a clear skip."""
    name = f"dicom_emulator_test_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection problem means "no PostgreSQL here"
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({exc}); set DICOM_EMULATOR_TEST_POSTGRES_URL"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " — DICOM_EMULATOR_TEST_REQUIRE_POSTGRES=1 forbids skipping")
        pytest.skip(message)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_server")
        try:
            asyncio.run(_truncate(url))
        except Exception:  # noqa: BLE001 - first use: the schema does not exist yet
            pass
        return Settings(data_dir=tmp_path / "data", database_url=url)
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
