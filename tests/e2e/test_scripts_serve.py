"""``scripts/serve`` on a machine whose Python is too old: one clear line, nothing half-installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_old_python_is_refused_before_any_install(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "serve", checkout / "scripts" / "serve")
    shutil.copy(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    fake = tmp_path / "python3.10"
    # A stand-in for Python 3.10: fails the version check, answers --version, and must never create a venv.
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python 3.10.12"; exit 0; fi\n'
        'if [ "$1" = "-m" ]; then touch "$(dirname "$0")/venv-attempted"; fi\nexit 1\n'
    )
    fake.chmod(0o755)
    result = subprocess.run(
        [str(checkout / "scripts" / "serve")],
        env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "scripts/serve: dicom-emulator needs Python >= 3.11, found: Python 3.10.12. "
        "Install it, or run PYTHON=python3.12 scripts/serve\n"
    )
    assert not (checkout / ".venv").exists()
    assert not (tmp_path / "venv-attempted").exists()
