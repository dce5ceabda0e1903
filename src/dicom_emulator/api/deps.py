"""Request-scoped dependencies as typed aliases (routes read like domain code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from dicom_emulator.api.versions import parse_version
from dicom_emulator.errors import NotFoundError
from dicom_emulator.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ApiContext:
    """Version and URL facts of one request."""

    segment: str
    major: int
    # "{scheme}://{host}/{version}": RetrieveURLs and hrefs are absolute (azure-behaviour §2.4).
    base_url: str
    # Host without port, for "Warning: 299 {host}: ..." (azure-behaviour §1.4).
    warning_host: str


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a thread pool, a
# thread hop per dependency per request that cost more than the work they do.
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def get_api(request: Request, version: str) -> ApiContext:
    parsed = parse_version(version)
    if parsed is None:
        # Unversioned or unknown first segments are simply not routes (the middleware 400s v3 etc).
        raise NotFoundError("")
    root = str(request.base_url).rstrip("/")
    return ApiContext(
        segment=version,
        major=parsed.major,
        base_url=f"{root}/{version}",
        warning_host=request.url.hostname or "localhost",
    )


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ApiDep = Annotated[ApiContext, Depends(get_api)]


def accept_header(request: Request) -> str | None:
    """All Accept header lines as one list (a client may send several lines)."""
    values = request.headers.getlist("accept")
    return ", ".join(values) if values else None


def warning_header(api: ApiContext, message: str) -> str:
    return f'299 {api.warning_host}: "{message}"'
