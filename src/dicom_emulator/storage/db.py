"""Async engine factory and migrations at start-up, for SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
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

    ``power_safe`` (``--durability power``): SQLite syncs the WAL at every commit (``synchronous=FULL``) and
    PostgreSQL keeps its ``synchronous_commit``; otherwise PostgreSQL sessions commit without waiting for
    the WAL flush (see :data:`_PG_SYNCHRONOUS_COMMIT_OFF`).
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
        if not power_safe:
            kwargs["connect_args"] = {"server_settings": {"synchronous_commit": _PG_SYNCHRONOUS_COMMIT_OFF}}
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
        pg_engine = sa_create_engine(
            make_url(url).set(drivername="postgresql+psycopg"),
            # Stores run in worker threads: a few connections per process, more while a burst lasts.
            pool_size=4,
            max_overflow=4,
            connect_args={} if power_safe else {"options": f"-c synchronous_commit={_PG_SYNCHRONOUS_COMMIT_OFF}"},
        )
        _ping_after_idle(pg_engine)
        return pg_engine
    if not url.startswith("sqlite+aiosqlite:///") or ":memory:" in url:
        return None
    engine = sa_create_engine(
        "sqlite:///" + url.removeprefix("sqlite+aiosqlite:///"),
        connect_args={"check_same_thread": False, "timeout": 30},
        # The store transaction and QIDO/metadata reads run on it from worker threads.
        pool_size=4,
        max_overflow=4,
    )
    # The store's commits never checkpoint the log themselves: storage/wal_checkpoint.py does, beside them.
    event.listen(engine, "connect", _sqlite_pragmas(power_safe, autocheckpoint=False))
    return engine


# ``--durability consistent`` (and ``process``) on PostgreSQL: a commit returns before its WAL record is flushed,
# as SQLite's synchronous=NORMAL does. A crash of the emulator still loses nothing acknowledged (the server has
# the commit); a crash of the PostgreSQL server or a power loss can lose the last commits (up to three
# wal_writer_delay, 0.6 s by default), never consistency, and every file a surviving row names was synced
# before that row committed. Waiting for the flush cost ~0.7 ms of each store transaction's ~3.5 ms here.
_PG_SYNCHRONOUS_COMMIT_OFF = "off"

# A pooled PostgreSQL connection idle for longer than this is checked (a round trip) before it is used again.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_after_idle(engine: Engine) -> None:
    """SQLAlchemy's pre-ping, but only for a connection that sat idle in the pool.

    ``pool_pre_ping`` costs a round trip at every checkout, one of the store transaction's dozen; a connection
    in steady use does not need it. One idle for a second or more (the server may have restarted meanwhile)
    is pinged, and a dead one replaced: raising DisconnectionError in the checkout event makes the pool
    discard it and connect again (SQLAlchemy's documented pessimistic disconnect handling).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            # The dialect's own ping: it runs outside a transaction (a plain cursor would leave one open, and
            # an AUTOCOMMIT checkout could then not switch the connection over).
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure means the connection is unusable
            raise DisconnectionError from exc


# How long a SQLite connection waits for another writer before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30000


def _sqlite_pragmas(power_safe: bool, *, autocheckpoint: bool = True) -> Callable[[Any, Any], None]:
    # WAL with synchronous=NORMAL never loses consistency, and a crash of the process loses nothing committed;
    # only a power loss can drop the last commits. FULL syncs the WAL at each commit so those survive too.
    synchronous = "FULL" if power_safe else "NORMAL"

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
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
