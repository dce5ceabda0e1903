"""The emulator's own page (``/emulator/``) in a real headless Chromium, checked on a screenshot."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.e2e.server import Emulator, running_emulator
from tests.factories import make_dataset, multipart, new_uid, to_bytes

pytestmark = pytest.mark.e2e
ACCEPT = {"Accept": "application/dicom+json"}


def _ct(study: str, series: str, number: int) -> bytes:
    """A 64x64 CT slice with a bright disc, so its thumbnail is visibly not blank."""
    ds = make_dataset(study_uid=study, series_uid=series, rows=64, columns=64, patient_name="Browser^Test")
    yy, xx = np.mgrid[0:64, 0:64]
    ds.PixelData = np.where((yy - 32) ** 2 + (xx - 32) ** 2 < 20**2, 3000, 100).astype(np.uint16).tobytes()
    ds.WindowCenter, ds.WindowWidth = 1500, 3000
    ds.InstanceNumber = number
    return to_bytes(ds)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, str]]:
    data = tmp_path_factory.mktemp("page") / "data"
    with running_emulator(data, "--workers", "1", "--ohif-url", "http://localhost:3000") as emulator:
        study, series = new_uid(), new_uid()
        body, ctype = multipart([_ct(study, series, n) for n in (1, 2)])
        r = httpx.post(f"{emulator.base_url}/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
        assert r.status_code == 200
        yield emulator, study


def test_root_shows_studies_with_thumbnails(stored: tuple[Emulator, str], page: Any, tmp_path: Path) -> None:
    emulator, study = stored
    response = page.goto(emulator.base_url + "/")
    assert response.status == 200
    assert page.url == emulator.base_url + "/emulator/"  # GET / redirects here
    assert page.title() == "Studies · dicom-emulator"
    row = page.locator("#studies tr", has_text=study)
    assert "Browser^Test" in row.inner_text()
    assert row.locator("td").nth(5).inner_text() == "CT"  # modalities
    assert row.locator("td").nth(6).inner_text() == "1"  # series
    assert row.locator("td").nth(7).inner_text() == "2"  # instances
    assert page.locator("a", has_text="API docs").get_attribute("href") == "/emulator/docs"
    viewer = row.locator("a", has_text="open in OHIF").get_attribute("href")
    assert viewer == f"http://localhost:3000/viewer?StudyInstanceUIDs={study}"
    thumb = row.locator("img.thumb")
    thumb.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert "Create" in page.locator("#changefeed").inner_text()

    # The screenshot: the header's colour, and a thumbnail with the bright disc on a dark background.
    shot = Image.open(io.BytesIO(page.screenshot(path=str(tmp_path / "emulator-page.png")))).convert("RGB")
    assert shot.getpixel((5, 5)) == (11, 61, 98)  # header background #0b3d62
    box = thumb.bounding_box()
    crop = np.asarray(
        shot.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"])))
    )
    centre = crop[crop.shape[0] // 2, crop.shape[1] // 2]
    corner = crop[2, 2]
    assert centre.min() > 200 and corner.max() < 60, (centre, corner)


def test_study_page_lists_series(stored: tuple[Emulator, str], page: Any) -> None:
    emulator, study = stored
    page.goto(emulator.base_url + "/emulator/")
    page.locator("#studies a", has_text="Browser^Test").first.click()
    page.wait_for_url(f"**/emulator/?study={study}")
    rows = page.locator("#series tr")
    assert rows.count() == 2  # header + one series
    cells = rows.nth(1).locator("td")
    assert (cells.nth(2).inner_text(), cells.nth(4).inner_text()) == ("CT", "2")
    assert page.locator("#series a", has_text="Open in OHIF").count() == 1
