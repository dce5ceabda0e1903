"""Store one instance: parse, validate, write the blob, then index it with its feed entry.

Shared by STOW-RS and (later) DIMSE C-STORE, so both give the same validation, index and change feed.
The order follows architecture invariant 1: the spooled part is parsed and validated first; the blob is
moved into place under a fresh key; then one transaction makes the instance visible. A failure
after the blob write deletes the blob, so nothing is ever half-stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from dicom_emulator import json_text
from dicom_emulator.dicom import status
from dicom_emulator.dicom.frames import frames_json_for
from dicom_emulator.dicom.identifiers import is_valid_uid
from dicom_emulator.dicom.indexing import memo_first_value, number_of_frames, series_index_values, study_index_values
from dicom_emulator.dicom.json_model import ViewMemo, dataset_to_json
from dicom_emulator.dicom.reading import InvalidDicomInstanceError, ParsedInstance, read_open_instance
from dicom_emulator.dicom.tags import CORE_QUERY_TAGS
from dicom_emulator.dicom.validation import validate_for_store
from dicom_emulator.errors import InstanceAlreadyExistsError
from dicom_emulator.services.store_outcome import StoreOutcome
from dicom_emulator.storage import lone_store_pg
from dicom_emulator.storage.blobs import BlobStore, FileSystemBlobStore
from dicom_emulator.storage.index import AddResult, NewInstance, SqlIndex
from dicom_emulator.storage.tags_store import SqlTagStore
from dicom_emulator.storage.writeback import start_writeback

logger = logging.getLogger(__name__)

_CORE_TAGS = frozenset(t.tag for t in CORE_QUERY_TAGS)
_NO_TAGS: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """Per-request options of a store (STOW route, PUT upsert, C-STORE)."""

    api_major: int = 2
    route_study_uid: str | None = None
    replace: bool = False
    expires_at: datetime | None = None
    partition_key: int = 1


# Instances indexed per transaction: a STOW request of any size commits in batches of this many, so a
# huge request neither holds the write lock for long nor keeps many prepared instances in memory.
COMMIT_BATCH = 50


def _validation_tags(request: StoreRequest) -> frozenset[int] | None:
    """The extended query tags a store validates against: none for v2, None (to be read) for v1.

    Only v1 validates their values (azure-behaviour §7.5; validate_for_store), so a v2 store never reads them before
    its transaction (on PostgreSQL that read was a round trip per request).
    """
    return _NO_TAGS if request.api_major >= 2 else None


@dataclass(slots=True)
class _Prepared:
    parsed: ParsedInstance | None
    outcome: StoreOutcome
    metadata_json: str = ""
    metadata: dict[str, Any] | None = None
    frames_json: str | None = None
    # The element views validation and the metadata JSON built; the index values are read from them too.
    memo: ViewMemo | None = None


def _open_final(path: Path) -> BinaryIO:
    """The spooled file, open for reading, once its bytes are what the blob store keeps.

    Azure replaces the 128-byte preamble of stored files with zeros (azure-behaviour §1.4): done here, in
    place. A file sent without preamble but with its file meta group (0002) gets one, as Azure's writer
    always produces a Part 10 file; clients such as pydicom's dcmread expect it on retrieve.
    One open serves the preamble, the write-out, the header parse and the frame offsets (each of them
    opened the file itself before: three more opens per instance).
    """
    fh: BinaryIO = open(path, "r+b")
    try:
        head = fh.read(132)
        if len(head) == 132 and head[128:132] == b"DICM":
            fh.seek(0)
            fh.write(b"\0" * 128)
            fh.flush()
        elif head[:2] == b"\x02\x00":
            fh.close()
            _add_preamble(path)
            fh = open(path, "rb")
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    return fh


def _add_preamble(path: Path) -> None:
    tmp = path.with_suffix(".preamble")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        dst.write(b"\0" * 128 + b"DICM")
        shutil.copyfileobj(src, dst, 1024 * 1024)
    os.replace(tmp, path)


def _prepare(
    path: Path,
    request: StoreRequest,
    extended_tags: Collection[int],
    *,
    on_final: Callable[[int], None] | None = None,
) -> _Prepared:
    """CPU-bound part, run in a worker thread: parse the header, validate, build metadata JSON.

    ``on_final`` is called with the open file's descriptor as soon as its bytes are final (the write-out starts).
    """
    # First, so every offset read below (pixel data, frames) is an offset in the stored file.
    with _open_final(path) as fh:
        if on_final is not None:
            on_final(fh.fileno())
        return _prepare_open(fh, request, extended_tags)


def _prepare_open(fh: BinaryIO, request: StoreRequest, extended_tags: Collection[int]) -> _Prepared:
    parsed = read_open_instance(fh)
    ds = parsed.dataset
    memo = ViewMemo()  # validation and the metadata JSON decode each element once between them
    # The identity through the same views (pydicom's own conversion of four elements cost ~10 % of a prepare).
    first = memo_first_value(ds, memo)
    outcome = StoreOutcome(
        sop_class_uid=first("SOPClassUID"),
        sop_uid=first("SOPInstanceUID"),
        study_uid=first("StudyInstanceUID"),
        series_uid=first("SeriesInstanceUID"),
    )
    result = validate_for_store(
        ds,
        api_major=request.api_major,
        is_implicit_vr=parsed.is_implicit_vr,
        route_study_uid=request.route_study_uid,
        indexed_tags=_CORE_TAGS | frozenset(extended_tags),
        memo=memo,
    )
    outcome.multiple_values_warning = result.multiple_values_in_indexed_tag
    if result.failed:
        outcome.failure_code = result.failure_code or status.VALIDATION_FAILURE
        outcome.comments = list(result.failure_comments)
        outcome.validation_failure = True
        return _Prepared(parsed, outcome)
    # Validation should have caught these; never build a blob path from an unchecked UID.
    if not all(is_valid_uid(u) for u in (outcome.study_uid, outcome.series_uid, outcome.sop_uid)):
        outcome.failure_code = status.VALIDATION_FAILURE
        return _Prepared(parsed, outcome)
    outcome.warning_reason = result.warning_reason
    outcome.comments = list(result.warning_comments)
    exclude = result.invalid_paths if request.api_major >= 2 else ()
    metadata = dataset_to_json(ds, exclude=exclude, memo=memo)
    # Frame byte ranges, so frame retrieval never parses the file (architecture invariant 4, §3.4).
    frames_json = frames_json_for(fh, parsed, memo)
    return _Prepared(parsed, outcome, json_text.dumps(metadata), metadata, frames_json, memo)


class StoreService:
    """Stores spooled instance files into the blob store and the index."""

    def __init__(self, index: SqlIndex, blobs: BlobStore, tags: SqlTagStore) -> None:
        self.index = index
        self.blobs = blobs
        self.tags = tags

    async def extended_tags(self) -> frozenset[int]:
        """The extended query tags new instances are validated against (v1 fails invalid values).

        A request loads them once (see store_many); indexing reads them
        again inside each store transaction, so a tag added meanwhile is never missed by the index.
        """
        return frozenset(t.definition.tag for t in await self.tags.active())

    async def store(self, path: Path, request: StoreRequest) -> StoreOutcome:
        """Store the DICOM file at ``path`` (consumed: moved into the blob store or deleted)."""
        (outcome,) = await self.store_many([path], request)
        return outcome

    async def store_many(self, paths: Sequence[Path], request: StoreRequest) -> list[StoreOutcome]:
        """Store the DICOM files at ``paths`` (all consumed), one outcome per file in order.

        Each file is parsed, validated and moved into the blob store on its own; the index rows of up to
        ``COMMIT_BATCH`` of them are then committed in one transaction (one commit per STOW request in
        practice), with per-instance outcomes kept (azure-behaviour §2.3).
        """
        if len(paths) == 1 and self.stores_on_loop:
            return [await self._store_one_on_loop(paths[0], request)]
        if self.stores_blocking:
            # One worker-thread hop for the whole request (SQLite file): see _store_many_blocking.
            return await asyncio.to_thread(self._store_many_blocking, paths, request, asyncio.get_running_loop())
        outcomes: list[StoreOutcome | None] = [None] * len(paths)
        pending: list[tuple[int, StoreOutcome, NewInstance]] = []
        try:
            # Extended query tags in force now: v1 fails instances whose values are invalid (azure-behaviour §7.5).
            # They are read once per request: in the first part's worker thread where the tag store can read
            # without the event loop (SQLite file), else here.
            extended = _validation_tags(request)
            if extended is None and not self.tags.reads_blocking:
                extended = await self.extended_tags()
            for position, path in enumerate(paths):
                outcome, new, extended = await self._prepare(path, request, extended)
                if new is None:
                    outcomes[position] = outcome
                    path.unlink(missing_ok=True)
                    continue
                pending.append((position, outcome, new))
                if len(pending) >= COMMIT_BATCH:
                    batch, pending = pending, []
                    await self._commit(batch, outcomes, request)
            if pending:
                batch, pending = pending, []
                await self._commit(batch, outcomes, request)
        except BaseException:
            # Cancelled or crashed between writing files and committing them: none is visible, drop them.
            for _, _, new in pending:
                await asyncio.shield(self.blobs.delete(new.blob_key))
            raise
        finally:
            for path in paths:
                path.unlink(missing_ok=True)
        assert all(o is not None for o in outcomes)
        return [o for o in outcomes if o is not None]

    async def _prepare(
        self, path: Path, request: StoreRequest, extended: frozenset[int] | None
    ) -> tuple[StoreOutcome, NewInstance | None, frozenset[int] | None]:
        """Parse, validate and, when the instance is storable, move its file into the blob store.

        One worker-thread hop for the whole CPU- and disk-bound part; a NewInstance comes back only when
        the file is in place (its index rows are still to be committed).
        """
        return await asyncio.to_thread(self._prepare_checked, path, request, extended)

    def _prepare_checked(
        self,
        path: Path,
        request: StoreRequest,
        extended: frozenset[int] | None,
        synced: list[Future[None]] | None = None,
    ) -> tuple[StoreOutcome, NewInstance | None, frozenset[int] | None]:
        try:
            return self._prepare_and_place(path, request, extended, synced)
        except InvalidDicomInstanceError as exc:
            logger.info("rejected unreadable part: %s", exc.message)
            # Unreadable part: 43264 with no UIDs and no FailedAttributesSequence (azure-behaviour §2.3 step 1).
            return StoreOutcome(failure_code=status.VALIDATION_FAILURE), None, extended
        except Exception:
            # Bad input must never become a 5xx: a part pydicom chokes on is an unreadable part.
            logger.warning("rejected a part that failed to parse", exc_info=True)
            return StoreOutcome(failure_code=status.VALIDATION_FAILURE), None, extended

    def _prepare_and_place(
        self,
        path: Path,
        request: StoreRequest,
        extended: frozenset[int] | None,
        synced: list[Future[None]] | None = None,
    ) -> tuple[StoreOutcome, NewInstance | None, frozenset[int]]:
        """Parse, validate and move the file in; blocking.

        ``synced`` (the in-thread path, files on disk to sync): the file's fdatasync starts in the sync lane as
        soon as its bytes are final (after the preamble is zeroed), runs while the header is parsed and
        validated, and its future is appended here: the caller waits for it before the index row commits.
        """
        if extended is None:
            extended = _validation_tags(request)
        if extended is None:
            extended = frozenset(t.definition.tag for t in self.tags.active_blocking())
        early_sync = synced is not None and isinstance(self.blobs, FileSystemBlobStore) and self.blobs.sync

        def sync_early(fd: int) -> None:
            assert synced is not None
            # Write-out starts now, from this thread: the lane's fdatasync then waits only for the rest.
            start_writeback(fd)
            synced.append(_sync_lane().submit(_fdatasync, os.dup(fd)))

        prepared = _prepare(path, request, extended, on_final=sync_early if early_sync else None)
        if not prepared.outcome.stored:
            return prepared.outcome, None, extended
        new = _new_instance(prepared, request)
        try:
            if early_sync:
                assert isinstance(self.blobs, FileSystemBlobStore)
                self.blobs.move_in_blocking(new.blob_key, path)
            else:
                self.blobs.put_file_blocking(new.blob_key, path)
        except Exception:
            # Nothing is at the key (the rename is the last step); the spooled file is removed by the caller.
            logger.exception("writing the file of %s failed", prepared.outcome.sop_uid)
            return _failed(prepared.outcome, status.PROCESSING_FAILURE), None, extended
        return prepared.outcome, new, extended

    async def _commit(
        self,
        batch: list[tuple[int, StoreOutcome, NewInstance]],
        outcomes: list[StoreOutcome | None],
        request: StoreRequest,
    ) -> None:
        """Index ``batch`` in one transaction; files of instances that did not become visible are deleted."""
        try:
            results = await self.index.add_instances([new for _, _, new in batch], replace=request.replace)
        except BaseException:
            for _, _, new in batch:
                await asyncio.shield(self.blobs.delete(new.blob_key))
            raise
        for (position, outcome, new), result in zip(batch, results, strict=True):
            outcomes[position], unused = _settle(outcome, new, result)
            for key in unused:
                await self.blobs.delete(key)

    @property
    def stores_blocking(self) -> bool:
        """Whether :meth:`store_blocking` works here: files on disk and an index on a SQLite file."""
        return isinstance(self.blobs, FileSystemBlobStore) and self.index.writes_blocking

    @property
    def stores_on_loop(self) -> bool:
        """Whether a lone file is stored in the event loop's own thread: files on disk, and a SQLite file index
        or PostgreSQL (where a lone new instance is one statement, sent from the loop through asyncpg)."""
        return self.stores_blocking and (self.index.on_local_file or self.index.stores_lone_async)

    async def _store_one_on_loop(self, path: Path, request: StoreRequest) -> StoreOutcome:
        """:meth:`store_many` of one file in the event loop's thread (only when :attr:`stores_on_loop`).

        A lone instance is ~1.5 ms of Python and a SQLite transaction with no server to wait for; handing it to
        a worker thread and back cost two thread wake-ups and GIL hand-offs, more than the loop loses by
        running it (STOW 1 instance/request: +17 % with 4 clients, +10 % with 1; benchmarks/README.md, session
        10). The loop is given back while the file's fdatasync runs in the sync lane, and the commit moves to a
        worker thread when another writer holds the index (SqlIndex.add_instances_now: the loop never waits for a
        lock). On PostgreSQL the commit is one statement awaited through asyncpg (SqlIndex.add_lone_async), and a
        thread runs the transaction when extended query tags need it. The same steps, outcome and clean-up as
        :meth:`_store_many_blocking`.
        """
        loop = asyncio.get_running_loop()
        synced: list[Future[None]] = []
        settled: StoreOutcome | None = None
        try:
            extended = _validation_tags(request)
            if extended is None and not self.index.on_local_file:
                extended = await self.extended_tags()  # PostgreSQL: read on the loop, never blocking it
            with _PREPARE_LOCK:
                outcome, new, _ = self._prepare_checked(path, request, extended, synced)
            if new is None:
                settled = outcome
                return outcome
            try:
                for future in synced:
                    if not future.done():
                        # Shielded: a cancelled request still lets the lane finish with the file (see finally).
                        await asyncio.shield(asyncio.wrap_future(future))
                    future.result()  # the file on disk before the row naming it commits (--durability)
            except BaseException:
                self._discard(new.blob_key)
                raise
            synced.clear()
            if self.index.on_local_file:
                settled = self._commit_one(outcome, new, request, loop, now=True)
            elif lone_store_pg.eligible(new, replace=request.replace):
                # Shielded: once the statement is sent it may commit; the task settles the instance either way.
                settled = await asyncio.shield(self._commit_lone(outcome, new))
            if settled is None:
                # Shielded: once started, the thread commits or discards the instance itself, cancelled or not.
                settled = await asyncio.shield(
                    asyncio.to_thread(self._commit_one, outcome, new, request, loop, now=False)
                )
            assert settled is not None
            return settled
        finally:
            for future in synced:  # a failed or cancelled request: the lane finishes (and closes) first
                future.exception()
            if settled is None or not settled.stored:
                path.unlink(missing_ok=True)

    def _commit_one(
        self,
        outcome: StoreOutcome,
        new: NewInstance,
        request: StoreRequest,
        loop: asyncio.AbstractEventLoop,
        *,
        now: bool,
    ) -> StoreOutcome | None:
        """Index one placed instance and settle its outcome; its file is deleted unless it became visible.

        ``now``: in the event loop's thread, None when the index is held by this process (add_instances_now).
        """
        try:
            if now:
                added = self.index.add_instances_now([new], replace=request.replace)
                if added is None:
                    return None
            else:
                added = self.index.add_instances_blocking([new], replace=request.replace, loop=loop)
        except BaseException:
            self._discard(new.blob_key)
            raise
        return self._settled(outcome, new, added[0])

    async def _commit_lone(self, outcome: StoreOutcome, new: NewInstance) -> StoreOutcome | None:
        """PostgreSQL: index one placed new instance in one statement from the loop (SqlIndex.add_lone_async).

        None when extended query tags need the transactional path (nothing written, the file kept for it);
        otherwise the settled outcome, the file deleted unless the instance became visible.
        """
        try:
            added = await self.index.add_lone_async(new)
        except BaseException:
            self._discard(new.blob_key)
            raise
        if added is None:
            return None
        return self._settled(outcome, new, added)

    def _settled(self, outcome: StoreOutcome, new: NewInstance, result: AddResult) -> StoreOutcome:
        """:func:`_settle`, with the files no row names any more deleted now (in this thread)."""
        settled, unused = _settle(outcome, new, result)
        for key in unused:
            self._discard(key)
        return settled

    def _discard(self, key: str) -> None:
        assert isinstance(self.blobs, FileSystemBlobStore)
        self.blobs.delete_blocking(key)

    def store_blocking(self, path: Path, request: StoreRequest, loop: asyncio.AbstractEventLoop) -> StoreOutcome:
        """:meth:`store` run in the calling thread (a DIMSE association's); only when :attr:`stores_blocking`."""
        (outcome,) = self._store_many_blocking([path], request, loop)
        return outcome

    def _store_many_blocking(
        self, paths: Sequence[Path], request: StoreRequest, loop: asyncio.AbstractEventLoop
    ) -> list[StoreOutcome]:
        """:meth:`store_many` in one thread: the same steps, outcomes and batches, with no event-loop hops.

        Each hop (to the loop, to a worker thread and back) waits for the GIL; with several requests or
        associations per process those waits, not the work, set the pace. ``loop`` is the app's loop, told
        about each commit (event delivery).
        """
        assert isinstance(self.blobs, FileSystemBlobStore)
        blobs = self.blobs
        outcomes: list[StoreOutcome | None] = [None] * len(paths)
        pending: list[tuple[int, StoreOutcome, NewInstance]] = []
        synced: list[Future[None]] = []

        def commit() -> None:
            # Every file of the batch on disk before the rows naming them commit (--durability, README).
            for future in synced:
                future.result()
            synced.clear()
            batch = [new for _, _, new in pending]
            results = self.index.add_instances_blocking(batch, replace=request.replace, loop=loop)
            for (position, outcome, new), result in zip(pending, results, strict=True):
                outcomes[position] = self._settled(outcome, new, result)
            pending.clear()

        try:
            extended: frozenset[int] | None = None
            for position, path in enumerate(paths):
                with _PREPARE_LOCK:
                    outcome, new, extended = self._prepare_checked(path, request, extended, synced)
                if new is None:
                    outcomes[position] = outcome
                    continue
                pending.append((position, outcome, new))
                if len(pending) >= COMMIT_BATCH:
                    commit()
            if pending:
                commit()
        except BaseException:
            for _, _, new in pending:
                blobs.delete_blocking(new.blob_key)
            raise
        finally:
            for future in synced:  # a failed request: let the lane finish (and close) before the files go
                future.exception()
            for path, settled in zip(paths, outcomes, strict=True):
                # A stored file was renamed into the blob store: nothing is left at its spool path to remove.
                if settled is None or not settled.stored:
                    path.unlink(missing_ok=True)
        return [o for o in outcomes if o is not None]


def prepare_new_version(
    path: Path, request: StoreRequest, extended_tags: Collection[int]
) -> tuple[StoreOutcome, NewInstance | None]:
    """Parse and validate a rewritten file (``$bulkUpdate``) the way STOW does; the NewInstance when it is storable.

    Blocking (run it in a worker thread). The file is not moved: the caller places it under ``new.blob_key``.
    """
    prepared = _prepare(path, request, extended_tags)
    if not prepared.outcome.stored or prepared.parsed is None:
        return prepared.outcome, None
    return prepared.outcome, _new_instance(prepared, request)


# One instance prepared at a time per process (STOW requests and C-STORE associations alike). Preparing is
# Python under the GIL, so two at once never ran faster: each file operation handed the GIL to the other
# thread and back. Taken per instance, so a long request interleaves with short ones. With 4 STOW clients on
# 2 workers: median +7 % throughput over 8 alternating runs (benchmarks/README.md, session 7).
_PREPARE_LOCK = threading.Lock()


@functools.cache
def _sync_lane() -> ThreadPoolExecutor:
    """Threads that fdatasync stored files while the store thread parses (one lane per process)."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="fdatasync")


def _fdatasync(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _settle(outcome: StoreOutcome, new: NewInstance, result: AddResult) -> tuple[StoreOutcome, list[str]]:
    """The outcome of an instance the store transaction handled, and the blob keys no row names any more."""
    if result.error is None:
        # An upsert replaces every version, the original a bulk update kept included.
        return outcome, [old for old in (result.old_blob, result.old_original_blob) if old is not None]
    if isinstance(result.error, InstanceAlreadyExistsError):
        return _failed(outcome, status.SOP_INSTANCE_ALREADY_EXISTS), [new.blob_key]
    # Any other storage error fails this instance with 272 (azure-behaviour §2.3 step 7).
    logger.error("storing %s failed", outcome.sop_uid, exc_info=result.error)
    return _failed(outcome, status.PROCESSING_FAILURE), [new.blob_key]


def _failed(outcome: StoreOutcome, code: int) -> StoreOutcome:
    outcome.failure_code = code
    outcome.warning_reason = None
    outcome.comments = []
    return outcome


def _new_instance(prepared: _Prepared, request: StoreRequest) -> NewInstance:
    outcome = prepared.outcome
    assert prepared.parsed is not None
    assert outcome.study_uid and outcome.series_uid and outcome.sop_uid
    ds = prepared.parsed.dataset
    first = memo_first_value(ds, prepared.memo) if prepared.memo is not None else None
    # A fresh suffix per version: an upsert never overwrites the file the current version uses.
    suffix = uuid.uuid4().hex[:12]
    return NewInstance(
        partition_key=request.partition_key,
        study_uid=outcome.study_uid,
        series_uid=outcome.series_uid,
        sop_uid=outcome.sop_uid,
        sop_class_uid=outcome.sop_class_uid,
        transfer_syntax=prepared.parsed.transfer_syntax,
        blob_key=f"{request.partition_key}/{outcome.study_uid}/{outcome.series_uid}/{outcome.sop_uid}.{suffix}.dcm",
        size=prepared.parsed.file_size,
        number_of_frames=number_of_frames(ds, first),
        metadata_json=prepared.metadata_json,
        study_values=study_index_values(first or ds),
        series_values=series_index_values(first or ds),
        expires_at=request.expires_at,
        metadata=prepared.metadata,
        frames_json=prepared.frames_json,
    )
