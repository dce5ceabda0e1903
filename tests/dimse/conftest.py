"""The app in-process (through its lifespan) with the DIMSE gateway on a free port, and an httpx client."""

from __future__ import annotations

import functools
import socket
import socketserver
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from pynetdicom.transport import AddressInformation, AssociationServer, AssociationSocket, ThreadedAssociationServer

from dicom_emulator.config import Settings
from tests.apps import APP_POOL, asgi_client
from tests.e2e.server import free_port

_START_ATTEMPTS = 3
# Two pynetdicom latencies that only cost time (tests only; what goes over the wire is unchanged):
# * its acceptor thread runs socketserver's ``serve_forever()``, whose select() wakes every 0.5 s to see whether
#   shutdown() was asked for: every app stop waited ~0.45 s for it, a minute over the DIMSE tests. A short poll
#   makes the stop immediate; accepting associations is unaffected (select wakes on a connect);
# * neither side sets TCP_NODELAY, so Nagle's algorithm holds back a small PDU until the peer's delayed ACK
#   (~40 ms) whenever a command and its dataset go out as two writes: a C-STORE of 4 instances took ~260 ms,
#   a C-FIND ~115 ms (with TCP_NODELAY on both ends: ~80 ms and ~35 ms).
_SERVER_POLL_INTERVAL = 0.01


def _no_delay(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@pytest.fixture(autouse=True, scope="session")
def _fast_pynetdicom() -> Iterator[None]:
    fast_serve = functools.partialmethod(socketserver.BaseServer.serve_forever, poll_interval=_SERVER_POLL_INTERVAL)
    accept = AssociationServer.get_request
    create_socket = AssociationSocket._create_socket

    def get_request(self: AssociationServer) -> tuple[socket.socket, tuple[str, int]]:
        sock, address = accept(self)
        return _no_delay(sock), address

    def _create_socket(self: AssociationSocket, address: AddressInformation) -> socket.socket:
        return _no_delay(create_socket(self, address))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ThreadedAssociationServer, "serve_forever", fast_serve)
        patch.setattr(AssociationServer, "get_request", get_request)
        patch.setattr(AssociationSocket, "_create_socket", _create_socket)
        yield


@dataclass
class DimseApp:
    """A started app: its DIMSE port and an HTTP client through ASGI."""

    app: FastAPI
    port: int
    client: httpx.AsyncClient


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[DimseApp]:
    """The app with ``dimse_port`` set; the port is probed free, and the start retried if it was taken."""
    async with AsyncExitStack() as stack:
        for attempt in range(_START_ATTEMPTS):
            port = free_port()
            try:
                app = await stack.enter_async_context(
                    APP_POOL.running(settings.model_copy(update={"dimse_port": port}))
                )
            except OSError:
                if attempt == _START_ATTEMPTS - 1:
                    raise
                continue
            break
        async with asgi_client(app) as client:
            yield DimseApp(app, port, client)


@pytest.fixture
async def dimse(settings: Settings) -> AsyncIterator[DimseApp]:
    """The emulator (SQLite, and PostgreSQL when reachable) with its DIMSE gateway started."""
    async with started(settings) as running:
        yield running


@pytest.fixture(scope="module")
async def module_dimse(module_settings: Settings) -> AsyncIterator[DimseApp]:
    """One started emulator for a whole module (per backend): only for tests that leave the store as they found it."""
    async with started(module_settings) as running:
        yield running
