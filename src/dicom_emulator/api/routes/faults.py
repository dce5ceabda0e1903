"""``/emulator/faults``: read and change the fault-injection rules (emulator-only, see api/faults.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.responses import JSONResponse, PlainTextResponse

from dicom_emulator.api.faults import FaultInjector, describe, logger, parse_config
from dicom_emulator.api.openapi import FAULTS_BODY, extra

router = APIRouter(tags=["emulator"])


def _injector(request: Request) -> FaultInjector:
    injector: FaultInjector = request.app.state.faults
    return injector


def _single_process(request: Request) -> Response | None:
    """With several workers a change would reach only the worker that answers: refuse it."""
    settings = request.app.state.runtime.settings
    # ``serve`` pins ``workers`` to the number it started; None means an app run in-process (one process).
    if not settings.in_memory and (settings.workers or 1) > 1:
        return PlainTextResponse(
            "Fault rules can be changed over HTTP only with --workers 1; with several workers use serve --faults FILE.",
            status_code=409,
        )
    return None


@router.get("/emulator/faults")
async def get_faults(request: Request) -> JSONResponse:
    """The rules in force, with how many requests each matched and faulted."""
    return JSONResponse(_injector(request).state())


@router.put("/emulator/faults", openapi_extra=extra(body=FAULTS_BODY))
async def put_faults(request: Request) -> Response:
    """Replace the rules (``{"seed": 1, "rules": [{"fault": 429, "path": "/studies", "count": 2}]}``);
    counters and the random generator restart."""
    refused = _single_process(request)
    if refused is not None:
        return refused
    try:
        config = parse_config(await request.body())
    except ValueError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    injector = _injector(request)
    injector.configure(config)
    logger.warning("fault rules replaced over HTTP: %s", describe(config))
    return JSONResponse(injector.state())


@router.delete("/emulator/faults", status_code=204)
async def delete_faults(request: Request) -> Response:
    """Remove every rule: requests are served normally again."""
    refused = _single_process(request)
    if refused is not None:
        return refused
    _injector(request).configure(parse_config("{}"))
    logger.warning("fault rules removed over HTTP")
    return Response(status_code=204)
