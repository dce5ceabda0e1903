"""Domain exceptions.

Nothing below the routers raises HTTP types: each condition is one class here, mapped to the wire in
exactly two tables (``api/errors.py`` for HTTP, ``dimse/`` for DIMSE statuses). Messages are Azure's
own strings (azure-behaviour §1.4, §3.7) because clients and tests compare them.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Root of every domain error; ``message`` is what the client sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(EmulatorError):
    """Invalid input: validation, argument or format errors (HTTP 400)."""


class InvalidUidError(BadRequestError):
    """A UID in the route or body is not a DICOM identifier (azure-behaviour §1.4)."""


class QueryValidationError(BadRequestError):
    """A QIDO/change-feed/EQT query parameter is invalid."""


class NotFoundError(EmulatorError):
    """The addressed resource does not exist (HTTP 404)."""


class NotAcceptableError(EmulatorError):
    """Accept negotiation, transcoding or rendering failed (HTTP 406)."""


class ConflictError(EmulatorError):
    """Already exists / existing operation (HTTP 409)."""


class PayloadTooLargeError(EmulatorError):
    """A STOW part exceeded the size limit (HTTP 413)."""


class UnsupportedMediaTypeError(EmulatorError):
    """Content-Type not supported (HTTP 415)."""


class ServiceUnavailableError(EmulatorError):
    """Azure's data-store failure branch (HTTP 503)."""


class NotEmulatedError(EmulatorError):
    """A feature Azure offers that this emulator does not (HTTP 501, named in the README)."""


class InstanceAlreadyExistsError(ConflictError):
    """The same Study/Series/SOP Instance UIDs are already stored (STOW failure 45070)."""
