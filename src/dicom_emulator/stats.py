"""``dicom-emulator stats``: what a store holds (row counts, file bytes), read-only.

It opens the data directory or database ``serve`` uses without starting the app (no migration, no job
runner, no sweep), so it can run beside a running emulator.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from dicom_emulator.config import Settings
from dicom_emulator.startup import StartupError, explain_storage_error, where
from dicom_emulator.storage.db import create_engine, session_factory
from dicom_emulator.storage.stats_store import store_counts


def _blob_usage(blob_dir: Path) -> tuple[int, int]:
    """Files and bytes under the blob directory."""
    files = size = 0
    for root, _dirs, names in os.walk(blob_dir):
        for name in names:
            try:
                size += (Path(root) / name).stat().st_size
            except OSError:  # deleted meanwhile by a running emulator
                continue
            files += 1
    return files, size


async def collect(settings: Settings) -> dict[str, Any]:
    engine = create_engine(settings.resolved_database_url, pool_size=1)
    try:
        counts = await store_counts(session_factory(engine))
    finally:
        await engine.dispose()
    files, size = _blob_usage(settings.blob_dir)
    return {"database": settings.describe()["database"], **counts, "blob files": files, "blob bytes": size}


def stats_command(settings: Settings, *, as_json: bool) -> int:
    if settings.in_memory:
        raise StartupError("stats reads a persistent store: --data-dir or --database-url, not --in-memory")
    if not settings.database_url and not (settings.data_dir / "index.sqlite").is_file():
        raise StartupError(f"no store in {settings.data_dir.resolve()} (no index.sqlite): set {where('data_dir')}")
    try:
        result = asyncio.run(collect(settings))
    except Exception as exc:
        message = explain_storage_error(exc, settings)
        if message is None:
            raise
        raise StartupError(message) from exc
    if as_json:
        print(json.dumps(result))  # noqa: T201 - the command's output
        return 0
    table = Table(title="dicom-emulator stats", caption=str(result["database"]))
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in result.items():
        if label != "database":
            table.add_row(label, f"{value:,}")
    Console().print(table)
    return 0
