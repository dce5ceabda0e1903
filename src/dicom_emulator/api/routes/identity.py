"""The built-in development issuer (``serve --auth`` without an authority): OpenID configuration, JWKS, tokens.

Emulator-only. Clients point their authority at ``http://<emulator>/<tenant>`` (the tenant is printed in the
README) and use the client-credentials flow, e.g. ``azure-identity``'s ``ClientSecretCredential``, with the scope
``https://dicom.healthcareapis.azure.com/.default``.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from dicom_emulator.api.deps import RuntimeDep
from dicom_emulator.api.openapi import TOKEN_BODY, extra
from dicom_emulator.config import DEV_TENANT
from dicom_emulator.services.auth import DevelopmentIssuer

router = APIRouter(tags=["Emulator: development issuer"])
MAX_FORM = 64 * 1024


def _bad_request(description: str) -> dict[str, str]:
    return {"error": "invalid_request", "error_description": description}


def _issuer(runtime: RuntimeDep, tenant: str) -> DevelopmentIssuer | None:
    issuer = runtime.auth.dev_issuer
    return issuer if issuer is not None and runtime.auth.enabled and tenant == DEV_TENANT else None


def _not_found() -> Response:
    return JSONResponse({"error": "invalid_tenant", "error_description": "No such tenant."}, status_code=404)


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/.well-known/openid-configuration")
@router.get("/{tenant}/v2.0/.well-known/openid-configuration")
async def openid_configuration(request: Request, runtime: RuntimeDep, tenant: str = DEV_TENANT) -> Response:
    """OpenID Connect discovery of the development issuer."""
    issuer = _issuer(runtime, tenant)
    return JSONResponse(issuer.openid_configuration(_root(request))) if issuer else _not_found()


@router.get("/{tenant}/discovery/v2.0/keys")
async def jwks(runtime: RuntimeDep, tenant: str) -> Response:
    """The development issuer's signing keys."""
    issuer = _issuer(runtime, tenant)
    return JSONResponse(issuer.jwks()) if issuer else _not_found()


@router.post("/{tenant}/oauth2/v2.0/token", openapi_extra=extra(body=TOKEN_BODY))
async def token(request: Request, runtime: RuntimeDep, tenant: str) -> Response:
    """OAuth 2.0 client credentials: ``client_id``, ``client_secret`` (form or HTTP Basic), ``scope``."""
    issuer = _issuer(runtime, tenant)
    if issuer is None:
        return _not_found()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return JSONResponse(_bad_request("The request body is too large."), status_code=400)
    # application/x-www-form-urlencoded, as OAuth 2.0 requires (RFC 6749 §4.4.2).
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", unquote(client_id))
            form.setdefault("client_secret", unquote(secret))
        except ValueError:
            pass
    status, answer = issuer.token(form, _root(request))
    return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
