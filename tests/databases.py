"""Throw-away databases for the tests: a migrated SQLite file to copy, PostgreSQL databases made from a template."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from dicom_emulator.config import Settings, normalize_database_url
from dicom_emulator.storage.db import create_engine, migrate

T = TypeVar("T")


async def migrate_database(url: str) -> None:
    """``alembic upgrade head`` on the database at ``url``."""
    engine = create_engine(normalize_database_url(url))
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------------------------------
# SQLite: the index of a data dir is one file; a migrated one is copied into each test's data dir
# ---------------------------------------------------------------------------------------------------------------


def sqlite_path(settings: Settings) -> Path:
    """The index file of a SQLite ``settings``."""
    database = make_url(settings.resolved_database_url).database
    assert database, settings.resolved_database_url
    return Path(database)


def make_sqlite_template(directory: Path) -> Path:
    """A SQLite index migrated to head in ``directory``, as one file (its WAL folded in)."""
    settings = Settings(data_dir=directory)
    path = sqlite_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(migrate_database(settings.resolved_database_url))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")  # checkpoint: the whole database is now in this one file
    assert not path.with_name(path.name + "-wal").exists()
    return path


def copy_sqlite_template(template: Path, settings: Settings) -> None:
    """Give ``settings`` (SQLite, in a data dir) a copy of the migrated index."""
    path = sqlite_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL: a migrated template database per session
# ---------------------------------------------------------------------------------------------------------------


async def _execute(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class _BackgroundConnection:
    """An asyncpg connection kept open on an event loop of its own thread (the tests' event loops come and go)."""

    def __init__(self, url: str) -> None:
        import asyncpg

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tests-postgres", daemon=True)
        self._thread.start()
        self._conn = self._call(asyncpg.connect(url, timeout=5))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=120)

    def execute(self, sql: str) -> None:
        self._call(self._conn.execute(sql))

    def close(self) -> None:
        try:
            self._call(self._conn.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


class PostgresServer:
    """This session's databases on the test server: a migrated template, and the databases made from it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.base = admin_url.rsplit("/", 1)[0]
        self.prefix = f"dicom_emulator_test_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_template"
        self.scratch = f"{self.prefix}_scratch"
        self._created: list[str] = []
        self._reset_sql = ""
        self._scratch_conn: _BackgroundConnection | None = None

    def check(self) -> None:
        """Raise when the server cannot be reached."""
        asyncio.run(_execute(self.admin_url, "SELECT 1"))

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def create(self, name: str, *, template: str | None = None) -> str:
        """A new database (a copy of ``template``, or empty); dropped at the end of the session at the latest."""
        suffix = f' TEMPLATE "{template}"' if template else ""
        asyncio.run(_execute(self.admin_url, f'CREATE DATABASE "{name}"{suffix}'))
        self._created.append(name)
        return self.url(name)

    def drop(self, name: str) -> None:
        asyncio.run(_execute(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self._created:
            self._created.remove(name)

    def create_from_template(self, name: str) -> str:
        """A database with the migrated schema and no rows, as ``upgrade head`` leaves a new one."""
        return self.create(name, template=self.template)

    def start(self) -> None:
        self.create(self.template)
        asyncio.run(migrate_database(self.url(self.template)))
        self.create_from_template(self.scratch)
        self._reset_sql = asyncio.run(_reset_statements(self.url(self.scratch)))
        self._scratch_conn = _BackgroundConnection(self.url(self.scratch))

    def reset_scratch(self) -> str:
        """Empty the scratch database (rows and sequences) and return its URL."""
        assert self._scratch_conn is not None, "start() first"
        self._scratch_conn.execute(self._reset_sql)
        return self.url(self.scratch)

    def stop(self) -> None:
        if self._scratch_conn is not None:
            self._scratch_conn.close()
            self._scratch_conn = None
        for name in reversed(self._created[:]):
            self.drop(name)


async def _reset_statements(url: str) -> str:
    """``DELETE`` every table (referencing tables first) and restart every sequence, in one script."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        references = await conn.fetch(
            "SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent "
            "FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"
        )
        sequences = [
            r["sequencename"]
            for r in await conn.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
        ]
    finally:
        await conn.close()
    parents: dict[str, set[str]] = {t: set() for t in tables}
    for ref in references:
        child, parent = ref["child"].strip('"'), ref["parent"].strip('"')
        if child != parent and child in parents:
            parents[child].add(parent)
    ordered: list[str] = []  # a table before every table it references
    remaining = set(tables)
    while remaining:
        leaves = sorted(t for t in remaining if not any(t in parents[o] for o in remaining if o != t))
        if not leaves:
            raise RuntimeError(f"cyclic foreign keys between {sorted(remaining)}: reset them with TRUNCATE")
        ordered.extend(leaves)
        remaining.difference_update(leaves)
    statements = [f'DELETE FROM "{t}"' for t in ordered] + [f'ALTER SEQUENCE "{s}" RESTART' for s in sequences]
    return ";\n".join(statements)
