"""Tokens the way Azure applications get them: azure-identity's ClientSecretCredential against the emulator's
development issuer. azure-identity refuses a non-https authority, so the app is served over HTTPS here with a
self-signed certificate (``serve --tls-certfile/--tls-keyfile`` does the same for users)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
from azure.identity import ClientSecretCredential

from dicom_emulator.app import create_app
from dicom_emulator.config import DEV_TENANT, Settings
from tests.factories import make_dataset, multipart, to_bytes
from tests.served import self_signed_certificate, serving

SCOPE = "https://dicom.healthcareapis.azure.com/.default"


def _run(settings: Settings, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    settings.auth = True
    settings.tls_certfile, settings.tls_keyfile = cert, key
    with (
        serving(create_app(settings), tls=(cert, key)) as base,
        httpx.Client(base_url=base, verify=ssl.create_default_context(cafile=cert)) as http,
    ):
        tokens = {}
        for client in ("dicom-owner", "dicom-reader"):
            with ClientSecretCredential(
                DEV_TENANT,
                client,
                client,
                authority=base,
                disable_instance_discovery=True,  # no call to login.microsoftonline.com
                connection_verify=str(cert),
            ) as credential:
                tokens[client] = credential.get_token(SCOPE).token
        ds = make_dataset()
        body, ctype = multipart([to_bytes(ds)])
        stow = {"Accept": "application/dicom+json", "Content-Type": ctype}
        owner = {"Authorization": f"Bearer {tokens['dicom-owner']}"}
        reader = {"Authorization": f"Bearer {tokens['dicom-reader']}"}
        assert http.post("/v2/studies", content=body, headers={**stow, **reader}).status_code == 403
        assert http.post("/v2/studies", content=body, headers={**stow, **owner}).status_code == 200
        r = http.get("/v2/studies", headers={"Accept": "application/dicom+json", **reader})
        assert (r.status_code, r.json()[0]["0020000D"]["Value"]) == (200, [ds.StudyInstanceUID])
        r = http.get("/v2/studies")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith(f'Bearer authorization_uri="{base}/{DEV_TENANT}"')


async def test_client_secret_credential(settings: Settings, tmp_path: Path) -> None:
    await asyncio.to_thread(_run, settings, tmp_path)
