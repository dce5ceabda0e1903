"""``--durability``: what an acknowledged store survives (README, Ingest and durability)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from dicom_emulator.cli import _parser, settings_from_args
from dicom_emulator.config import Settings
from dicom_emulator.storage.blobs import FileSystemBlobStore
from dicom_emulator.storage.db import create_sync_engine


def test_default_is_consistent_and_flag_and_environment_choose_another_level(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.durability, settings.sync_files, settings.sync_commits) == ("consistent", True, False)
    assert settings.describe()["durability"] == "consistent"
    process = Settings(durability="process")
    assert (process.sync_files, process.sync_commits) == (False, False)
    monkeypatch.setenv("DICOM_EMULATOR_DURABILITY", "power")
    assert (Settings().sync_files, Settings().sync_commits) == (True, True)
    monkeypatch.delenv("DICOM_EMULATOR_DURABILITY")
    args = _parser().parse_args(["serve", "--durability", "power"])
    assert settings_from_args(args).durability == "power"
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--durability", "disk"])


@pytest.mark.parametrize(("sync", "expected"), [(False, 0), (True, 1)])
def test_blob_files_are_synced_only_for_power(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: bool, expected: int
) -> None:
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])
    store = FileSystemBlobStore(tmp_path / "blobs", sync=sync)
    source = tmp_path / "part.dcm"
    source.write_bytes(b"DICM")
    store.put_file_blocking("1/2/3/4.dcm", source)
    assert len(calls) == expected
    assert (tmp_path / "blobs/1/2/3/4.dcm").read_bytes() == b"DICM"
    assert not source.exists()


@pytest.mark.parametrize(("power_safe", "level"), [(False, 1), (True, 2)])  # PRAGMA synchronous: 1 NORMAL, 2 FULL
def test_sqlite_commits_are_synced_only_for_power(tmp_path: Path, power_safe: bool, level: int) -> None:
    engine = create_sync_engine(f"sqlite+aiosqlite:///{tmp_path}/index.sqlite", power_safe=power_safe)
    assert engine is not None
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == level
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()
