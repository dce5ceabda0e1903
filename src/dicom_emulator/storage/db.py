"""Async engine factory and migrations at start-up, for SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works: it only serializes concurrent start-ups migrating one PostgreSQL database.
_MIGRATION_LOCK_ID = 0x44434D45


def create_engine(url: str, *, pool_size: int = 10, power_safe: bool = False) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL and a busy timeout so writers wait instead of failing.

    ``power_safe`` (``--durability power``): SQLite syncs the WAL at every commit (``synchronous=FULL``).
    """
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        if url.rstrip("/") in ("sqlite+aiosqlite:", "sqlite+aiosqlite://") or ":memory:" in url:
            # One connection shared by every session: an in-memory database lives in its connection.
            kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(power_safe))
    return engine


def create_sync_engine(url: str, *, power_safe: bool = False) -> Engine | None:
    """A synchronous engine on the same database as the async ``url``, for the store transaction.

    The store path runs its whole transaction in one worker thread (storage/instance_writes.py) instead of one
    event-loop hop per statement (aiosqlite's thread, or asyncpg through SQLAlchemy's greenlet bridge). On a
    SQLite file that is pysqlite; on PostgreSQL psycopg 3 (reads stay on asyncpg). None for an in-memory
    database (it lives in the async engine's one connection).
    """
    if url.startswith("postgresql+asyncpg://"):
        # Same server and credentials; psycopg is a thread-safe blocking driver with libpq's binary protocol.
        return sa_create_engine(
            make_url(url).set(drivername="postgresql+psycopg"),
            # Stores run in worker threads: a few connections per process, more while a burst lasts.
            pool_size=4,
            max_overflow=4,
            pool_pre_ping=True,
        )
    if not url.startswith("sqlite+aiosqlite:///") or ":memory:" in url:
        return None
    engine = sa_create_engine(
        "sqlite:///" + url.removeprefix("sqlite+aiosqlite:///"),
        connect_args={"check_same_thread": False, "timeout": 30},
        # The store transaction and QIDO/metadata reads run on it from worker threads.
        pool_size=4,
        max_overflow=4,
    )
    event.listen(engine, "connect", _sqlite_pragmas(power_safe))
    return engine


def _sqlite_pragmas(power_safe: bool) -> Callable[[Any, Any], None]:
    # WAL with synchronous=NORMAL never loses consistency, and a crash of the process loses nothing committed;
    # only a power loss can drop the last commits. FULL syncs the WAL at each commit so those survive too.
    synchronous = "FULL" if power_safe else "NORMAL"

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return on_connect


def session_factory(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


# Alembic is imported where it is used: a worker of ``serve --workers N`` never migrates (the supervisor did), and
# its ~90 ms of imports were on every worker's path to healthy.
def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _head_revision() -> str | None:
    """The newest shipped migration (read from the revision files once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
    # Already at head (every start but the first): done, without loading Alembic's environment and every
    # revision file again (~30 ms per start, which the test suite pays at each of its app starts).
    if MigrationContext.configure(connection).get_current_revision() == _head_revision():
        return
    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Apply the shipped Alembic migrations (``alembic upgrade head``) in one transaction."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
