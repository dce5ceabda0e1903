"""Started apps for in-process tests: a pool of ``create_app()`` results, and an httpx client through ASGI."""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.datastructures import State

from dicom_emulator.app import create_app
from dicom_emulator.config import Settings
from dicom_emulator.services.auth import DevelopmentIssuer

# Settings that only the lifespan reads (where the data is, which port DIMSE listens on, the blob container,
# event sinks, job intervals, the issuer key): an app built for other values of these is reused. Every other
# field is part of the pool's key. Tests give several of them fresh values each time (a container and a webhook
# URL per test): keyed on them, every such test built its own app (~170 ms).
_PER_RUN_FIELDS = {
    "data_dir",
    "database_url",
    "dimse_port",
    "blob_url",
    "blob_connection_string",
    "blob_container",
    "event_sinks",
    "event_topic",
    "event_service_host",
    "auth_signing_key_path",
    "job_poll_interval",
    "job_lease_seconds",
    "expiry_interval_seconds",
    "reindex_batch_size",
    "reindex_batch_pause",
}


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


def make_signing_key(directory: Path) -> Path:
    """A development issuer key file, as the app creates one in a new data dir."""
    path = directory / "auth-signing-key.pem"
    DevelopmentIssuer.load_key(path)
    return path


def copy_signing_key(key: Path, settings: Settings) -> None:
    """Give a data dir the issuer key the app would otherwise generate at its first start (an RSA key: ~50 ms)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(key, settings.data_dir / key.name)
