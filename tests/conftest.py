"""Shared fixtures: the app on SQLite and on PostgreSQL, an httpx client through the lifespan.

Every test still gets its own started app (its own lifespan: engine, runtime, job runner) over a database of
its own, empty but for the schema. What is shared, to keep the suite fast:

* the schema: migrated once per session (``alembic upgrade head``) into a template (a SQLite file that is
  copied for each test; a PostgreSQL database that per-module databases are created from), instead of once per
  test. The lifespan still runs ``migrate()``, which finds nothing to do. ``tests/storage`` migrates empty
  databases on both backends, and building the templates does too;
* the PostgreSQL database of function-scoped tests: one per session, emptied before each test (every row
  deleted, every sequence restarted: the same state as a fresh ``upgrade head``, 20x faster than TRUNCATE);
* the development issuer's signing key (``<data dir>/auth-signing-key.pem``): made once and copied into each
  test's data dir, instead of an RSA key generated at every start (~50 ms; the parsed key is cached per process);
* the ``FastAPI`` objects (routes and middleware, ~50 ms to build), through :class:`AppPool`: a test borrows
  an app created with equal settings, and its lifespan starts from scratch on the test's data directory and
  database.

Modules whose tests only read may share one started app and corpus (see ``module_settings``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from dicom_emulator.config import Settings
from tests.apps import APP_POOL, asgi_client, copy_signing_key, make_signing_key
from tests.databases import PostgresServer, copy_sqlite_template, make_sqlite_template

pytest_plugins = ["tests.azurite", "pytester"]  # ``azurite``: a real Azurite on free ports; ``pytester``

# Tests must not inherit a developer's emulator configuration (procrastinate-style hygiene).
for _key in list(os.environ):
    if _key.startswith("DICOM_EMULATOR_") and not _key.startswith("DICOM_EMULATOR_TEST_"):
        del os.environ[_key]
os.environ.pop("DATABASE_URL", None)
os.environ.pop("DICOM_STORAGE_DIR", None)

POSTGRES_ADMIN_URL = os.environ.get("DICOM_EMULATOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("DICOM_EMULATOR_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """This session's PostgreSQL databases (migrated template, scratch database), or a clear skip."""
    server = PostgresServer(POSTGRES_ADMIN_URL)
    try:
        server.check()
    except Exception as exc:  # noqa: BLE001 - any connection problem means "no PostgreSQL here"
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({exc}); set DICOM_EMULATOR_TEST_POSTGRES_URL"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " — DICOM_EMULATOR_TEST_REQUIRE_POSTGRES=1 forbids skipping")
        pytest.skip(message)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------------------------
# SQLite
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite index migrated to head, copied into each test's data dir."""
    return make_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def issuer_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The development issuer's key, made once and copied into each test's data dir (see ``copy_signing_key``)."""
    return make_signing_key(tmp_path_factory.mktemp("signing-key"))


# ---------------------------------------------------------------------------------------------------------------
# Settings per backend
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of the test ("sqlite" or "postgres"): parametrizes every test that uses settings."""
    return str(request.param)


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a data dir and a database of this test's own, both empty (the schema is migrated)."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        settings = Settings(data_dir=tmp_path / "data", database_url=server.reset_scratch())
    else:
        settings = Settings(data_dir=tmp_path / "data")
        copy_sqlite_template(request.getfixturevalue("sqlite_template"), settings)
    copy_signing_key(request.getfixturevalue("issuer_key_file"), settings)
    return settings


@pytest.fixture(scope="module")
def module_settings(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Like ``settings``, for one app and corpus shared by the read-only tests of a module."""
    data_dir = tmp_path_factory.mktemp("module") / "data"
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"{server.prefix}_m{uuid.uuid4().hex[:8]}"
        settings = Settings(data_dir=data_dir, database_url=server.create_from_template(name))
        copy_signing_key(request.getfixturevalue("issuer_key_file"), settings)
        yield settings
        server.drop(name)
        return
    settings = Settings(data_dir=data_dir)
    copy_sqlite_template(request.getfixturevalue("sqlite_template"), settings)
    copy_signing_key(request.getfixturevalue("issuer_key_file"), settings)
    yield settings


# ---------------------------------------------------------------------------------------------------------------
# Apps
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with APP_POOL.running(settings) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


@pytest.fixture(scope="module")
async def module_app(module_settings: Settings) -> AsyncIterator[FastAPI]:
    """One started app for a whole module (per backend): only for tests that leave the store as they found it."""
    async with APP_POOL.running(module_settings) as application:
        yield application


@pytest.fixture(scope="module")
async def module_client(module_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(module_app) as c:
        yield c
