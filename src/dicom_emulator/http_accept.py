"""Balanced HTTP accepts for ``serve --workers N``: each new connection goes to the worker holding the fewest.

Why: the workers share one listening socket. Left to the event loop (uvloop/libuv, like asyncio), the first
worker to wake accepts every pending connection at once, so the four keep-alive connections of a 4-client
ingest often all landed on one worker while the other core idled (benchmarks/README.md, session 4, run B).
Connections here are accepted by one thread per worker, which first compares the worker's open connections
with the others' (a counter per worker in memory the supervisor shares before forking) and leaves the
connection to a less loaded worker for a moment; a worker that does not take it in time (busy, restarting)
does not hold it up. Accepted sockets are handed to the worker's event loop, which serves them with uvicorn's
protocol exactly as if uvicorn had accepted them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import threading
import time
from typing import Any

import uvicorn

from dicom_emulator.worker_shares import ConnectionShares, Deferral

logger = logging.getLogger(__name__)

_POLL_MS = 100  # the acceptor republishes its count (and notices shutdown) at least this often


class BalancedAcceptor:
    """A thread that accepts from the shared listening socket and hands connections to ``loop``."""

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        server: WorkerServer,
        shares: ConnectionShares,
        index: int,
    ) -> None:
        # A descriptor of this worker's own: closing it on shutdown leaves the other workers' untouched.
        self._sock = socket.socket(fileno=sock.dup().detach())
        # Non-blocking for every worker (the flag belongs to the shared open file): an accept another worker
        # won answers BlockingIOError instead of blocking this thread.
        self._sock.setblocking(False)
        self._loop = loop
        self._server = server
        self._shares = shares
        self._index = index
        self._handing = 0  # accepted, not yet connected to a protocol by the event loop
        self._handing_lock = threading.Lock()  # changed by this thread and by the loop's
        self._stopped = threading.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(target=self._run, name=f"http-accept-{index}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=1.0)
        self._sock.close()

    def _open(self) -> int:
        return len(self._server.server_state.connections) + self._handing

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        deferral = Deferral(self._shares, self._index)
        while not self._stopped.is_set():
            self._shares.publish(self._index, self._open())
            if not poller.poll(_POLL_MS):
                deferral.reset()
                continue
            mine = self._open()
            if deferral.defer(mine):
                continue
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue  # another worker took it
            except OSError as exc:  # e.g. out of file descriptors: wait rather than spin
                logger.warning("accepting an HTTP connection failed: %s", exc)
                time.sleep(0.1)
                continue
            deferral.reset()
            conn.setblocking(False)
            with self._handing_lock:
                self._handing += 1
            self._shares.publish(self._index, mine + 1)
            try:
                self._loop.call_soon_threadsafe(self._connect, conn)
            except RuntimeError:  # the loop is closed: shutting down
                conn.close()
                return

    def _connect(self, conn: socket.socket) -> None:
        task = self._loop.create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        config = self._server.config
        try:
            await self._loop.connect_accepted_socket(self._server.create_protocol, conn, ssl=config.ssl)
        except (OSError, ValueError) as exc:  # e.g. a failed TLS handshake: this connection only
            logger.debug("an HTTP connection failed before its first request: %s", exc)
            with contextlib.suppress(OSError):
                conn.close()
        finally:
            with self._handing_lock:
                self._handing -= 1


class WorkerServer(uvicorn.Server):
    """uvicorn's server for one worker, its connections accepted by a :class:`BalancedAcceptor`."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, shares: ConnectionShares, index: int) -> None:
        super().__init__(config)
        self._listen_sock = sock
        self._shares = shares
        self._index = index
        self._acceptor: BalancedAcceptor | None = None

    def create_protocol(self, _loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
        """The protocol uvicorn itself would make for an accepted connection (uvicorn.Server.startup)."""
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
        )

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # No sockets for uvicorn to listen on: the lifespan starts, then this worker's acceptor does.
        await super().startup(sockets=[])
        self._acceptor = BalancedAcceptor(
            self._listen_sock, asyncio.get_running_loop(), self, self._shares, self._index
        )
        self._acceptor.start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._acceptor is not None:
            await asyncio.to_thread(self._acceptor.stop)
        await super().shutdown(sockets=None)
