"""HTTP front: routers for every API area, mounted at the host root under each version segment."""

from __future__ import annotations

from fastapi import APIRouter

from dicom_emulator.api.routes import (
    changefeed,
    delete,
    events,
    extended_query_tags,
    frames,
    identity,
    not_emulated,
    operations,
    qido,
    rendered,
    stow,
    system,
    wado,
    workitems,
)


def build_router() -> APIRouter:
    router = APIRouter()
    router.include_router(system.router)
    router.include_router(events.router)
    router.include_router(identity.router)
    for area in (
        qido,
        stow,
        wado,
        frames,
        identity,
        rendered,
        delete,
        changefeed,
        extended_query_tags,
        operations,
        workitems,
        not_emulated,
    ):
        router.include_router(area.router)
    return router
