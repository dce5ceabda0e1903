"""Started apps for in-process tests: a pool of ``create_app()`` results, and an httpx client through ASGI."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.datastructures import State

from dicom_emulator.app import create_app
from dicom_emulator.config import Settings

# Settings that only the lifespan reads (where the data is, which port DIMSE listens on): an app built for
# other values of these is reused. Every other field is part of the pool's key.
_PER_RUN_FIELDS = {"data_dir", "database_url", "dimse_port"}


class AppPool:
    """Reuse ``create_app()`` results across tests; each use runs the app's lifespan from scratch.

    The app's lifespan reads the ``Settings`` object it was created with; before each use that object is given
    the borrowing test's values (only ``_PER_RUN_FIELDS`` can differ). An app is borrowed by one test at a time.
    """

    def __init__(self) -> None:
        self._idle: defaultdict[str, list[tuple[FastAPI, Settings]]] = defaultdict(list)

    @asynccontextmanager
    async def running(self, settings: Settings) -> AsyncIterator[FastAPI]:
        """The app started (lifespan entered) for ``settings``, stopped afterwards."""
        key = settings.model_dump_json(exclude=_PER_RUN_FIELDS)
        idle = self._idle[key]
        if idle:
            app, own = idle.pop()
            for name in type(settings).model_fields:
                setattr(own, name, getattr(settings, name))
        else:
            own = settings.model_copy()
            app = create_app(own)
        async with LifespanManager(app):
            yield app
        app.state = State()  # drop the stopped runtime (an in-memory blob store, caches) until the next use
        idle.append((app, own))


APP_POOL = AppPool()


@asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
