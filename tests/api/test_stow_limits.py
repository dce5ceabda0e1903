"""STOW size limit (413) and v1/v2 PatientID rules (azure-behaviour §1.3, §2.2)."""

from __future__ import annotations

import httpx
import pytest

from dicom_emulator.config import Settings
from tests.factories import make_instance, multipart

ACCEPT = {"Accept": "application/dicom+json"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_part_size": 4096})


@pytest.mark.parametrize("single_part", [True, False])
async def test_part_over_limit_is_413(client: httpx.AsyncClient, settings: Settings, single_part: bool) -> None:
    data = make_instance(rows=64, columns=64)  # 8 KiB of pixels
    if single_part:
        headers = {**ACCEPT, "Content-Type": "application/dicom"}
        r = await client.post("/v2/studies", content=data, headers=headers)
    else:
        body, ctype = multipart([make_instance(), data])
        r = await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert (r.status_code, r.text) == (413, "The request exceeded the allowed limit of 4096 bytes.")
    assert (await client.get("/v2/studies", headers=ACCEPT)).status_code == 204
    # Each app spools into a directory of its own there, holding only its lock file (storage/sweep.py).
    assert [p for p in settings.spool_dir.rglob("*") if p.is_file() and not p.name.startswith(".")] == []


async def test_empty_patient_id_fails_v1_and_warns_v2(client: httpx.AsyncClient) -> None:
    body, ctype = multipart([make_instance(patient_id="")])
    r1 = await client.post("/v1/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r1.status_code == 409
    assert r1.json()["00081198"]["Value"][0]["00081197"]["Value"] == [43264]
    r2 = await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r2.status_code == 202
    item = r2.json()["00081199"]["Value"][0]
    assert item["00081196"] == {"vr": "US", "Value": [1]}
    assert item["00741048"]["Value"][0]["00000902"]["Value"] == [
        "DICOM100: (0010,0020) - The required tag '(0010,0020)' is missing."
    ]
