"""DELETE at three levels (azure-behaviour §5)."""

from __future__ import annotations

import httpx

from dicom_emulator.config import Settings
from tests.factories import make_dataset, multipart, new_uid, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}


async def test_delete_levels(client: httpx.AsyncClient, settings: Settings) -> None:
    study, s1, s2 = new_uid(), new_uid(), new_uid()
    datasets = [make_dataset(study_uid=study, series_uid=s1), make_dataset(study_uid=study, series_uid=s1)]
    datasets.append(make_dataset(study_uid=study, series_uid=s2))
    body, ctype = multipart([to_bytes(ds) for ds in datasets])
    assert (
        await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    ).status_code == 200
    blobs = settings.blob_dir
    assert len(list(blobs.rglob("*.dcm"))) == 3

    sop = datasets[0].SOPInstanceUID
    r = await client.delete(f"/v2/studies/{study}/series/{s1}/instances/{sop}")
    assert (r.status_code, r.content) == (204, b"")
    assert (await client.delete(f"/v2/studies/{study}/series/{s1}/instances/{sop}")).status_code == 404
    assert len((await client.get(f"/v2/studies/{study}/instances", headers=ACCEPT)).json()) == 2

    assert (await client.delete(f"/v2/studies/{study}/series/{s2}")).status_code == 204
    r = await client.get(f"/v2/studies/{study}/series", headers=ACCEPT)
    assert [i["0020000E"]["Value"][0] for i in r.json()] == [s1]

    assert (await client.delete(f"/v2/studies/{study}")).status_code == 204
    assert (await client.get("/v2/studies", headers=ACCEPT)).status_code == 204
    assert (await client.get(f"/v2/studies/{study}/metadata", headers=ACCEPT)).status_code == 404
    assert (await client.delete(f"/v2/studies/{study}")).status_code == 404
    assert list(blobs.rglob("*.dcm")) == []


async def test_delete_invalid_uid_is_400(client: httpx.AsyncClient) -> None:
    r = await client.delete("/v2/studies/1.2.x")
    assert r.status_code == 400
    r = await client.delete(f"/v2/studies/{new_uid()}/series/abc")
    assert r.status_code == 400
    assert r.text.startswith("Dicom element 'SeriesInstanceUid' failed validation")
