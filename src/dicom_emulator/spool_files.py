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

Why creates turn slow, and what is done about it: ext4 without a journal will not reuse an inode freed in the
last minute, and looks at each such inode of the block group before it picks another, so after a DELETE of a
thousand files (or a test tearing down its data) every create in that group cost 0.1-0.6 ms of kernel time
(13 % of the server's CPU while four associations C-STORE after a reset, benchmarks/README.md, session 9).
A file's inode is allocated in its directory's group, and it stays there once the file is renamed into
``blobs/``, so deleted instances leave their debris in the spool directory's group. When the reserve thread
sees its creates slow down, it moves on to a new subdirectory (``.spread-N``); the spool directory is marked
``FS_TOPDIR_FL`` (``chattr +T``), which has ext4 place each new subdirectory in another, little-used group
(Orlov allocator) rather than beside its parent. Elsewhere the flag is refused or ignored, creates stay fast,
and nothing moves.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import itertools
import os
import threading
import time
from collections import deque
from pathlib import Path

# Files kept ready. A STOW request of many parts takes more than this; the rest are made inline.
_RESERVE = 8
_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
# Creates in a clean group cost ~20 us of kernel time here, behind a thousand freshly freed inodes ~500 us.
_SLOW_CREATE = 100e-6  # seconds of the thread's CPU, averaged over the last _WINDOW creates
_WINDOW = 16
_MIN_SPREAD_INTERVAL = 1.0  # seconds between two moves to a new subdirectory
# linux/fs.h
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000


def _mark_topdir(directory: Path) -> bool:
    """Set ``FS_TOPDIR_FL`` on ``directory`` (best effort): ext4 then spreads its subdirectories over groups."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        flags[0] |= _FS_TOPDIR_FL
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
    except OSError:  # not ext2/3/4 (tmpfs, overlayfs, btrfs...): nothing to spread
        return False
    finally:
        os.close(fd)
    return True


class SpoolFiles:
    """Hands out new, empty, exclusively created files in ``directory``."""

    def __init__(self, directory: Path, *, reserve: int = _RESERVE) -> None:
        self.root = directory
        # Where new files go: the root, or its newest .spread-N subdirectory (see the module's docstring).
        self.directory = directory
        self._spread = itertools.count(1)
        self._spread_at = time.monotonic()
        self._spreadable: bool | None = None  # whether the root took FS_TOPDIR_FL (tried on the first slow create)
        self._create_costs: deque[float] = deque(maxlen=_WINDOW)
        self._reserve = reserve
        self._counter = itertools.count()
        self._ready: deque[tuple[Path, int]] = deque()  # appends and pops are atomic: no lock needed
        self._wanted = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def holds(self, path: Path) -> bool:
        """Whether ``path`` is a file of this spool (in the directory or one of its subdirectories)."""
        return path.parent == self.root or path.parent.parent == self.root

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
                # The thread's CPU time, not the wall clock: waiting for the GIL after the call is not the create.
                started = time.thread_time()
                try:
                    fd = os.open(path, _FLAGS, 0o600)
                except OSError:
                    break  # disk full, directory gone: new_file creates inline and reports the error itself
                self._ready.append((path, fd))
                self._create_costs.append(time.thread_time() - started)
                self._spread_if_slow()
            if self._closed:
                self._drain()
                return

    def _spread_if_slow(self) -> None:
        costs = self._create_costs
        if len(costs) < _WINDOW or sum(costs) / len(costs) < _SLOW_CREATE:
            return
        if time.monotonic() - self._spread_at < _MIN_SPREAD_INTERVAL:
            return
        if self._spreadable is None:
            self._spreadable = _mark_topdir(self.root)
        if not self._spreadable:
            return
        directory = self.root / f".spread-{next(self._spread)}"
        try:
            directory.mkdir()
        except OSError:
            return
        previous, self.directory = self.directory, directory
        self._spread_at = time.monotonic()
        costs.clear()
        # Older ones are empty once their files have moved into the blob store; the previous one is kept a while
        # longer, as a name new_name gave out just before may not exist yet.
        self._remove_spread_directories(keep={previous, directory})

    def _remove_spread_directories(self, keep: set[Path] | frozenset[Path] = frozenset()) -> None:
        for directory in self.root.glob(".spread-*"):
            if directory not in keep:
                with contextlib.suppress(OSError):  # not empty: a file still in flight, or a leftover part
                    directory.rmdir()

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
        self._remove_spread_directories()
