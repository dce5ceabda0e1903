"""New files in a process's spool directory, made ahead of need by a background thread.

Every STOW part and C-STORE lands in a new spool file first. Creating a file allocates an inode, which on
some disks costs up to half a millisecond (seen on the benchmark machine's ext4: 0.1-0.7 ms per create in a
new directory, against 0.02 ms elsewhere); on the event loop that is time no request makes progress. So a
small reserve of empty files is kept ready, refilled by one thread (the create releases the GIL), and a
request only renames one (a rename allocates nothing).

The directory must belong to this process alone (storage/sweep.py's SpoolDirectory, or a temporary
directory): names come from a counter, not from random draws. Reserve files start with a dot, so that a
check for leftover parts (``not name.startswith(".")``) tells them apart; they are removed by :meth:`close`
and, after a crash, with the whole directory by the start-up sweep.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from pathlib import Path

# Files kept ready. A STOW request of many parts takes more than this; the rest are made inline.
_RESERVE = 8
_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC


class SpoolFiles:
    """Hands out new, empty, exclusively created files in ``directory``."""

    def __init__(self, directory: Path, *, reserve: int = _RESERVE) -> None:
        self.directory = directory
        self._reserve = reserve
        self._counter = itertools.count()
        self._ready: deque[tuple[Path, int]] = deque()  # appends and pops are atomic: no lock needed
        self._wanted = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def new_name(self, prefix: str, suffix: str = ".tmp") -> Path:
        """A fresh path in the directory, for a file the caller creates or renames into place."""
        return self.directory / f"{prefix}{next(self._counter)}{suffix}"

    def new_file(self, prefix: str = "part-", suffix: str = ".tmp") -> tuple[Path, int]:
        """A new empty file (path, write-only descriptor the caller closes), named ``{prefix}N{suffix}``."""
        path = self.new_name(prefix, suffix)
        try:
            ready, fd = self._ready.popleft()
        except IndexError:
            fd = os.open(path, _FLAGS, 0o600)
        else:
            try:
                os.rename(ready, path)
            except BaseException:
                os.close(fd)
                ready.unlink(missing_ok=True)
                raise
        self._refill()
        return path, fd

    def _refill(self) -> None:
        if self._closed or len(self._ready) >= self._reserve // 2:
            return
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="spool-files", daemon=True)
                    self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            while not self._closed and len(self._ready) < self._reserve:
                path = self.new_name(".ready-")
                try:
                    fd = os.open(path, _FLAGS, 0o600)
                except OSError:
                    break  # disk full, directory gone: new_file creates inline and reports the error itself
                self._ready.append((path, fd))
            if self._closed:
                self._drain()
                return

    def _drain(self) -> None:
        while self._ready:
            try:
                path, fd = self._ready.popleft()
            except IndexError:
                return
            os.close(fd)
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop refilling and remove the files still in reserve."""
        self._closed = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._drain()
