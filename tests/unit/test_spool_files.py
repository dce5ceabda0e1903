"""SpoolFiles: new spool files made ahead of need by a background thread."""

from __future__ import annotations

import os
import time
from pathlib import Path

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
