"""Health endpoints: ``/health`` (emulator) and Azure's ``/health/check``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from dicom_emulator import __version__

router = APIRouter(tags=["system"])


@router.get("/health")
@router.get("/health/check")
async def health() -> JSONResponse:
    """200 once the lifespan finished: database migrated, storage open."""
    return JSONResponse({"status": "healthy", "version": __version__})
