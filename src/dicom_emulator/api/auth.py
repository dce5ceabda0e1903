"""Bearer authentication and role checks in front of the DICOM routes (``serve --auth``, azure-behaviour §13).

Pure ASGI, inside the version guard: only versioned paths (the DICOM API) are protected; ``/health``, the
``/emulator`` routes and the development issuer stay open. A request without a usable token is answered 401 with
Azure's ``WWW-Authenticate`` challenge and an empty body; a principal without the route's data action gets 403
``Authorization failed.`` (§13.4). DIMSE never passes through here: DIMSE has no tokens.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from dicom_emulator.api.versions import parse_version
from dicom_emulator.services.auth import FORBIDDEN_MESSAGE, AuthenticationError, required_action


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        segment = path.split("/", 2)[1] if path.count("/") >= 1 else ""
        runtime = getattr(scope["app"].state, "runtime", None)
        auth = runtime.auth if runtime is not None else None
        if auth is None or not auth.enabled or parse_version(segment) is None:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            principal = await auth.authenticate(headers.get("authorization"))
        except AuthenticationError as exc:
            challenge = auth.challenge(_base_url(scope, headers))
            if exc.token_present:
                # ASP.NET Core JwtBearerHandler appends the error to the configured challenge.
                challenge += ', error="invalid_token"'
                if exc.description:
                    challenge += f', error_description="{exc.description}"'
            await _send(send, 401, b"", [(b"www-authenticate", challenge.encode("latin-1"))])
            return
        if required_action(scope["method"], path) not in principal.actions:
            await _send(
                send,
                403,
                FORBIDDEN_MESSAGE.encode(),
                [(b"content-type", b"text/plain; charset=utf-8")],
            )
            return
        await self.app(scope, receive, send)


def _base_url(scope: Scope, headers: dict[str, str]) -> str:
    host = headers.get("host") or "localhost"
    return f"{scope.get('scheme', 'http')}://{host}"


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
