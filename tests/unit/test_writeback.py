"""storage/writeback.py: an early start of a file's write-out, never an error."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dicom_emulator.storage.writeback import start_writeback


def test_start_writeback_queues_the_file_and_reports_bad_descriptors(tmp_path: Path) -> None:
    path = tmp_path / "part.dcm"
    path.write_bytes(b"\0" * 300_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert start_writeback(fd) is sys.platform.startswith("linux")
        os.fdatasync(fd)  # still the call that makes it durable
    finally:
        os.close(fd)
    assert start_writeback(-1) is False
