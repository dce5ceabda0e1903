"""``dicom-emulator import PATH…``: load folders, zip files and files of DICOM instances into a store.

Every instance goes through the same ``StoreService`` as STOW v2 and C-STORE (validation, index, change
feed), against the data directory or database ``serve`` uses; a running ``serve`` on the same store may
stay up (several processes share one store safely, see supervisor.py). Importing again is resuming: an
instance already stored is answered 45070 by the store and counted as "already stored", not stored twice.

Sources are copied to spool files in batches of ``BATCH`` and stored by ``jobs`` concurrent tasks (parsing
runs in worker threads); a rich progress bar counts files, and a summary table lists what was stored,
skipped and failed, with the reasons.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dicom_emulator.config import Settings
from dicom_emulator.dicom import status
from dicom_emulator.services.store import StoreRequest
from dicom_emulator.services.store_outcome import StoreOutcome
from dicom_emulator.spool_files import SpoolFiles
from dicom_emulator.startup import StartupError, prepare

BATCH = 20  # instances per store_many call: one index transaction each (services/store.py)
_PREAMBLE = 128
_MAGIC = b"DICM"
_REASONS = {
    status.VALIDATION_FAILURE: "validation failed (43264)",
    status.MISMATCH_STUDY_INSTANCE_UID: "study UID mismatch (43265)",
    status.PROCESSING_FAILURE: "processing failure (272)",
    status.PENDING_SOP_INSTANCE: "being stored by another request (45071)",
}


@dataclass(frozen=True)
class Source:
    """One file to import: a path, or a member of a zip file."""

    name: str  # what the summary shows
    path: Path
    member: str | None = None

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        if self.member is None:
            with self.path.open("rb") as file:
                yield file
            return
        with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as member:
            yield member


@dataclass
class ImportSummary:
    stored: int = 0
    duplicates: int = 0
    not_dicom: int = 0
    failed: int = 0
    # reason -> (count, first file)
    reasons: dict[str, tuple[int, str]] = field(default_factory=dict)
    warnings: Counter[str] = field(default_factory=Counter)

    def fail(self, source: Source, reason: str) -> None:
        self.failed += 1
        count, first = self.reasons.get(reason, (0, source.name))
        self.reasons[reason] = (count + 1, first)

    def add(self, source: Source, outcome: StoreOutcome) -> None:
        if outcome.stored:
            self.stored += 1
            if outcome.warning_reason is not None:
                self.warnings["stored with a warning (attributes dropped, see STOW v2)"] += 1
        elif outcome.failure_code == status.SOP_INSTANCE_ALREADY_EXISTS:
            self.duplicates += 1
        else:
            code = outcome.failure_code or status.PROCESSING_FAILURE
            reason = _REASONS.get(code, f"failure {code}")
            if outcome.comments:
                reason += ": " + "; ".join(outcome.comments)
            self.fail(source, reason)


def find_sources(paths: Iterable[Path]) -> Iterator[Source]:
    """Files under the paths given (folders recursively, sorted), zip files expanded to their members."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    yield from _expand(Path(root) / name)
        else:
            yield from _expand(path)


def _expand(path: Path) -> Iterator[Source]:
    if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield Source(f"{path}:{info.filename}", path, info.filename)
    else:
        yield Source(str(path), path)


def _spool(source: Source, spool: SpoolFiles) -> Path | None:
    """Copy a source to a spool file (the store consumes it); None when it is not a DICOM Part 10 file."""
    with source.open() as src:
        head = src.read(_PREAMBLE + len(_MAGIC))
        if head[_PREAMBLE:] != _MAGIC:
            return None
        path, fd = spool.new_file("import-", ".dcm")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(head)
                shutil.copyfileobj(src, out, 1024 * 1024)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return path


async def run_import(
    settings: Settings, paths: list[Path], *, jobs: int = 4, console: Console | None = None
) -> ImportSummary:
    """Import ``paths`` into the store of ``settings``; the summary of what happened."""
    from dicom_emulator.app import create_app

    console = console or Console()
    sources = list(find_sources(paths))
    summary = ImportSummary()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        queue: asyncio.Queue[list[Source]] = asyncio.Queue()
        for start in range(0, len(sources), BATCH):
            queue.put_nowait(sources[start : start + BATCH])
        columns = (
            TextColumn("[bold]importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("import", total=len(sources), counts="")

            async def worker() -> None:
                while not queue.empty():
                    batch = queue.get_nowait()
                    spooled: list[tuple[Source, Path]] = []
                    for source in batch:
                        try:
                            path = await asyncio.to_thread(_spool, source, runtime.spool_files)
                        except (OSError, zipfile.BadZipFile) as exc:
                            summary.fail(source, f"cannot read: {exc}")
                            continue
                        if path is None:
                            summary.not_dicom += 1
                        else:
                            spooled.append((source, path))
                    if spooled:
                        outcomes = await runtime.store.store_many([p for _, p in spooled], StoreRequest(api_major=2))
                        for (source, _), outcome in zip(spooled, outcomes, strict=True):
                            summary.add(source, outcome)
                    progress.update(
                        task,
                        advance=len(batch),
                        counts=f"stored {summary.stored}, already {summary.duplicates}, failed {summary.failed}",
                    )

            await asyncio.gather(*(worker() for _ in range(max(1, jobs))))
    return summary


def summary_table(summary: ImportSummary) -> Table:
    table = Table(title="dicom-emulator import")
    table.add_column("result")
    table.add_column("files", justify="right")
    table.add_column("first file", overflow="fold")
    table.add_row("stored", str(summary.stored), "")
    table.add_row("already stored (skipped)", str(summary.duplicates), "")
    table.add_row("not DICOM (skipped)", str(summary.not_dicom), "")
    table.add_row("failed", str(summary.failed), "", style="red" if summary.failed else None)
    for reason, (count, first) in sorted(summary.reasons.items(), key=lambda item: -item[1][0]):
        table.add_row(f"  {reason}", str(count), first, style="red")
    for warning, count in summary.warnings.items():
        table.add_row(f"  {warning}", str(count), "", style="yellow")
    return table


def import_command(settings: Settings, paths: list[Path], *, jobs: int, quiet: bool) -> int:
    """The ``import`` command: 0 when nothing failed, 1 otherwise (a missing path or store: one line)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise StartupError(f"no such file or directory: {', '.join(missing)}")
    if settings.in_memory:
        raise StartupError("import needs a persistent store: --data-dir or --database-url, not --in-memory")
    prepare(settings)
    settings = settings.model_copy(update={"migrate_on_start": False, "dimse_port": None})
    console = Console(quiet=quiet)
    summary = asyncio.run(run_import(settings, paths, jobs=jobs, console=console))
    Console().print(summary_table(summary))
    return 1 if summary.failed else 0
