"""OHIF Viewer 3.13 (the npm ``@ohif/app`` static build) against the emulator, in headless Chromium, configured
by the shipped ``ohif/app-config.js``: the study list (with its fuzzy name filter), the viewer rendering a stored
CT, and a STOW upload from the browser.

Slow (a 200 MB single-page app in a software-rendered browser) but run in CI. The build comes from
``tools/node/fetch-ohif`` (run by scripts/test); without it, or without Chromium, the tests skip with a message
unless ``DICOM_EMULATOR_TEST_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import REQUIRE_BROWSER
from tests.browser.ohif import OHIF_DIST, serve_ohif
from tests.e2e.server import Emulator, running_emulator
from tests.factories import make_dataset, multipart, new_uid, to_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ACCEPT = {"Accept": "application/dicom+json"}
RENDER_WAIT = 90.0  # seconds: a bound on waiting for the first image, not a measured assertion


def _ct_slice(study: str, series: str, number: int) -> bytes:
    """A 128x128 CT slice: a disc of +976 HU in air, so a rendered viewport is bright in the middle."""
    ds = make_dataset(
        study_uid=study, series_uid=series, rows=128, columns=128, patient_name="Ohif^Test", patient_id="OHIF-CT-1"
    )
    yy, xx = np.mgrid[0:128, 0:128]
    ds.PixelData = np.where((yy - 64) ** 2 + (xx - 64) ** 2 < 40**2, 2000, 0).astype(np.uint16).tobytes()
    ds.BitsStored, ds.HighBit = 16, 15
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.WindowCenter, ds.WindowWidth = 0, 2000
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [0.0, 0.0, 2.0 * number]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [1.0, 1.0]
    ds.SliceThickness = 2.0
    return to_bytes(ds)


@pytest.fixture(scope="module")
def ohif(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, str, str]]:
    """The emulator with one stored CT series (5 slices), and OHIF served for it: (emulator, OHIF URL, study)."""
    if not (OHIF_DIST / "index.html").is_file():
        message = f"the OHIF Viewer build is missing at {OHIF_DIST} (run tools/node/fetch-ohif)"
        if REQUIRE_BROWSER:
            pytest.fail(message + " — DICOM_EMULATOR_TEST_REQUIRE_BROWSER=1 forbids skipping", pytrace=False)
        pytest.skip(message)
    data = tmp_path_factory.mktemp("ohif") / "data"
    with running_emulator(data, "--workers", "1") as emulator:
        study, series = new_uid(), new_uid()
        body, ctype = multipart([_ct_slice(study, series, n) for n in range(1, 6)])
        r = httpx.post(f"{emulator.base_url}/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
        assert r.status_code == 200
        with serve_ohif(emulator.base_url) as url:
            yield emulator, url, study


@pytest.fixture
def failed_api_calls(page: Any, ohif: tuple[Emulator, str, str]) -> list[str]:
    """Requests to the emulator that failed (network error or status >= 400), collected during the test."""
    emulator = ohif[0]
    failures: list[str] = []
    page.on("requestfailed", lambda r: failures.append(f"{r.method} {r.url}: {r.failure}"))
    page.on(
        "response",
        lambda r: (
            failures.append(f"{r.request.method} {r.url}: {r.status}")
            if r.url.startswith(emulator.base_url) and r.status >= 400
            else None
        ),
    )
    return failures


def test_study_list_and_fuzzy_patient_filter(
    ohif: tuple[Emulator, str, str], page: Any, failed_api_calls: list[str]
) -> None:
    _, url, _ = ohif
    page.goto(url + "/")
    row = page.get_by_text("Ohif, Test")
    row.wait_for(timeout=60_000)
    body = page.inner_text("body")
    assert "15-Jan-2024" in body and "Test study" in body and "CT" in body
    # OHIF sends fuzzymatching=true (the shipped config): a name prefix finds the patient, as in Azure.
    with page.expect_response(lambda r: "/v2/studies?" in r.url and "PatientName=ohi" in r.url) as searched:
        page.locator("input").first.fill("ohi")
    assert searched.value.status == 200
    assert "fuzzymatching=true" in searched.value.url and "*" not in searched.value.url
    row.wait_for(timeout=30_000)
    assert failed_api_calls == []


def test_viewer_renders_the_stored_ct(
    ohif: tuple[Emulator, str, str], page: Any, failed_api_calls: list[str], tmp_path: Path
) -> None:
    _, url, study = ohif
    page.goto(f"{url}/viewer?StudyInstanceUIDs={study}")
    canvas = page.locator("canvas.cornerstone-canvas").first
    canvas.wait_for(timeout=60_000)
    deadline = time.monotonic() + RENDER_WAIT
    while True:  # until the viewport shows the disc: bright in the middle, dark in a corner
        box = canvas.bounding_box()
        assert box is not None
        shot = Image.open(io.BytesIO(page.screenshot(clip=box))).convert("L")
        pixels = np.asarray(shot)
        h, w = pixels.shape
        centre = int(pixels[h // 2 - 5 : h // 2 + 5, w // 2 - 5 : w // 2 + 5].mean())
        corner = int(pixels[h // 8 : h // 8 + 10, w // 8 : w // 8 + 10].mean())
        if centre > 100 and corner < 30:
            break
        assert time.monotonic() < deadline, f"no image rendered (centre {centre}, corner {corner})"
        page.wait_for_timeout(500)
    shot.save(tmp_path / "ohif-viewer.png")
    assert "Test series" in page.inner_text("body")
    assert failed_api_calls == []


def test_upload_from_the_browser_is_stored(
    ohif: tuple[Emulator, str, str], page: Any, failed_api_calls: list[str], tmp_path: Path
) -> None:
    emulator, url, _ = ohif
    ds = make_dataset(patient_id="UPLOADED-1", patient_name="Upload^Browser")
    upload = tmp_path / "upload.dcm"
    upload.write_bytes(to_bytes(ds))
    page.goto(url + "/")
    page.get_by_text("Upload", exact=True).first.click()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/v2/studies")) as stored:
        page.locator("input[type=file]").first.set_input_files(str(upload))
    assert stored.value.status == 200
    page.get_by_text("1 file completed.").wait_for(timeout=60_000)
    r = httpx.get(f"{emulator.base_url}/v2/studies", params={"PatientID": "UPLOADED-1"}, headers=ACCEPT)
    assert r.status_code == 200
    assert r.json()[0]["0020000D"]["Value"] == [ds.StudyInstanceUID]
    assert failed_api_calls == []
