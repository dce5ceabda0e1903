"""Leftovers of crashed processes: spool directories of dead processes and blob files without an index row.

A ``kill -9`` mid-ingest leaves spooled parts (never visible) and, between the move into ``blobs/`` and the
index commit, blob files no row points at (invisible, but they fill the disk). Neither is ever reachable, so
the start-up sweep removes them (README, Ingest and durability):

- spool: every process spools into a directory of its own under ``tmp/`` and holds an exclusive ``flock`` on
  a ``.lock`` file in it for its lifetime. The kernel drops the lock when the process dies, however it dies,
  so a directory whose lock can be taken belongs to nobody and goes (no PID reuse can fool it);
- blobs: a file under ``blobs/{partition}/{study}/`` whose key is not in the index, older than the grace
  period (a store of another live process may have moved its file but not committed yet), goes. Checked one
  study directory at a time, so memory does not grow with the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dicom_emulator.storage.models import Instance

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class SpoolDirectory:
    """This process's spool directory under ``root``, locked until :meth:`close`."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        self._fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        if self._fd >= 0:
            shutil.rmtree(self.path, ignore_errors=True)
            os.close(self._fd)
            self._fd = -1


def sweep_spool(root: Path, *, loose_file_age: float = 3600.0) -> int:
    """Remove the spool directories of dead processes (and loose files of older versions); the count removed."""
    removed = 0
    if not root.exists():
        return 0
    cutoff = time.time() - loose_file_age
    for entry in root.iterdir():
        try:
            if entry.is_dir():
                if _owner_alive(entry):
                    continue
                # Files not yet holding data (the lock, SpoolFiles reserve) are not counted.
                removed += sum(1 for p in entry.rglob("*") if p.is_file() and not p.name.startswith("."))
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.stat().st_mtime < cutoff:
                # Spool files of versions without per-process directories: only the old ones, they may be live.
                entry.unlink()
                removed += 1
        except OSError:
            logger.warning("could not sweep spool entry %s", entry, exc_info=True)
    return removed


def _owner_alive(directory: Path) -> bool:
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        # Just created by a starting process (directory before lock file), or a directory of unknown origin:
        # leave a young one alone.
        return time.time() - directory.stat().st_mtime < 60
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock if we took it
    return False


def _study_dirs(blob_root: Path) -> list[tuple[str, Path]]:
    return [
        (partition_dir.name, study_dir)
        for partition_dir in sorted(p for p in blob_root.iterdir() if p.is_dir())
        for study_dir in sorted(p for p in partition_dir.iterdir() if p.is_dir())
    ]


def _remove_unlisted(study_dir: Path, prefix: str, keys: set[str], cutoff: float) -> int:
    removed = 0
    for path in [p for p in study_dir.rglob("*") if p.is_file()]:
        if prefix + path.relative_to(study_dir).as_posix() in keys:
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


async def sweep_orphan_blobs(blob_root: Path, engine: AsyncEngine, *, grace_seconds: float) -> int:
    """Remove blob files no index row names, older than ``grace_seconds``; the count removed."""
    if not blob_root.exists():
        return 0
    cutoff = time.time() - grace_seconds
    removed = 0
    for partition, study_dir in await asyncio.to_thread(_study_dirs, blob_root):
        async with engine.connect() as conn:
            rows = await conn.execute(select(Instance.blob_key).where(Instance.study_uid == study_dir.name))
            keys = set(rows.scalars())
        removed += await asyncio.to_thread(_remove_unlisted, study_dir, f"{partition}/{study_dir.name}/", keys, cutoff)
    return removed
