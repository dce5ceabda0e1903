"""Run the app's async services from pynetdicom's association threads.

The domain services are async and bound to the app's event loop (their database engine and sessions belong to
it), so a DIMSE handler never runs them itself: :class:`LoopBridge` submits the coroutine to that loop with
``asyncio.run_coroutine_threadsafe`` and blocks the association thread until it finishes. The loop is never
blocked by DIMSE work. Its own module so that the gateway (which creates it) and the handlers (which use it)
do not import each other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from dicom_emulator.errors import ServiceUnavailableError

T = TypeVar("T")

# How long a handler waits for a service call on the loop before answering "out of resources".
HANDLER_TIMEOUT = 300.0  # seconds


class LoopBridge:
    """Run coroutines on the app's event loop from pynetdicom's threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = HANDLER_TIMEOUT) -> None:
        self.loop = loop
        self.timeout = timeout

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Submit ``coro`` to the loop and wait for its result (its exception is re-raised here)."""
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError as exc:  # the loop is closed: the app is shutting down
            coro.close()
            raise ServiceUnavailableError("The emulator is shutting down.") from exc
        try:
            return future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
