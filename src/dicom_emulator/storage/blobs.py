"""Blob stores for DICOM files: filesystem (default) and memory (``--in-memory``).

Keys are built from UIDs validated before they reach here (architecture invariant 2), plus a random
suffix so a new version never overwrites the file an older, still-visible version points to.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

CHUNK_SIZE = 1024 * 1024  # bytes read per chunk when streaming a blob out


class BlobStore(Protocol):
    """The narrow interface the services use to keep instance files."""

    def put_file_blocking(self, key: str, source: Path) -> None:
        """Move the finished temp file ``source`` to ``key`` (atomic rename where possible).

        Blocking: the store path calls it from its worker thread, together with parsing the file.
        """

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream the blob (or a byte range of it) in chunks."""

    async def read_bytes(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """Read a (small) byte range fully, e.g. one frame."""

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing blob is not an error."""

    def local_path(self, key: str) -> Path | None:
        """A filesystem path for libraries that need one (pydicom), or None for memory blobs."""


class FileSystemBlobStore:
    """Blobs as files under ``root``; a spooled file is moved in with ``os.replace`` (fdatasync first if asked).

    ``sync`` (``--durability consistent``, the default, or ``power``): fdatasync before the rename. Without it a
    file is in the page cache when its index row commits, which a crash of the emulator (kill -9) cannot lose,
    but a power loss can (README, Ingest and durability).
    """

    def __init__(self, root: Path, *, sync: bool = False) -> None:
        self.root = root
        self.sync = sync
        root.mkdir(parents=True, exist_ok=True)
        self._real_root = os.path.realpath(root)

    def _path(self, key: str) -> Path:
        # Defence in depth behind UID validation: never leave the blob root. Lexical normalisation is
        # enough (keys never contain links) and, unlike resolve(), costs no system call per component.
        path = os.path.normpath(os.path.join(self._real_root, key))
        if not path.startswith(self._real_root + os.sep):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return Path(path)

    def put_file_blocking(self, key: str, source: Path) -> None:
        if self.sync:
            # The data must be on disk before the index row that points at it commits (a power loss must not
            # leave a row without its file); fdatasync skips the metadata a reader does not need.
            with open(source, "rb") as fh:
                os.fdatasync(fh.fileno())
        self.move_in_blocking(key, source)

    def move_in_blocking(self, key: str, source: Path) -> None:
        """Rename ``source`` to the key's path, with no sync (the caller synced it, or needs no sync)."""
        target = self._path(key)
        try:
            try:
                os.replace(source, target)
            except FileNotFoundError:
                # The first file of a series: its directory is made now (renaming first costs one failed rename
                # per series instead of a failed mkdir, and its exception, per file).
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
        except OSError:
            # Spool directory on another filesystem: copy to a temp name beside the target, then rename.
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".part")
            shutil.copyfile(source, tmp)
            if self.sync:  # the sync above was of the source; this copy is what the row will name
                with open(tmp, "rb") as fh:
                    os.fdatasync(fh.fileno())
            os.replace(tmp, target)
            source.unlink(missing_ok=True)

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        fh = await asyncio.to_thread(open, path, "rb")
        try:
            if offset:
                fh.seek(offset)
            remaining = length
            while remaining is None or remaining > 0:
                size = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await asyncio.to_thread(fh.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            fh.close()

    async def read_bytes(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        def _read() -> bytes:
            with open(self._path(key), "rb") as fh:
                fh.seek(offset)
                return fh.read() if length is None else fh.read(length)

        return await asyncio.to_thread(_read)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.delete_blocking, key)

    def delete_blocking(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


class MemoryBlobStore:
    """Blobs in a dict, for ``--in-memory`` and tests; nothing touches the disk after spooling."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def put_file_blocking(self, key: str, source: Path) -> None:
        self._blobs[key] = source.read_bytes()
        source.unlink(missing_ok=True)

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        data = self._blobs[key]
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, CHUNK_SIZE):
            yield data[start : min(end, start + CHUNK_SIZE)]

    async def read_bytes(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = self._blobs[key]
        return data[offset:] if length is None else data[offset : offset + length]

    async def delete(self, key: str) -> None:
        self._blobs.pop(key, None)

    def local_path(self, key: str) -> Path | None:
        return None
