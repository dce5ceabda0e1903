"""API version segments (azure-behaviour §1.1) and the middleware that guards every versioned request."""

from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from dicom_emulator.dicom.identifiers import uid_error_message

# URL segment → major version. v1.0-prerelease behaves exactly like v1 (azure-behaviour §1.1).
SUPPORTED_VERSIONS: dict[str, int] = {"v1.0-prerelease": 1, "v1": 1, "v1.0": 1, "v2": 2, "v2.0": 2}
SUPPORTED_VERSIONS_HEADER = "1.0-prerelease, 1, 2"
_VERSION_LIKE = re.compile(r"^v\d+(\.\d+)?(-[A-Za-z0-9]+)?$")
# azure-behaviour §1.4: any query string containing '<' (or its encoding) is rejected.
_INVALID_QUERY = re.compile(rb"<|%3c", re.IGNORECASE)
INVALID_QUERY_MESSAGE = "The query string included invalid characters."


@dataclass(frozen=True, slots=True)
class ApiVersion:
    segment: str
    major: int


def parse_version(segment: str) -> ApiVersion | None:
    major = SUPPORTED_VERSIONS.get(segment.lower())
    return None if major is None else ApiVersion(segment, major)


class VersionGuardMiddleware:
    """Pure ASGI (no buffering of streamed bodies): query-string guard, unsupported versions,
    and the ``api-supported-versions`` header on versioned responses (ReportApiVersions)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _INVALID_QUERY.search(scope.get("query_string", b"")):
            await _send_text(send, 400, INVALID_QUERY_MESSAGE)
            return
        path: str = scope["path"]
        segment = path.split("/", 2)[1] if path.count("/") >= 1 else ""
        versioned = parse_version(segment) is not None
        if not versioned and _VERSION_LIKE.match(segment):
            # ASP.NET API Versioning's answer for a version it does not know (azure-behaviour §1.1).
            body = {
                "error": {
                    "code": "UnsupportedApiVersion",
                    "message": f"The HTTP resource that matches the request URI '{path}' does not support "
                    f"the API version '{segment[1:]}'.",
                    "innerError": None,
                }
            }
            await _send(send, 400, json.dumps(body).encode(), b"application/json; charset=utf-8")
            return
        if not versioned:
            await self.app(scope, receive, send)
            return
        bad_uid = _encoded_slash_uid(scope.get("raw_path") or b"")
        if bad_uid is not None:
            await _send_text(send, 400, uid_error_message(bad_uid))
            return

        async def send_with_header(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"api-supported-versions", SUPPORTED_VERSIONS_HEADER.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_header)


_UID_SEGMENTS = {b"studies": "StudyInstanceUid", b"series": "SeriesInstanceUid", b"instances": "SopInstanceUid"}


def _encoded_slash_uid(raw_path: bytes) -> str | None:
    """The name of a UID route segment holding an encoded '/'.

    Kestrel keeps ``%2F`` encoded inside a segment, so Azure sees ``..%2F..`` as one (invalid) UID and
    answers 400; uvicorn decodes it before routing, which would turn it into a 404 here.
    """
    if b"%2f" not in raw_path.lower():
        return None
    segments = raw_path.split(b"/")
    for previous, segment in zip(segments, segments[1:], strict=False):
        if b"%2f" in segment.lower() and previous in _UID_SEGMENTS:
            return _UID_SEGMENTS[previous]
    return None


async def _send_text(send: Send, status: int, text: str) -> None:
    await _send(send, status, text.encode(), b"text/plain; charset=utf-8")


async def _send(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
