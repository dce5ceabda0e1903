"""Headless Chromium for browser tests: Debian's ``chromium`` driven by Playwright for Python.

Playwright's own browser download is not used (``executable_path``). Without Chromium the tests skip with a
message, unless ``DICOM_EMULATOR_TEST_REQUIRE_BROWSER=1`` (CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

REQUIRE_BROWSER = os.environ.get("DICOM_EMULATOR_TEST_REQUIRE_BROWSER") == "1"


def chromium_path() -> str | None:
    configured = os.environ.get("DICOM_EMULATOR_TEST_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(message: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(message + " — DICOM_EMULATOR_TEST_REQUIRE_BROWSER=1 forbids skipping", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), or a clear skip.

    Module-scoped on purpose: while Playwright's sync API is open, its event loop counts as running in this
    thread, and the asyncio tests of later modules (pytest-asyncio's runner) would refuse to start.
    """
    path = chromium_path()
    if path is None:
        _unavailable("Chromium not found (apt-get install chromium, or set DICOM_EMULATOR_TEST_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
