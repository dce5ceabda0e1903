"""End-to-end fixtures: one real ``dicom-emulator serve`` process per test module, on a free port."""

from __future__ import annotations

import shutil
from collections.abc import Generator, Iterator

import httpx
import pytest

from tests.e2e.server import Emulator, EmulatorStartError, running_emulator

_LOG_OFFSET = pytest.StashKey[int]()
_LOG_TAIL_LINES = 150
_LOG_LINE_CHARS = 400


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator on SQLite + files in a fresh data dir, started before and stopped after the module.

    The data dir is removed afterwards (the memory tests leave hundreds of MB in it); the process log,
    beside it, is kept.
    """
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    try:
        with running_emulator(data_dir) as running:
            yield running
    except EmulatorStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    """A plain httpx client against the running emulator (note: httpx sends ``Accept: */*`` by default)."""
    with httpx.Client(base_url=emulator.base_url, timeout=60.0) as client:
        yield client


@pytest.fixture(autouse=True)
def _emulator_log_offset(request: pytest.FixtureRequest) -> None:
    """Remember where the emulator's log stood when the test started (see the report hook below)."""
    if "emulator" in request.fixturenames:
        emulator: Emulator = request.getfixturevalue("emulator")
        request.node.stash[_LOG_OFFSET] = emulator.log_path.stat().st_size


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    """On a failure, show what the emulator logged during the test (e.g. the traceback behind a 500)."""
    report = yield
    emulator = getattr(item, "funcargs", {}).get("emulator")
    if isinstance(report, pytest.TestReport) and report.failed and isinstance(emulator, Emulator):
        offset = item.stash.get(_LOG_OFFSET, 0)
        with emulator.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        lines = [line if len(line) <= _LOG_LINE_CHARS else line[:_LOG_LINE_CHARS] + " …" for line in text.splitlines()]
        if len(lines) > _LOG_TAIL_LINES:
            lines = ["…", *lines[-_LOG_TAIL_LINES:]]
        report.sections.append(("dicom-emulator output during this test", "\n".join(lines) or "(nothing)"))
    return report
