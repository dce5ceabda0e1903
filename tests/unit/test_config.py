"""Settings precedence: defaults < environment (legacy names too) < CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicom_emulator.cli import _parser, settings_from_args
from dicom_emulator.config import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.host, settings.port, settings.data_dir, settings.loose) == (
        "127.0.0.1", 8080, Path("dicom-data"), False,
    )  # fmt: skip
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.resolved_database_url.endswith("dicom-data/index.sqlite")


def test_environment_and_legacy_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@db/dicom")
    monkeypatch.setenv("DICOM_STORAGE_DIR", "/srv/dicom")
    monkeypatch.setenv("DICOM_EMULATOR_PORT", "9000")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql+asyncpg://u:secret@db/dicom"
    assert settings.data_dir == Path("/srv/dicom")
    assert settings.port == 9000
    assert settings.describe()["database"] == "postgresql+asyncpg://u:***@db/dicom"


def test_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_EMULATOR_PORT", "9000")
    monkeypatch.setenv("DICOM_EMULATOR_DATA_DIR", "/env/dir")
    args = _parser().parse_args(["serve", "--port", "9100", "--loose", "--in-memory", "--silent"])
    settings = settings_from_args(args)
    assert settings.port == 9100
    assert settings.data_dir == Path("/env/dir")
    assert settings.loose and settings.in_memory
    assert (settings.log_level, settings.access_log) == ("warning", False)
    assert settings.resolved_database_url == "sqlite+aiosqlite://"


def test_public_url_flag_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    args = _parser().parse_args(["serve", "--public-url", "https://dicom.example.org/emulator/"])
    assert settings_from_args(args).public_url == "https://dicom.example.org/emulator"
    monkeypatch.setenv("DICOM_EMULATOR_PUBLIC_URL", "http://localhost:18080")
    assert Settings().public_url == "http://localhost:18080"
    with pytest.raises(ValueError, match="public_url"):
        Settings(public_url="dicom.example.org")


def test_limit_flags() -> None:
    args = _parser().parse_args(
        ["serve", "--max-json-body-size", "1000", "--max-header-size", "8192", "--header-timeout", "2.5",
         "--body-timeout", "3", "--keep-alive-timeout", "4", "--max-connections", "50"]
    )  # fmt: skip
    settings = settings_from_args(args)
    assert (settings.max_json_body_size, settings.max_header_size) == (1000, 8192)
    assert (settings.header_timeout, settings.body_timeout, settings.keep_alive_timeout) == (2.5, 3.0, 4)
    assert settings.resolved_max_connections == 50
    assert Settings().resolved_max_connections >= 16
