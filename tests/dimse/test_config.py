"""The gateway's settings: ``--dimse-port`` / ``--ae-title`` over ``DICOM_EMULATOR_*`` over the defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dicom_emulator.cli import _parser, settings_from_args
from dicom_emulator.config import Settings


def test_off_by_default() -> None:
    settings = Settings()
    assert (settings.dimse_port, settings.ae_title, settings.dimse_enabled) == (None, "DICOM_EMULATOR", False)
    assert settings.describe()["dimse"] == "off"
    assert Settings(dimse_port=0).dimse_enabled is False


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_EMULATOR_DIMSE_PORT", "11112")
    monkeypatch.setenv("DICOM_EMULATOR_AE_TITLE", "FROM_ENV")
    settings = settings_from_args(_parser().parse_args(["serve"]))
    assert (settings.dimse_port, settings.ae_title) == (11112, "FROM_ENV")
    settings = settings_from_args(_parser().parse_args(["serve", "--dimse-port", "104", "--ae-title", "PACS"]))
    assert (settings.dimse_port, settings.ae_title) == (104, "PACS")
    assert settings.describe()["dimse"] == "PACS@127.0.0.1:104"


@pytest.mark.parametrize("title", ["", "   ", "SEVENTEEN_CHARS_X", "BACK\\SLASH", "TAB\tX"])
def test_invalid_ae_title(title: str) -> None:
    with pytest.raises(ValidationError):
        Settings(ae_title=title)


def test_invalid_port() -> None:
    with pytest.raises(ValidationError):
        Settings(dimse_port=70000)
