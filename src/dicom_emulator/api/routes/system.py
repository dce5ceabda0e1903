"""Health endpoints: ``/health`` (emulator) and Azure's ``/health/check``; ``/`` points a browser at the emulator."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse, RedirectResponse

from dicom_emulator import __version__

router = APIRouter(tags=["system"])


@router.get("/health")
@router.get("/health/check")
async def health() -> JSONResponse:
    """200 once the lifespan finished: database migrated, storage open."""
    return JSONResponse({"status": "healthy", "version": __version__})


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    """Emulator-only: Azure's service has no page at its root; a browser opening the emulator's URL lands on
    the emulator's own page (studies, change feed, links to the API docs)."""
    return RedirectResponse("/emulator/", status_code=307)
