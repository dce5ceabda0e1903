"""Checkpoints of a SQLite index's write-ahead log, run beside the store instead of inside it.

By default SQLite checkpoints from within a commit: the commit that takes the log past 1,000 pages copies
them all into the database file and syncs it, while it still holds the write lock that every other store
of every process waits for. Measured here on single-instance stores (about 30 log pages each), that was a
fifth of the store transaction's time (0.42 -> 0.34 ms per commit without it). The store's connections
therefore never checkpoint (``wal_autocheckpoint=0``, storage/db.py) and a thread of each serving process
runs a PASSIVE checkpoint every few hundred milliseconds on a connection of its own: it copies what no
reader still needs, never blocks a writer or a reader, and the sqlite3 module lets other threads run while
it works. A checkpoint already running in another process makes this one a no-op.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_SECONDS = 0.2


class WalCheckpointer:
    """A daemon thread that checkpoints the write-ahead log of the SQLite file at ``path``."""

    def __init__(self, path: Path, *, interval: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        self._path = path
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            # A checkpoint in progress finishes on its own (the thread is a daemon): shutdown never waits long.
            self._thread.join(timeout=1)

    @staticmethod
    def checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
        """One PASSIVE checkpoint: copy every log page no reader still needs into the database file.

        Returns the pages in the log and how many of them are now in the database file (-1, -1 when busy).
        """
        busy, log_pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return (-1, -1) if busy else (int(log_pages), int(copied))

    def _run(self) -> None:
        # No busy wait: a checkpoint that cannot get a lock at once is simply retried at the next round.
        conn = sqlite3.connect(self._path, timeout=0, check_same_thread=False, isolation_level=None)
        try:
            while not self._stopped.wait(self._interval):
                try:
                    self.checkpoint(conn)
                except sqlite3.Error:
                    # A locked or busy database only defers this round; the log keeps every commit meanwhile.
                    logger.debug("WAL checkpoint deferred", exc_info=True)
        finally:
            conn.close()
