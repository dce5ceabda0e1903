"""``serve --workers N``: one supervisor process and N forked worker processes on one store.

Why processes: one Python process runs on one core (the GIL), and ingest (multipart parsing, DICOM
header parsing, metadata JSON) is CPU work. The workers share everything a single process has, through
the layers that are already safe for several processes: one index (SQLite in WAL mode with a lock file
that queues writers, or PostgreSQL), one blob directory, the jobs table with leases, and the change
feed's database-issued sequence.

How: ``cli`` (startup.py) binds the HTTP socket (so ``--port 0`` resolves to one port for all) and
prepares storage once (data directory, migrations, default partition, stale spool files); the
supervisor then forks the workers.
Each worker runs uvicorn and its own app lifespan on the inherited socket, a new connection going to the
worker with the fewest open ones (http_accept.py); the DIMSE socket, bound by serve too, is accepted from by
every worker. Workers die with the supervisor (PR_SET_PDEATHSIG), so a ``kill -9`` of the supervisor is a
crash of the whole emulator and never leaves orphans holding the ports. A worker that crashes later is
restarted; a worker that fails while starting (its app lifespan failed) stops the emulator with its exit
status.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import time
from types import FrameType

from dicom_emulator.config import Settings
from dicom_emulator.http_accept import WorkerServer
from dicom_emulator.worker_shares import ConnectionShares

logger = logging.getLogger("dicom_emulator")

# A worker that exits within this many seconds of its start failed to start: stop rather than loop.
STARTUP_GRACE = 10.0
# How long workers get to finish in-flight requests after SIGTERM before they are killed.
SHUTDOWN_TIMEOUT = 30.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker when the supervisor dies (a crash takes the whole emulator)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: workers then outlive a killed supervisor
        return
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)


def _run_worker(
    settings: Settings,
    sock: socket.socket,
    config_kwargs: dict[str, object],
    shares: ConnectionShares,
    dimse_shares: ConnectionShares,
) -> int:
    import uvicorn

    from dicom_emulator.app import create_app

    config = uvicorn.Config(create_app(settings, dimse_shares=dimse_shares), **config_kwargs)  # type: ignore[arg-type]
    server = WorkerServer(config, sock, shares, settings.worker_index)
    server.run()
    # uvicorn leaves started=False when the lifespan failed (e.g. the DIMSE port was taken).
    return 0 if server.started else 3


class Supervisor:
    """Forks, watches and stops the worker processes."""

    def __init__(self, settings: Settings, config_kwargs: dict[str, object]) -> None:
        self.settings = settings
        self.config_kwargs = config_kwargs
        self.count = settings.resolved_workers
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (worker index, start time)
        self.stopping = False
        # Shared with the forked workers: each one's open HTTP connections, for balanced accepts (http_accept.py).
        self.shares = ConnectionShares(self.count)
        # The same for DIMSE associations (dimse/gateway.py).
        self.dimse_shares = ConnectionShares(self.count)

    def run(self, sock: socket.socket) -> int:
        """Serve on ``sock`` (bound and listening; storage already prepared) until SIGTERM/SIGINT."""
        port = sock.getsockname()[1]
        self.settings = self.settings.model_copy(update={"port": port, "migrate_on_start": False})
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for index in range(self.count):
            self._spawn(index, sock)
        logger.info("supervisor %d: %d workers on http://%s:%d", os.getpid(), self.count, self.settings.host, port)
        status = self._watch(sock)
        sock.close()
        return status

    def _spawn(self, index: int, sock: socket.socket) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _die_with_parent(parent)
                settings = self.settings.model_copy(update={"worker_index": index})
                status = _run_worker(settings, sock, self.config_kwargs, self.shares, self.dimse_shares)
            except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's code
                logging.getLogger(__name__).exception("worker %d failed", index)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        self.children[pid] = (index, time.monotonic())

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            self._signal_children(signal.SIGTERM)

    def _signal_children(self, signum: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _watch(self, sock: socket.socket) -> int:
        status = 0
        deadline: float | None = None
        while self.children:
            if self.stopping and deadline is None:
                deadline = time.monotonic() + SHUTDOWN_TIMEOUT
            try:
                pid, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid == 0:
                if deadline is not None and time.monotonic() > deadline:
                    self._signal_children(signal.SIGKILL)
                time.sleep(0.1)
                continue
            index, started = self.children.pop(pid)
            code = os.waitstatus_to_exitcode(raw)
            if self.stopping:
                continue
            if time.monotonic() - started < STARTUP_GRACE:
                logger.error("worker %d exited while starting (status %d); stopping", index, code)
                status = code if code > 0 else 1
                self.stopping = True
                self._signal_children(signal.SIGTERM)
                continue
            logger.warning("worker %d (pid %d) exited with status %d; restarting it", index, pid, code)
            self._spawn(index, sock)
        return status


def serve_workers(settings: Settings, config_kwargs: dict[str, object], sock: socket.socket) -> int:
    """Run ``settings.resolved_workers`` worker processes on ``sock`` until SIGTERM/SIGINT; the exit status."""
    return Supervisor(settings, config_kwargs).run(sock)
