"""``--public-url``: RetrieveURLs, Location headers and hrefs use the URL clients reach the emulator at."""

from __future__ import annotations

import httpx
import pytest

from dicom_emulator.config import Settings
from tests.factories import make_dataset, multipart, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}
PUBLIC = "https://dicom.example.org/emulator"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_url": PUBLIC})


async def test_retrieve_urls_and_hrefs_use_the_public_url(client: httpx.AsyncClient) -> None:
    ds = make_dataset()
    study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    body, ctype = multipart([to_bytes(ds)])
    r = await client.post(f"/v2/studies/{study}", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 200
    assert r.json()["00081190"]["Value"] == [f"{PUBLIC}/v2/studies/{study}"]
    assert r.json()["00081199"]["Value"][0]["00081190"]["Value"] == [
        f"{PUBLIC}/v2/studies/{study}/series/{series}/instances/{sop}"
    ]
    added = await client.post("/v2/extendedquerytags", json=[{"path": "PatientAge", "vr": "AS", "level": "Study"}])
    assert added.status_code == 202
    assert added.headers["location"] == added.json()["href"] == f"{PUBLIC}/v2/operations/{added.json()['id']}"
