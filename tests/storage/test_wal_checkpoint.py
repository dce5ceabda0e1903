"""storage/wal_checkpoint.py: the store's connections never checkpoint; a thread beside them does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dicom_emulator.storage.db import create_sync_engine
from dicom_emulator.storage.wal_checkpoint import WalCheckpointer


def test_store_connections_leave_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    engine = create_sync_engine(f"sqlite+aiosqlite:///{path}")
    assert engine is not None
    checkpointer = WalCheckpointer(path)
    # The store's connection stays open: closing the last connection would checkpoint on its own.
    with engine.connect() as store, sqlite3.connect(path, isolation_level=None) as other:
        assert store.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        store.exec_driver_sql("CREATE TABLE t (x BLOB)")
        for _ in range(300):  # ~1,200 pages of log: past the 1,000 at which SQLite would checkpoint itself
            store.exec_driver_sql("INSERT INTO t VALUES (randomblob(16000))")
            store.commit()
        assert path.stat().st_size < 100_000  # nothing copied into the database file yet: all in the log
        log_pages, copied = checkpointer.checkpoint(other)
        assert log_pages > 1000 and copied == log_pages
        assert path.stat().st_size > 4_000_000
        assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 300
    other.close()
    engine.dispose()


def test_the_thread_starts_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    sqlite3.connect(path).close()
    checkpointer = WalCheckpointer(path, interval=0.01)
    checkpointer.start()
    checkpointer.stop()
    checkpointer.stop()  # twice is fine
