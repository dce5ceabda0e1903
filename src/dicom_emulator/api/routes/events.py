"""Emulator-only event routes (Azure has neither): what was published, and the webhook validationUrl."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from dicom_emulator.api.deps import RuntimeDep
from dicom_emulator.api.openapi import extra, integer, query
from dicom_emulator.errors import BadRequestError
from dicom_emulator.paging import bind_int
from dicom_emulator.services.event_envelopes import CLOUD_EVENTS_SCHEMA, EVENT_GRID_SCHEMA
from dicom_emulator.services.events import MAX_EVENTS_PAGE

router = APIRouter(tags=["Emulator: events"])


@router.get(
    "/emulator/events",
    openapi_extra=extra(
        query("after", {**integer(0), "default": 0}),
        query("limit", {**integer(1, MAX_EVENTS_PAGE), "default": 100}),
        query("schema", {"type": "string", "enum": [EVENT_GRID_SCHEMA, CLOUD_EVENTS_SCHEMA]}),
    ),
)
async def get_events(request: Request, runtime: RuntimeDep) -> Response:
    """Events published after sequence ``after`` (default 0), oldest first, at most ``limit``; ``schema`` picks
    ``EventGridSchema`` (default) or ``CloudEventSchemaV1_0``."""
    params = list(request.query_params.multi_items())
    after = bind_int(params, "after", default=0, low=0)
    limit = bind_int(params, "limit", default=100, low=1, high=MAX_EVENTS_PAGE)
    schema = request.query_params.get("schema", EVENT_GRID_SCHEMA)
    if schema not in (EVENT_GRID_SCHEMA, CLOUD_EVENTS_SCHEMA):
        raise BadRequestError(
            f"The schema '{schema}' is not supported: use {EVENT_GRID_SCHEMA} or {CLOUD_EVENTS_SCHEMA}."
        )
    return JSONResponse(await runtime.events.published(after, limit, schema))


@router.get("/emulator/eventsubscriptions")
async def get_subscriptions(runtime: RuntimeDep) -> Response:
    """The configured event sinks with their delivery state: cursor, failed attempts, last outcome."""
    return JSONResponse(await runtime.events.subscriptions())


@router.get("/emulator/eventsubscriptions/{name}/validate", openapi_extra=extra(query("id", {"type": "string"})))
async def validate_subscription(name: str, request: Request, runtime: RuntimeDep) -> Response:
    """The ``validationUrl`` of Event Grid's asynchronous handshake: a GET validates the subscription."""
    code = request.query_params.get("id", "")
    if not code or not await runtime.events.confirm_validation(code):
        return PlainTextResponse("The validation code is unknown or was already used.", status_code=404)
    return PlainTextResponse("Webhook successfully validated as a subscription endpoint.")
