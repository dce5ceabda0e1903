"""--loose: QIDO wildcards and UID lists (PS3.4 C.2.2.2.2, C.2.2.2.4), an emulator-only extension."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from dicom_emulator.app import create_app
from dicom_emulator.config import Settings
from tests.factories import make_dataset, multipart, new_uid, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}


@pytest.fixture
async def loose_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"loose": True}))
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            yield c


async def test_wildcards_and_uid_lists(loose_client: httpx.AsyncClient) -> None:
    a, b = new_uid(), new_uid()
    body, ctype = multipart(
        [
            to_bytes(make_dataset(study_uid=a, patient_id="MRN-100", patient_name="Doe^John")),
            to_bytes(make_dataset(study_uid=b, patient_id="MRN-200", patient_name="Roe^Jane")),
        ]
    )
    assert (
        await loose_client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    ).status_code == 200

    async def found(**params: str) -> list[str]:
        r = await loose_client.get("/v2/studies", params=params, headers=ACCEPT)
        return sorted(i["0020000D"]["Value"][0] for i in r.json()) if r.status_code == 200 else []

    assert await found(PatientID="*MRN*") == sorted([a, b])
    assert await found(PatientID="MRN-1?0") == [a]
    assert await found(PatientName="r*") == [b]
    assert await found(StudyInstanceUID=f"{a},{b}") == sorted([a, b])
    assert await found(StudyInstanceUID=f"{a}\\{b}") == sorted([a, b])
    r = await loose_client.get("/v2/studies", params={"StudyInstanceUID": f"{a},x.y"}, headers=ACCEPT)
    assert r.status_code == 400
