"""pytest plugin (entry point ``pytest11``): a throwaway emulator for a user's test suite, in one line.

::

    def test_upload(dicom_emulator):
        dicom_emulator.client.store_instances([dataset])
        assert dicom_emulator.client.search_for_studies(search_filters={"PatientID": "123"})

``dicom_emulator`` starts the real ``dicom-emulator serve`` in a child process (in memory, on a free port,
one worker) the first time a test asks for it, and reuses it for every later test asking for the same
settings; it is stopped when the session ends. The marker ``@pytest.mark.dicom_emulator(...)`` changes the
settings of one test: ``fresh=True`` gives the test an emulator of its own (an empty store, stopped after
the test), any other keyword is a setting of ``dicom_emulator.config.Settings`` (``loose=True``,
``data_dir=tmp_path``, ``database_url=...``, and any setting added later such as ``auth``), passed to the
child as its ``DICOM_EMULATOR_*`` environment variable. ``dicom_emulator_factory(**settings)`` does the
same from code. The ini option ``dicom_emulator_settings`` (lines of ``name=value``) sets defaults for the
whole suite.

The child process keeps the emulator's global set-up (pydicom configuration, logging, its event loop) out
of the test process. It is started with ``--port 0``; the port comes from its "ready on" log line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dicomweb_client import DICOMwebClient

STARTUP_TIMEOUT = 60.0  # seconds; a cold start (imports, migrations) takes 1-3 s
_READY = re.compile(r"ready on (http://\S+) ")
_ERROR = re.compile(r"^dicom-emulator: error: .*$", re.MULTILINE)
# What the user's environment must not change in the child: the plugin passes settings explicitly.
_INHERITED_PREFIX = "DICOM_EMULATOR_"
_LEGACY_NAMES = ("DATABASE_URL", "DICOM_STORAGE_DIR")
_DEFAULTS: dict[str, Any] = {"in_memory": True, "workers": 1}


class DicomEmulatorError(RuntimeError):
    """The emulator could not start (the message holds its output)."""


@dataclass
class DicomEmulator:
    """A running emulator: its URLs, a ready ``DICOMwebClient`` and its log."""

    url: str
    """Base URL of the HTTP API, e.g. ``http://127.0.0.1:41234`` (Azure's routes live at the root)."""
    settings: dict[str, Any]
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    _client: DICOMwebClient | None = field(default=None, repr=False)

    @property
    def dicomweb_url(self) -> str:
        """The DICOMweb root of API version 2 (``{url}/v2``), what a ``DICOMwebClient`` wants."""
        return f"{self.url}/v2"

    def dicomweb_url_for(self, version: str) -> str:
        """The DICOMweb root of another API version, e.g. ``"v1"``."""
        return f"{self.url}/{version}"

    @property
    def docs_url(self) -> str:
        return f"{self.url}/emulator/docs"

    @property
    def client(self) -> DICOMwebClient:
        """A ``dicomweb_client.DICOMwebClient`` on ``dicomweb_url`` (needs the ``dicomweb-client`` package)."""
        if self._client is None:
            try:
                from dicomweb_client import DICOMwebClient
            except ImportError as exc:  # pragma: no cover - depends on the user's environment
                raise RuntimeError(
                    "dicom_emulator.client needs dicomweb-client: pip install 'dicom-emulator[pytest]'"
                ) from exc
            self._client = DICOMwebClient(self.dicomweb_url)
        return self._client

    def output(self) -> str:
        """Everything the emulator logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self._client is not None:
            self._client._session.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _env_value(value: Any) -> str:
    """A setting as pydantic-settings reads it from the environment (complex values as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value)


def resolve_settings(overrides: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of an emulator: the plugin's defaults, the suite's, then the test's.

    A persistent store (``data_dir`` or ``database_url``) turns the in-memory default off.
    """
    settings = {**_DEFAULTS, **(defaults or {}), **overrides}
    if ("data_dir" in overrides or "database_url" in overrides) and "in_memory" not in overrides:
        settings["in_memory"] = False
    from dicom_emulator.config import Settings  # pydantic only; the app is imported by the child

    unknown = sorted(set(settings) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"dicom_emulator: unknown setting(s) {', '.join(unknown)} (see dicom-emulator serve --help)")
    return settings


def start_emulator(settings: dict[str, Any], log_dir: Path, timeout: float = STARTUP_TIMEOUT) -> DicomEmulator:
    """Start ``dicom-emulator serve --port 0`` with ``settings`` and wait for its "ready on" line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIX) and k not in _LEGACY_NAMES}
    for name, value in settings.items():
        env[f"DICOM_EMULATOR_{name.upper()}"] = _env_value(value)
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "dicom_emulator", "serve", "--host", "127.0.0.1", "--port", "0"]
    log_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="dicom-emulator-", suffix=".log", dir=log_dir)
    os.close(fd)
    log_path = Path(name)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_text(errors="replace")
        ready = _READY.search(text)
        if ready:
            # With several workers every one logs it; the first one is serving already.
            return DicomEmulator(url=ready.group(1), settings=settings, log_path=log_path, process=process)
        code = process.poll()
        if code is not None or time.monotonic() > deadline:
            if code is None:
                process.kill()
                process.wait()
            error = _ERROR.search(text)
            headline = error.group(0) if error else f"dicom-emulator did not become ready (exit status {code})"
            raise DicomEmulatorError(f"{headline}\nsettings: {settings}\n--- output ({log_path}) ---\n{text[-4000:]}")
        time.sleep(0.05)


class EmulatorPool:
    """Running emulators of this session, one per distinct settings; stopped at the end of the session."""

    def __init__(self, log_dir: Path, defaults: dict[str, Any], *, fresh: bool = False) -> None:
        self.log_dir = log_dir
        self.defaults = defaults
        # Whether a test gets an emulator of its own unless its marker says otherwise (ini ``fresh=true``).
        self.fresh = fresh
        self.shared: dict[str, DicomEmulator] = {}

    def get(self, overrides: dict[str, Any]) -> DicomEmulator:
        settings = resolve_settings(overrides, self.defaults)
        key = json.dumps(settings, sort_keys=True, default=str)
        emulator = self.shared.get(key)
        if emulator is None or emulator.process.poll() is not None:
            emulator = self.shared[key] = start_emulator(settings, self.log_dir)
        return emulator

    def start_fresh(self, overrides: dict[str, Any]) -> DicomEmulator:
        return start_emulator(resolve_settings(overrides, self.defaults), self.log_dir)

    def close(self) -> None:
        for emulator in self.shared.values():
            emulator.stop()
        self.shared.clear()


def _ini_defaults(config: pytest.Config) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for line in config.getini("dicom_emulator_settings"):
        name, sep, value = str(line).partition("=")
        if not sep:
            raise pytest.UsageError(f"dicom_emulator_settings: expected name=value, got {line!r}")
        defaults[name.strip()] = value.strip()
    return defaults


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "dicom_emulator_settings",
        type="linelist",
        default=[],
        help="dicom-emulator settings for the dicom_emulator fixture, one name=value a line (e.g. loose=true)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dicom_emulator(fresh=False, **settings): settings of this test's dicom_emulator; "
        "fresh=True gives it an empty emulator of its own",
    )


@pytest.fixture(scope="session")
def dicom_emulator_pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorPool]:
    """The session's running emulators (started on first use, stopped when the session ends)."""
    defaults = _ini_defaults(request.config)
    fresh = str(defaults.pop("fresh", "false")).lower() in ("1", "true", "yes", "on")
    pool = EmulatorPool(tmp_path_factory.mktemp("dicom-emulator"), defaults, fresh=fresh)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def dicom_emulator_factory(dicom_emulator_pool: EmulatorPool) -> Iterator[Callable[..., DicomEmulator]]:
    """``factory(fresh=None, **settings)``: an emulator with these settings, shared or this test's own
    (``fresh``; None follows the ini option ``dicom_emulator_settings = fresh=true``, off by default)."""
    own: list[DicomEmulator] = []

    def factory(fresh: bool | None = None, **settings: Any) -> DicomEmulator:
        if dicom_emulator_pool.fresh if fresh is None else fresh:
            emulator = dicom_emulator_pool.start_fresh(settings)
            own.append(emulator)
            return emulator
        return dicom_emulator_pool.get(settings)

    try:
        yield factory
    finally:
        for emulator in own:
            emulator.stop()


@pytest.fixture
def dicom_emulator(
    request: pytest.FixtureRequest, dicom_emulator_factory: Callable[..., DicomEmulator]
) -> DicomEmulator:
    """A running dicom-emulator: ``.url``, ``.dicomweb_url`` (``/v2``), ``.client`` (a ``DICOMwebClient``).

    Shared by the tests with equal settings; ``@pytest.mark.dicom_emulator(fresh=True)`` for an empty one.
    """
    overrides: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("dicom_emulator"))):  # closest marker wins
        if marker.args:
            raise pytest.UsageError("@pytest.mark.dicom_emulator takes keyword arguments only")
        overrides.update(marker.kwargs)
    try:
        return dicom_emulator_factory(**overrides)
    except (DicomEmulatorError, ValueError) as exc:
        pytest.fail(str(exc), pytrace=False)
