"""msdicom-expiry-* headers and the expiry sweep (azure-behaviour §2.2)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.factories import make_dataset, multipart, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}
EXPIRY = {"msdicom-expiry-option": "RelativeToNow", "msdicom-expiry-level": "Study"}


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"expiry_interval_seconds": 0.1})


async def store(client: httpx.AsyncClient, ds: object, headers: dict[str, str]) -> None:
    body, ctype = multipart([to_bytes(ds)])  # type: ignore[arg-type]
    r = await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype, **headers})
    assert r.status_code == 200, r.text


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_expired_study_is_deleted_like_delete(client: httpx.AsyncClient) -> None:
    expiring, kept = make_dataset(), make_dataset()
    await store(client, expiring, {"msdicom-expiry-time-milliseconds": "200", **EXPIRY})
    await store(client, kept, {"msdicom-expiry-time-milliseconds": "3600000", **EXPIRY})

    async def gone() -> bool:
        r = await client.get(f"/v2/studies/{expiring.StudyInstanceUID}/metadata", headers=ACCEPT)
        return r.status_code == 404

    await wait_for(gone)
    r = await client.get(f"/v2/studies/{kept.StudyInstanceUID}/metadata", headers=ACCEPT)
    assert r.status_code == 200
    feed = (await client.get("/v2/changefeed")).json()
    assert [(e["sopInstanceUid"], e["action"], e["state"]) for e in feed] == [
        (expiring.SOPInstanceUID, "Create", "Deleted"),
        (kept.SOPInstanceUID, "Create", "Current"),
        (expiring.SOPInstanceUID, "Delete", "Deleted"),
    ]


async def test_later_store_without_headers_clears_expiry(client: httpx.AsyncClient) -> None:
    first = make_dataset()
    second = make_dataset(study_uid=first.StudyInstanceUID, series_uid=first.SeriesInstanceUID)
    await store(client, first, {"msdicom-expiry-time-milliseconds": "200", **EXPIRY})
    await store(client, second, {})  # the last STOW for the study wins: no schedule
    # A canary that expires after the first study's cleared schedule would have: once the sweep has deleted it,
    # a sweep ran past that time (one run deletes every study due by then), so no fixed sleep is needed.
    canary = make_dataset()
    await store(client, canary, {"msdicom-expiry-time-milliseconds": "200", **EXPIRY})

    async def canary_gone() -> bool:
        r = await client.get(f"/v2/studies/{canary.StudyInstanceUID}/metadata", headers=ACCEPT)
        return r.status_code == 404

    await wait_for(canary_gone)
    r = await client.get(f"/v2/studies/{first.StudyInstanceUID}/metadata", headers=ACCEPT)
    assert (r.status_code, len(r.json())) == (200, 2)
