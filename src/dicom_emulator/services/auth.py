"""Entra-style bearer authentication and Azure's DICOM roles (azure-behaviour §13).

Tokens are JWTs verified with PyJWT against one of two key sources: the JWKS of an OpenID authority (a real
Entra tenant, or any issuer a team runs) or a JWKS URL; or, when neither is configured, the built-in
development issuer, whose client-credentials endpoint signs tokens for configured clients and roles.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_emulator.config import DEV_TENANT, AuthClient, Settings

if TYPE_CHECKING:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

logger = logging.getLogger(__name__)

# Data actions (OSS DataActions.cs; reference §13.2).
READ = "read"
WRITE = "write"
DELETE = "delete"
MANAGE_TAGS = "manageExtendedQueryTags"
EXPORT = "export"
ALL_ACTIONS = frozenset({READ, WRITE, DELETE, MANAGE_TAGS, EXPORT})
# Role names (case-insensitive) → data actions: Azure's built-in roles and the OSS server's shipped roles (§13.1-2).
ROLES = {
    "dicom data owner": ALL_ACTIONS,
    "dicom data reader": frozenset({READ}),
    "globaladmin": ALL_ACTIONS,
    "globalreader": frozenset({READ}),
}
FORBIDDEN_MESSAGE = "Authorization failed."  # §13.4 [code]
# ASP.NET Core's JwtBearer default clock skew: a token is accepted until five minutes after ``exp``.
CLOCK_SKEW = 300
# How often an unknown ``kid`` may trigger a JWKS refresh (key rollover), in seconds.
JWKS_REFRESH_COOLDOWN = 30.0


def required_action(method: str, path: str) -> str:
    """The data action a DICOM route needs (reference §13.3 route table)."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return READ
    if "/extendedquerytags" in path:
        return MANAGE_TAGS
    if method == "POST" and path.rstrip("/").endswith("/export"):
        return EXPORT
    if method == "DELETE":
        return DELETE
    return WRITE


def actions_of(roles: list[str]) -> frozenset[str]:
    """Union of the roles' data actions; unknown role names grant nothing (§13.2)."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLES.get(role.strip().lower(), frozenset())
    return frozenset(granted)


class AuthenticationError(Exception):
    """401: no usable token. ``description`` is ASP.NET's error_description (None: only ``invalid_token``)."""

    def __init__(self, description: str | None = None, *, token_present: bool = True) -> None:
        super().__init__(description or "invalid_token")
        self.description = description
        self.token_present = token_present


@functools.lru_cache(maxsize=4)
def _parse_key(pem: bytes) -> rsa.RSAPrivateKey:
    """A PEM private key, parsed once per process: parsing checks the RSA key's consistency, ~50 ms of CPU that
    every restart of the same data directory in one process (the test suite's apps) would otherwise pay again."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError("the signing key is not an RSA private key")
    return loaded


@dataclass(frozen=True, slots=True)
class Principal:
    object_id: str | None
    client_id: str | None
    roles: tuple[str, ...]
    actions: frozenset[str]


def _dotnet_time(seconds: float) -> str:
    """``DateTime.ToString(CultureInfo.InvariantCulture)``, the format of ASP.NET's error descriptions."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%m/%d/%Y %H:%M:%S")


def _kid(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (base64url SHA-256 of the canonical RSA members)."""
    import jwt

    canonical = json.dumps({k: public_jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return jwt.utils.base64url_encode(digest).decode()


class DevelopmentIssuer:
    """The built-in issuer: OpenID configuration, JWKS and a client-credentials token endpoint (§13.5 analogue)."""

    def __init__(self, key: rsa.RSAPrivateKey, clients: list[AuthClient], lifetime: int) -> None:
        import jwt

        self.key = key
        self.clients = {c.client_id: c for c in clients}
        self.lifetime = lifetime
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        self.kid = _kid(public)
        self.jwk = {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}

    @staticmethod
    def load_key(path: Path | None) -> rsa.RSAPrivateKey:
        """The signing key: read from ``path``, or created there once (atomically, several workers may race)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        if path is None:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(pem)
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # fails if another process created it first: then use theirs
            except FileExistsError:
                pass
            else:
                return key  # ours is the file's key: no need to parse it back
            finally:
                tmp.unlink()
        return _parse_key(path.read_bytes())

    @staticmethod
    def issuer(base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{DEV_TENANT}/v2.0"

    def openid_configuration(self, base_url: str) -> dict[str, Any]:
        root = f"{base_url.rstrip('/')}/{DEV_TENANT}"
        return {
            "issuer": self.issuer(base_url),
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_types_supported": ["token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials"],
            "tenant_region_scope": None,
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def token(self, form: dict[str, str], base_url: str) -> tuple[int, dict[str, Any]]:
        """OAuth 2.0 client credentials (RFC 6749 §4.4) with Entra's ``scope=<resource>/.default``."""
        import jwt

        if form.get("grant_type") != "client_credentials":
            message = "AADSTS70003: The app requested an unsupported grant type."
            return 400, _oauth_error("unsupported_grant_type", message)
        client = self.clients.get(form.get("client_id", ""))
        if client is None or form.get("client_secret") != client.client_secret:
            return 401, _oauth_error("invalid_client", "AADSTS7000215: Invalid client secret provided.")
        scope = form.get("scope", "").split()
        if len(scope) != 1 or not scope[0].endswith("/.default"):
            return 400, _oauth_error(
                "invalid_scope", "AADSTS1002012: The provided value for scope is not valid: use <resource>/.default."
            )
        now = int(time.time())
        object_id = client.object_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"dicom-emulator:{client.client_id}"))
        claims: dict[str, Any] = {
            "aud": scope[0].removesuffix("/.default"),
            "iss": self.issuer(base_url),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "sub": object_id,
            "oid": object_id,
            "tid": DEV_TENANT,
            "azp": client.client_id,
            "appid": client.client_id,
            "ver": "2.0",
        }
        if client.roles:
            claims["roles"] = list(client.roles)
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": token,
        }


def _oauth_error(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description, "error_codes": [], "timestamp": "", "trace_id": ""}


class AuthService:
    """Verifies bearer tokens and decides what their principal may do."""

    def __init__(self, settings: Settings, dev_issuer: DevelopmentIssuer | None) -> None:

        self.enabled = settings.auth
        self.dev_issuer = dev_issuer
        self.authority = settings.auth_authority
        self.jwks_url = settings.auth_jwks_url
        self.issuers = list(settings.auth_issuers)
        self.audiences = list(settings.auth_audiences)
        if settings.auth_service_url:
            self.audiences.append(settings.auth_service_url.rstrip("/"))
        self.role_assignments = {oid.lower(): roles for oid, roles in settings.auth_role_assignments.items()}
        self._keys: dict[str, jwt.PyJWK] = {}
        self._refreshed = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    async def create(cls, settings: Settings) -> AuthService:
        dev = None
        # Only with --auth: without it nothing reads the key, and making one is the costliest step of a start.
        if settings.auth and settings.auth_authority is None and settings.auth_jwks_url is None:
            path = settings.auth_signing_key_path
            if path is None and not settings.in_memory:
                path = settings.data_dir / "auth-signing-key.pem"
            key = await asyncio.to_thread(DevelopmentIssuer.load_key, path)
            dev = DevelopmentIssuer(key, settings.auth_clients, settings.auth_token_lifetime)
        return cls(settings, dev)

    def challenge(self, base_url: str) -> str:
        """``WWW-Authenticate`` of a 401 (OSS SecurityModule.cs, §13.4)."""
        authority = self.authority or (f"{base_url.rstrip('/')}/{DEV_TENANT}" if self.dev_issuer else "")
        audience = self.audiences[0] if self.audiences else ""
        return f'Bearer authorization_uri="{authority}", resource_id="{audience}", realm="{audience}"'

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthenticationError(token_present=False)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(token_present=False)
        claims = await self._verify(token.strip())
        roles = claims.get("roles", [])
        role_list = [roles] if isinstance(roles, str) else [str(r) for r in roles if isinstance(r, str)]
        object_id = claims.get("oid") if isinstance(claims.get("oid"), str) else None
        if object_id is not None:
            role_list += self.role_assignments.get(object_id.lower(), [])
        client_id = claims.get("appid") or claims.get("azp")
        return Principal(
            object_id=object_id,
            client_id=str(client_id) if client_id else None,
            roles=tuple(role_list),
            actions=actions_of(role_list),
        )

    async def _verify(self, token: str) -> dict[str, Any]:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AuthenticationError() from None
        key, algorithm = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audiences,
                leeway=CLOCK_SKEW,
                options={"require": ["exp"], "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            exp = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
            raise AuthenticationError(f"The token expired at '{_dotnet_time(float(exp))}'") from None
        except jwt.ImmatureSignatureError:
            nbf = jwt.decode(token, options={"verify_signature": False}).get("nbf", 0)
            raise AuthenticationError(f"The token is not valid before '{_dotnet_time(float(nbf))}'") from None
        except jwt.InvalidAudienceError:
            aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
            shown = ", ".join(aud) if isinstance(aud, list) else (aud or "(null)")
            raise AuthenticationError(f"The audience '{shown}' is invalid") from None
        except jwt.MissingRequiredClaimError as exc:
            if exc.claim == "exp":
                raise AuthenticationError("The token has no expiration") from None
            raise AuthenticationError("The audience '(null)' is invalid") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("The signature is invalid") from None
        except jwt.InvalidTokenError:
            raise AuthenticationError() from None
        issuer = claims.get("iss")
        if not self._issuer_ok(issuer):
            raise AuthenticationError(f"The issuer '{issuer or '(null)'}' is invalid")
        return claims

    def _issuer_ok(self, issuer: object) -> bool:
        if not isinstance(issuer, str):
            return False
        if self.issuers:
            return issuer in self.issuers
        if self.dev_issuer is not None:
            # Any host name the issuer was reached at; the signature already proves it was ours.
            return re.fullmatch(rf"https?://[^/]+/{re.escape(DEV_TENANT)}/v2\.0", issuer) is not None
        return True  # a JWKS URL alone: its keys are the trust anchor

    async def _key(self, kid: object) -> tuple[Any, str]:
        """The verification key for ``kid`` and the one algorithm it may be used with."""
        if self.dev_issuer is not None:
            if kid not in (None, self.dev_issuer.kid):
                raise AuthenticationError("The signature key was not found")
            return self.dev_issuer.key.public_key(), "RS256"
        if not isinstance(kid, str) or kid not in self._keys:
            await self._refresh_keys()
        found = self._keys.get(kid) if isinstance(kid, str) else None
        if found is None and kid is None and len(self._keys) == 1:
            found = next(iter(self._keys.values()))
        if found is None:
            raise AuthenticationError("The signature key was not found")
        return found.key, found.algorithm_name

    async def _refresh_keys(self) -> None:
        """Fetch the JWKS (through the OpenID configuration when an authority is set), at most every 30 s."""
        import jwt

        async with self._lock:
            if self._keys and time.monotonic() - self._refreshed < JWKS_REFRESH_COOLDOWN:
                return
            import httpx  # only with an authority or JWKS URL: not paid by every start

            try:
                async with httpx.AsyncClient(timeout=10.0) as client:
                    jwks_url = self.jwks_url
                    if self.authority is not None:
                        url = self.authority.rstrip("/")
                        if not url.endswith("/.well-known/openid-configuration"):
                            url += "/.well-known/openid-configuration"
                        config = (await client.get(url)).raise_for_status().json()
                        jwks_url = jwks_url or config["jwks_uri"]
                        if not self.issuers and config.get("issuer"):
                            self.issuers = _entra_issuers(str(config["issuer"]))
                    assert jwks_url is not None
                    keyset = (await client.get(jwks_url)).raise_for_status().json()
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                logger.warning("could not fetch the signing keys: %s", exc)
                return
            keys: dict[str, jwt.PyJWK] = {}
            for jwk in keyset.get("keys", []):
                try:
                    parsed = jwt.PyJWK.from_dict(jwk)
                except jwt.PyJWKError:
                    continue
                keys[str(jwk.get("kid", len(keys)))] = parsed
            self._keys = keys
            self._refreshed = time.monotonic()


def _entra_issuers(issuer: str) -> list[str]:
    """Entra's v2 metadata names the v2 issuer; v1 tokens of the same tenant carry sts.windows.net (§13.1)."""
    match = re.fullmatch(r"https://login\.microsoftonline\.com/([0-9a-fA-F-]{36})/v2\.0", issuer)
    if match:
        return [issuer, f"https://sts.windows.net/{match.group(1)}/"]
    return [issuer]
