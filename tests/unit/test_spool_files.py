"""SpoolFiles: new spool files made ahead of need by a background thread."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dicom_emulator import spool_files
from dicom_emulator.spool_files import SpoolFiles


def _ready(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(".ready-"))


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the reserve was not refilled"
        time.sleep(0.01)


def test_new_files_are_empty_distinct_and_named_by_prefix(tmp_path: Path) -> None:
    spool = SpoolFiles(tmp_path, reserve=4)
    try:
        made = [spool.new_file("part-") for _ in range(10)]  # more than the reserve: some are made inline
        paths = [path for path, _ in made]
        for path, fd in made:
            os.write(fd, path.name.encode())
            os.close(fd)
        assert len(set(paths)) == 10
        assert all(p.parent == tmp_path and p.name.startswith("part-") and p.suffix == ".tmp" for p in paths)
        assert [p.read_bytes() for p in paths] == [p.name.encode() for p in paths]
    finally:
        spool.close()


def test_the_reserve_is_refilled_in_the_background_and_removed_on_close(tmp_path: Path) -> None:
    spool = SpoolFiles(tmp_path, reserve=4)
    path, fd = spool.new_file("dimse-", ".dcm")
    os.close(fd)
    _wait_for(lambda: len(_ready(tmp_path)) == 4)
    assert all(p.stat().st_size == 0 for p in _ready(tmp_path))
    taken, fd = spool.new_file()  # a reserve file, renamed: no reserve name is handed out
    os.close(fd)
    assert not taken.name.startswith(".") and taken.exists()
    spool.close()
    assert _ready(tmp_path) == []
    assert sorted(tmp_path.iterdir()) == sorted([path, taken])


def test_new_name_reserves_a_fresh_name_without_creating_it(tmp_path: Path) -> None:
    spool = SpoolFiles(tmp_path)
    try:
        first, second = spool.new_name("dimse-", ".dcm"), spool.new_name("dimse-", ".dcm")
        assert first != second and not first.exists() and not second.exists()
    finally:
        spool.close()


def _slow_creates(monkeypatch: pytest.MonkeyPatch, *, spreadable: bool) -> None:
    # Every create counts as slow and a move may follow at once; whether the filesystem spreads is decided here.
    monkeypatch.setattr(spool_files, "_SLOW_CREATE", 0.0)
    monkeypatch.setattr(spool_files, "_MIN_SPREAD_INTERVAL", 0.0)
    monkeypatch.setattr(spool_files, "_mark_topdir", lambda directory: spreadable)


def test_slow_creates_move_new_files_to_a_subdirectory_removed_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_creates(monkeypatch, spreadable=True)
    spool = SpoolFiles(tmp_path, reserve=4)
    path, fd = spool.new_file()
    os.close(fd)
    assert path.parent == tmp_path
    made = []
    deadline = time.monotonic() + 5
    while spool.directory == tmp_path:  # the reserve thread times a window of creates, then moves on
        assert time.monotonic() < deadline, "the spool never moved to a subdirectory"
        made.append(spool.new_file())
    later, fd = spool.new_file()
    os.close(fd)
    assert later.parent.parent == tmp_path and later.parent.name.startswith(".spread-")
    assert spool.holds(later) and spool.holds(path) and not spool.holds(tmp_path.parent / "elsewhere")
    for made_path, made_fd in made:
        os.close(made_fd)
        made_path.unlink()
    later.unlink()
    spool.close()
    # Reserve files and the emptied subdirectories go; the caller's file stays.
    assert sorted(tmp_path.iterdir()) == [path]


def test_slow_creates_stay_put_where_the_filesystem_cannot_spread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_creates(monkeypatch, spreadable=False)
    spool = SpoolFiles(tmp_path, reserve=4)
    try:
        for _ in range(40):
            path, fd = spool.new_file()
            os.close(fd)
            assert path.parent == tmp_path
        assert spool.directory == tmp_path and not list(tmp_path.glob(".spread-*"))
    finally:
        spool.close()
