"""``/emulator/faults`` and the answers it injects (emulator-only)."""

from __future__ import annotations

import httpx
import pytest

from dicom_emulator.api.faults import DEFAULT_BODIES

ACCEPT = {"Accept": "application/dicom+json"}


async def test_throttle_then_recover(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    rules = {
        "seed": 1,
        "rules": [{"fault": 429, "path": "^/v2/studies$", "method": ["GET"], "retry_after": 3, "count": 2}],
    }
    r = await client.put("/emulator/faults", json=rules)
    assert r.status_code == 200
    assert r.json()["rules"][0]["fired"] == 0
    for _ in range(2):
        r = await client.get("/v2/studies", headers={**ACCEPT, "Origin": "http://viewer.example"})
        assert r.status_code == 429
        assert r.headers["retry-after"] == "3"
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert r.text == DEFAULT_BODIES[429]
        assert r.headers["access-control-allow-origin"] == "*"  # a browser can read it
    assert (await client.get("/v2/studies", headers=ACCEPT)).status_code == 204  # count used up
    assert (await client.get("/v2/series", headers=ACCEPT)).status_code == 204  # path does not match
    state = (await client.get("/emulator/faults")).json()
    assert (state["rules"][0]["matched"], state["rules"][0]["fired"]) == (3, 2)
    assert "fault injected: 429 on GET /v2/studies (rule 0, fault 2 of 2)" in caplog.text


async def test_503_with_custom_body_and_delete(client: httpx.AsyncClient) -> None:
    rules = {"rules": [{"fault": 503, "body": "Service Unavailable", "retry_after": None}]}
    assert (await client.put("/emulator/faults", json=rules)).status_code == 200
    r = await client.get("/health")
    assert (r.status_code, r.text) == (503, "Service Unavailable")
    assert "retry-after" not in r.headers
    assert (await client.get("/emulator/faults")).status_code == 200  # never faulted itself
    r = await client.delete("/emulator/faults")
    assert r.status_code == 204
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/emulator/faults")).json() == {"seed": None, "rules": []}


async def test_invalid_rules_are_400_and_change_nothing(client: httpx.AsyncClient) -> None:
    r = await client.put("/emulator/faults", content=b'{"rules": [{"fault": 200}]}')
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("invalid fault rules: rules.0.fault: ")
    assert (await client.get("/emulator/faults")).json()["rules"] == []
