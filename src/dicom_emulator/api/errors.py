"""The one table from domain exceptions to HTTP (azure-behaviour §1.4 exception → status map)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse, Response

from dicom_emulator.errors import (
    BadRequestError,
    ConflictError,
    EmulatorError,
    NotAcceptableError,
    NotEmulatedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
)

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[EmulatorError], int], ...] = (
    (BadRequestError, 400),
    (NotFoundError, 404),
    (NotAcceptableError, 406),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (NotEmulatedError, 501),
    (ServiceUnavailableError, 503),
)
INTERNAL_ERROR = (
    "The server encountered an internal error. Please retry the request. If the issue persists, please contact support."
)


def status_for(exc: EmulatorError) -> int:
    for cls, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return code
    return 500


def error_response(status: int, message: str) -> Response:
    # Azure answers errors with the bare message as text/plain (ASP.NET ContentResult), not JSON;
    # an empty message stands for a bare status code result (no body, no Content-Type).
    if not message:
        return Response(status_code=status)
    return PlainTextResponse(message, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(EmulatorError)
    async def _domain(_: Request, exc: EmulatorError) -> Response:
        return error_response(status_for(exc), exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return error_response(400, "The request is invalid.")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        # Unknown routes and methods: empty bodies as ASP.NET gives them.
        return Response(status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _disconnected(request: Request, _: ClientDisconnect) -> Response:
        # A client that goes away mid-body (a cancelled upload) is a normal event: one INFO line, no
        # traceback. Whatever was spooled is already removed (api/multipart.py); nobody reads this answer.
        logger.info("client disconnected before the request body was complete: %s %s", request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        return error_response(500, INTERNAL_ERROR)
