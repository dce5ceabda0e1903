"""HTTP front: routers for every API area, mounted at the host root under each version segment.

Partition-aware areas (azure-behaviour §1.2, §14.1) are mounted twice, at ``/{version}`` and at
``/{version}/partitions/{partitionName}``: the same routes, whose partition dependency (api/deps.py) decides from the
data partitions setting which of the two forms answers and which is Azure's 400.
"""

from __future__ import annotations

from fastapi import APIRouter

from dicom_emulator.api.deps import PARTITION_PARAM
from dicom_emulator.api.routes import (
    changefeed,
    delete,
    emulator_page,
    events,
    export,
    extended_query_tags,
    faults,
    frames,
    identity,
    operations,
    partitions,
    qido,
    rendered,
    stow,
    system,
    wado,
    workitems,
)

PARTITION_AWARE = (qido, stow, wado, frames, rendered, delete, workitems, export)
SERVICE_WIDE = (changefeed, extended_query_tags, operations, partitions)


def build_router() -> APIRouter:
    router = APIRouter()
    # DICOMweb first: routes are matched in order, twice per request (FastAPI), and every other path here
    # (/health, /emulator/..., /{tenant}/oauth2/...) has a shape no versioned route matches, so the order
    # only decides how many routes a STOW, QIDO or WADO request is compared against before its own.
    for area in PARTITION_AWARE:
        router.include_router(area.router, prefix="/{version}")
    router.include_router(system.router)
    router.include_router(faults.router)
    router.include_router(emulator_page.router)
    router.include_router(events.router)
    router.include_router(identity.router)
    for area in SERVICE_WIDE:
        router.include_router(area.router)
    for area in PARTITION_AWARE:
        router.include_router(area.router, prefix=f"/{{version}}/partitions/{{{PARTITION_PARAM}}}")
    return router
