"""CORS for browser viewers such as OHIF."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from dicom_emulator.app import create_app
from dicom_emulator.config import Settings


async def test_preflight_and_exposed_headers(client: httpx.AsyncClient) -> None:
    r = await client.options(
        "/v2/studies",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept, authorization",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = await client.get("/v2/studies", headers={"Origin": "http://localhost:3000", "Accept": "application/json"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    exposed = r.headers["access-control-expose-headers"].lower()
    for header in ("location", "etag", "warning", "erroneous-dicom-attributes"):
        assert header in exposed


@pytest.mark.parametrize(("origins", "allowed"), [("http://viewer.example", True), ("", False)])
async def test_configured_origins(settings: Settings, origins: str, allowed: bool) -> None:
    app = create_app(settings.model_copy(update={"cors_origins": origins}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            r = await client.get("/health", headers={"Origin": "http://viewer.example"})
    assert r.headers.get("access-control-allow-origin") == ("http://viewer.example" if allowed else None)
    if allowed:
        assert r.headers["access-control-allow-credentials"] == "true"


async def test_origin_with_trailing_slash_is_normalised(settings: Settings) -> None:
    """A pasted ``http://host:port/`` must match the browser's ``Origin`` (which never ends with "/")."""
    app = create_app(settings.model_copy(update={"cors_origins": "http://localhost:3000/, http://other.example"}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            r = await client.options(
                "/v2/studies",
                headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
            )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"


async def test_root_redirects_to_the_emulator_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 307
    assert r.headers["location"] == "/emulator/"
