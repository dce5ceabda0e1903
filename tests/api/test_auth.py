"""``serve --auth`` (azure-behaviour §13): every DICOM route × {no token, expired, wrong audience, bad signature,
no role, Reader, Owner}, with tokens from the built-in development issuer (plain OAuth 2.0 client credentials here;
``test_auth_identity.py`` gets them through azure-identity) and from a JWKS the test serves itself."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from dicom_emulator.config import DEV_TENANT, Settings
from tests.apps import APP_POOL, asgi_client
from tests.factories import make_dataset, multipart, to_bytes
from tests.webhook import Answer, Receiver

AUDIENCE = "https://dicom.healthcareapis.azure.com"
SCOPE = f"{AUDIENCE}/.default"
TOKEN_URL = f"/{DEV_TENANT}/oauth2/v2.0/token"
CHALLENGE = f'Bearer authorization_uri="http://testserver/{DEV_TENANT}", resource_id="{AUDIENCE}", realm="{AUDIENCE}"'
FORBIDDEN = (403, "Authorization failed.")
STUDY = "1.2.826.0.1.3680043.8.498.1"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _mint(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"aud": AUDIENCE, "iss": f"http://testserver/{DEV_TENANT}/v2.0", "iat": now, "nbf": now, "exp": now + 600}
    return jwt.encode({**body, **claims}, key, algorithm="RS256")


def requests() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(data action, method, path, request kwargs): one route of each kind of the reference's route table."""
    ds = make_dataset()
    body, ctype = multipart([to_bytes(ds)])
    stow = {"content": body, "headers": {"Accept": "application/dicom+json", "Content-Type": ctype}}
    tags = {"json": [{"path": "PatientAge", "level": "Study"}]}
    return [
        ("read", "GET", "/v2/studies", {"headers": {"Accept": "application/dicom+json"}}),
        ("read", "GET", f"/v2/studies/{STUDY}/metadata", {"headers": {"Accept": "application/dicom+json"}}),
        ("read", "GET", "/v1/changefeed", {}),
        ("read", "GET", "/v2/changefeed/latest", {}),
        ("read", "GET", "/v2/extendedquerytags", {}),
        ("read", "GET", "/v2/operations/00000000000000000000000000000000", {}),
        ("read", "GET", "/v2/workitems", {"headers": {"Accept": "application/dicom+json"}}),
        ("write", "POST", "/v2/studies", stow),
        ("delete", "DELETE", f"/v2/studies/{ds.StudyInstanceUID}", {}),
        ("manageExtendedQueryTags", "POST", "/v2/extendedquerytags", tags),
        ("manageExtendedQueryTags", "DELETE", "/v2/extendedquerytags/PatientAge", {}),
        ("write", "POST", "/v2/workitems", {"content": b"[]", "headers": {"Content-Type": "application/dicom+json"}}),
    ]


# What an Owner gets on an empty store (the routes' own answers once authorized).
OWNER_STATUS = {
    "/v2/studies": 204,
    f"/v2/studies/{STUDY}/metadata": 404,
    "/v1/changefeed": 200,
    "/v2/changefeed/latest": 204,
    "/v2/extendedquerytags": 200,
}


@pytest.fixture
def signing_key(tmp_path: Path) -> rsa.RSAPrivateKey:
    return _key()


@pytest.fixture
async def auth_client(
    settings: Settings, signing_key: rsa.RSAPrivateKey, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    key_path = tmp_path / "issuer.pem"
    key_path.write_bytes(_pem(signing_key))
    settings.auth = True
    settings.auth_signing_key_path = key_path
    async with APP_POOL.running(settings) as app, asgi_client(app) as client:
        yield client


async def _token(client: httpx.AsyncClient, client_id: str, scope: str = SCOPE) -> str:
    r = await client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_id, "scope": scope},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    return str(body["access_token"])


async def _matrix(
    client: httpx.AsyncClient, authorization: str | None
) -> list[tuple[str, str, int, str, dict[str, str]]]:
    out = []
    for action, method, path, kwargs in requests():
        headers = dict(kwargs.get("headers", {}))
        if authorization is not None:
            headers["Authorization"] = authorization
        r = await client.request(method, path, **{**kwargs, "headers": headers})
        out.append((action, f"{method} {path}", r.status_code, r.text, dict(r.headers)))
    return out


async def test_no_token(auth_client: httpx.AsyncClient) -> None:
    for _, route, status, text, headers in await _matrix(auth_client, None):
        assert (route, status, text, headers["www-authenticate"]) == (route, 401, "", CHALLENGE)
    # A scheme other than Bearer is no token either.
    r = await auth_client.get("/v2/studies", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert (r.status_code, r.headers["www-authenticate"]) == (401, CHALLENGE)


@pytest.mark.parametrize("kind", ["expired", "wrong audience", "bad signature", "not a JWT", "unknown issuer"])
async def test_invalid_tokens(auth_client: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey, kind: str) -> None:
    now = int(time.time())
    description: str | None
    if kind == "expired":
        # Expired beyond ASP.NET's five minutes of clock skew.
        exp = now - 600
        token = _mint(signing_key, iat=now - 4200, nbf=now - 4200, exp=exp, roles=["DICOM Data Owner"])
        description = "The token expired at '" + time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(exp)) + "'"
    elif kind == "wrong audience":
        token = await _token(auth_client, "dicom-owner", scope="api://other-service/.default")
        description = "The audience 'api://other-service' is invalid"
    elif kind == "bad signature":
        token = _mint(_key(), roles=["DICOM Data Owner"])
        description = "The signature is invalid"
    elif kind == "unknown issuer":
        token = _mint(signing_key, iss="https://sts.windows.net/someone-else/", roles=["DICOM Data Owner"])
        description = "The issuer 'https://sts.windows.net/someone-else/' is invalid"
    else:
        token, description = "not-a-jwt", None
    expected = CHALLENGE + ', error="invalid_token"'
    if description is not None:
        expected += f', error_description="{description}"'
    for _, route, status, text, headers in await _matrix(auth_client, f"Bearer {token}"):
        assert (route, status, text, headers["www-authenticate"]) == (route, 401, "", expected)


async def test_reader_reads_only(auth_client: httpx.AsyncClient) -> None:
    token = await _token(auth_client, "dicom-reader")
    for action, route, status, text, headers in await _matrix(auth_client, f"Bearer {token}"):
        if action == "read":
            assert status not in (401, 403), (route, status, text)
            path = route.split(" ", 1)[1]
            if path in OWNER_STATUS:
                assert (route, status) == (route, OWNER_STATUS[path])
        else:
            assert (route, status, text, headers["content-type"]) == (
                route, *FORBIDDEN, "text/plain; charset=utf-8",
            )  # fmt: skip


async def test_owner_may_do_everything(auth_client: httpx.AsyncClient) -> None:
    token = await _token(auth_client, "dicom-owner")
    results = await _matrix(auth_client, f"Bearer {token}")
    for _, route, status, text, _ in results:
        assert status not in (401, 403), (route, status, text)
    by_route = {
        route.split(" ", 1)[1] if route.startswith("GET") else route: status for _, route, status, _, _ in results
    }
    assert by_route["POST /v2/studies"] == 200
    assert by_route["POST /v2/extendedquerytags"] == 202
    for path, status in OWNER_STATUS.items():
        assert by_route[path] == status
    events = (await auth_client.get("/emulator/events")).json()  # emulator routes stay open
    assert [e["eventType"] for e in events] == [
        "Microsoft.HealthcareApis.DicomImageCreated",
        "Microsoft.HealthcareApis.DicomImageDeleted",
    ]


async def test_token_without_roles_is_forbidden(auth_client: httpx.AsyncClient) -> None:
    token = await _token(auth_client, "dicom-norole")
    for _, route, status, text, _ in await _matrix(auth_client, f"Bearer {token}"):
        assert (route, status, text) == (route, *FORBIDDEN)


async def test_open_routes_and_the_issuer(auth_client: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey) -> None:
    assert (await auth_client.get("/health")).status_code == 200
    assert (await auth_client.get("/health/check")).status_code == 200
    config = (await auth_client.get("/.well-known/openid-configuration")).json()
    assert config == (await auth_client.get(f"/{DEV_TENANT}/v2.0/.well-known/openid-configuration")).json()
    assert config["issuer"] == f"http://testserver/{DEV_TENANT}/v2.0"
    assert config["token_endpoint"] == f"http://testserver{TOKEN_URL}"
    [jwk] = (await auth_client.get(config["jwks_uri"].removeprefix("http://testserver"))).json()["keys"]
    assert jwt.PyJWK.from_dict(jwk).key.public_numbers() == signing_key.public_key().public_numbers()
    token = await _token(auth_client, "dicom-reader")
    claims = jwt.decode(token, signing_key.public_key(), algorithms=["RS256"], audience=AUDIENCE)
    assert (claims["iss"], claims["tid"], claims["appid"], claims["roles"]) == (
        config["issuer"], DEV_TENANT, "dicom-reader", ["DICOM Data Reader"],
    )  # fmt: skip
    assert re.fullmatch(r"[0-9a-f-]{36}", claims["oid"])
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    bad = {"grant_type": "client_credentials", "client_id": "dicom-owner", "client_secret": "wrong", "scope": SCOPE}
    r = await auth_client.post(TOKEN_URL, data=bad)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    r = await auth_client.post(TOKEN_URL, data={**bad, "grant_type": "password"})
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_grant_type")
    r = await auth_client.post(TOKEN_URL, data={**bad, "client_secret": "dicom-owner", "scope": "openid"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")
    # HTTP Basic client authentication works too (RFC 6749 §2.3.1).
    r = await auth_client.post(
        TOKEN_URL, data={"grant_type": "client_credentials", "scope": SCOPE}, auth=("dicom-owner", "dicom-owner")
    )
    assert r.status_code == 200


def every_versioned_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) for every route under ``/{version}`` the app has, its parameters filled in.

    Read from the OpenAPI document: it has every route with the prefixes its router was mounted under (the
    partition-aware routers are mounted twice, at ``/{version}`` and ``/{version}/partitions/{partitionName}``).
    """
    out = []
    for template, operations in app.openapi()["paths"].items():
        if not template.startswith("/{version}"):
            continue
        path = template.replace("{version}", "v2").replace("{partitionName}", "Microsoft.Default")
        path = re.sub(r"\{(frames|frame)\}", "1", path)
        path = re.sub(r"\{tag[^}]*\}", "PatientAge", path)
        path = re.sub(r"\{(id|operation_id|operationId)\}", "00000000000000000000000000000000", path)
        path = re.sub(r"\{[^}]+\}", STUDY, path)
        out.extend((method.upper(), path) for method in operations if method.upper() not in ("HEAD", "OPTIONS"))
    return sorted(set(out))


async def test_every_route(settings: Settings, signing_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    """Each versioned route: 401 without a token, 403 without a role, Reader only on reads, Owner everywhere."""
    key_path = tmp_path / "issuer.pem"
    key_path.write_bytes(_pem(signing_key))
    settings.auth = True
    settings.auth_signing_key_path = key_path
    async with APP_POOL.running(settings) as app, asgi_client(app) as client:
        routes = every_versioned_route(app)
        assert len(routes) > 40
        tokens = {name: await _token(client, name) for name in ("dicom-owner", "dicom-reader", "dicom-norole")}
        for method, path in routes:
            r = await client.request(method, path)
            assert (method, path, r.status_code, r.headers["www-authenticate"]) == (method, path, 401, CHALLENGE)
            r = await client.request(method, path, headers={"Authorization": f"Bearer {tokens['dicom-norole']}"})
            assert (method, path, r.status_code, r.text) == (method, path, *FORBIDDEN)
            r = await client.request(method, path, headers={"Authorization": f"Bearer {tokens['dicom-reader']}"})
            if method == "GET":
                assert r.status_code not in (401, 403), (method, path, r.status_code, r.text)
            else:
                assert (method, path, r.status_code, r.text) == (method, path, *FORBIDDEN)
            r = await client.request(method, path, headers={"Authorization": f"Bearer {tokens['dicom-owner']}"})
            assert r.status_code not in (401, 403), (method, path, r.status_code, r.text)


async def test_auth_off_by_default(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/changefeed")).status_code == 200
    assert (await client.get("/.well-known/openid-configuration")).status_code == 404


# ---------------------------------------------------------------------------------------------------------------
# A JWKS the test serves itself (a team's own issuer, or Entra): keys, audiences, issuers, role assignments
# ---------------------------------------------------------------------------------------------------------------

ISSUER = "https://issuer.example/tenant/v2.0"


@pytest.fixture
def jwks_key() -> rsa.RSAPrivateKey:
    return _key()


@pytest.fixture
def jwks_server(jwks_key: rsa.RSAPrivateKey) -> Iterator[Receiver]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(jwks_key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "test-key", "use": "sig"}]}).encode()

    server = Receiver(lambda _: Answer(200, body, {"Content-Type": "application/json"})).start()
    yield server
    server.stop()


def _jwks_token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"aud": AUDIENCE, "iss": ISSUER, "iat": now, "nbf": now, "exp": now + 600, "oid": "object-1"}
    return jwt.encode({**body, **claims}, key, algorithm="RS256", headers={"kid": "test-key"})


async def test_tokens_from_a_jwks_url(settings: Settings, jwks_server: Receiver, jwks_key: rsa.RSAPrivateKey) -> None:
    settings.auth = True
    settings.auth_jwks_url = jwks_server.url
    settings.auth_issuers = [ISSUER]
    settings.auth_service_url = "https://ws-dicom.dicom.azurehealthcareapis.com/"
    # Azure RBAC stand-in: roles assigned to an object id, not carried in the token.
    settings.auth_role_assignments = {"object-2": ["DICOM Data Reader"]}
    async with APP_POOL.running(settings) as app, asgi_client(app) as client:
        r = await client.get("/v2/changefeed")
        assert r.headers["www-authenticate"] == (
            f'Bearer authorization_uri="", resource_id="{AUDIENCE}", realm="{AUDIENCE}"'
        )

        async def status(token: str, method: str = "GET", path: str = "/v2/changefeed") -> tuple[int, str]:
            r = await client.request(method, path, headers={"Authorization": f"Bearer {token}"})
            return r.status_code, r.headers.get("www-authenticate", "")

        assert await status(_jwks_token(jwks_key, roles=["DICOM Data Owner"])) == (200, "")
        # The service URL is an accepted audience too.
        service = _jwks_token(
            jwks_key, aud="https://ws-dicom.dicom.azurehealthcareapis.com", roles=["dicom data reader"]
        )
        assert await status(service) == (200, "")
        assert (await status(service, "DELETE", f"/v2/studies/{STUDY}"))[0] == 403
        assigned = _jwks_token(jwks_key, oid="object-2")
        assert await status(assigned) == (200, "")
        assert (await status(assigned, "DELETE", f"/v2/studies/{STUDY}"))[0] == 403
        assert (await status(_jwks_token(jwks_key)))[0] == 403  # object-1: no role anywhere
        code, challenge = await status(_jwks_token(jwks_key, iss="https://elsewhere/"))
        assert (code, challenge.endswith("error_description=\"The issuer 'https://elsewhere/' is invalid\"")) == (
            401,
            True,
        )
        other = _key()
        code, challenge = await status(_jwks_token(other, roles=["DICOM Data Owner"]))
        assert (code, challenge.endswith('error_description="The signature is invalid"')) == (401, True)
        unknown_kid = jwt.encode({"aud": AUDIENCE, "exp": int(time.time()) + 60}, other, "RS256", headers={"kid": "x"})
        code, challenge = await status(unknown_kid)
        assert (code, challenge.endswith('error_description="The signature key was not found"')) == (401, True)
