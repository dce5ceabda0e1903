"""A lock that orders index writers across the processes sharing one SQLite file.

SQLite admits one writer at a time; a writer that finds the database locked waits in SQLite's busy
handler, which sleeps in growing steps (1, 2, 5, 10 ... 100 ms) and so adds milliseconds to a store
that needs less than one. With several worker processes on one data directory (``serve --workers``),
the hot writers (store, delete) first take an exclusive ``flock`` on a file beside the index: the
kernel wakes the next waiter the moment the lock is released, and SQLite then never sees contention
between them. Other writers (jobs, tags) still rely on the busy handler; they never wait for this lock
while holding SQLite's, so the two locks cannot deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path


class ProcessWriteLock:
    """An exclusive ``flock`` on ``path``, taken without blocking the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self) -> int:
        # flock belongs to the open file description: a descriptor inherited through fork would be shared
        # with the parent and exclude nobody, so each process opens the file itself.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        fd = self._descriptor()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiter = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
            try:
                await asyncio.shield(waiter)
            except asyncio.CancelledError:
                # The thread still gets the lock eventually: release it then, or nobody ever could.
                waiter.add_done_callback(lambda _: fcntl.flock(fd, fcntl.LOCK_UN))
                raise
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def attempt(self) -> Iterator[bool]:
        """The same lock if it is free now (True), else False at once: for the event loop's own thread, which must
        never wait for another process (that process may be waiting, through SQLite, for a transaction this
        loop has open)."""
        fd = self._descriptor()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def blocking(self) -> Iterator[None]:
        """The same lock for code already running in a worker thread (it may block)."""
        fd = self._descriptor()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
