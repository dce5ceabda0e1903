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


def test_cors_flag_and_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_EMULATOR_CORS_ORIGINS", "*")
    settings = settings_from_args(_parser().parse_args(["serve", "--cors-origins", "http://a:3000/, http://b "]))
    assert settings.cors_origin_list == ["http://a:3000", "http://b"]
    assert settings.describe()["cors"] == "http://a:3000,http://b"
    assert Settings(cors_origins="").cors_origin_list == []


def test_base_url_for_wildcard_hosts() -> None:
    assert Settings(host="0.0.0.0", port=9000).base_url == "http://127.0.0.1:9000"
    assert Settings(host="::", port=9000).base_url == "http://[::1]:9000"
    assert Settings(host="127.0.0.1", port=8080).base_url == "http://127.0.0.1:8080"


def test_help_names_environment_variables(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--help"])
    out = capsys.readouterr().out
    for name in ("DICOM_EMULATOR_PORT", "DICOM_EMULATOR_CORS_ORIGINS", "DICOM_EMULATOR_MAX_PART_SIZE", "DATABASE_URL"):
        assert name in out
    assert "--cors-origins" in out and "wildcards" in out


def test_partitions_and_blob_backend_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().data_partitions is False
    monkeypatch.setenv("DICOM_EMULATOR_DATA_PARTITIONS", "true")
    monkeypatch.setenv("DICOM_EMULATOR_BLOB_CONTAINER", "envcontainer")
    settings = Settings()
    assert settings.data_partitions and not settings.azure_blobs
    args = _parser().parse_args(
        ["serve", "--blob-url", "http://127.0.0.1:10000/devstoreaccount1/dicom?sv=1&sig=x", "--data-partitions"]
    )
    settings = settings_from_args(args)
    assert settings.data_partitions and settings.azure_blobs
    assert settings.blob_container == "envcontainer"
    assert settings.describe()["blobs"] == "http://127.0.0.1:10000/devstoreaccount1/dicom"  # SAS not logged
    assert settings.describe()["data_partitions"] is True
    args = _parser().parse_args(
        ["serve", "--blob-connection-string", "UseDevelopmentStorage=true", "--blob-container", "c2"]
    )
    settings = settings_from_args(args)
    assert (settings.blob_connection_string, settings.blob_container) == ("UseDevelopmentStorage=true", "c2")


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
