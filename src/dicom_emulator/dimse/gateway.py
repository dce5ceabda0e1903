"""The DIMSE gateway: a pynetdicom Application Entity started and stopped by the app lifespan.

Threading model: pynetdicom accepts associations on its own server thread and runs each association, and so
every event handler, on a thread of its own. The handlers reach the async services on the app's event loop
through :class:`~dicom_emulator.dimse.bridge.LoopBridge`, so HTTP and DIMSE requests share one engine, one blob
store and one change feed. Shutdown (``server.shutdown()`` joins the server thread and aborts associations)
runs in a worker thread, so handlers waiting on the loop can still finish meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from typing import Any, cast

from pydicom.uid import (
    JPEG2000,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom import _config as pynetdicom_config
from pynetdicom.events import EventHandlerType
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # names generated at import time, unseen by mypy
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from dicom_emulator.dimse import handlers
from dicom_emulator.dimse.association_io import GatewayRequestHandler, spool_received_data_sets, wait_for_messages
from dicom_emulator.dimse.bridge import LoopBridge
from dicom_emulator.runtime import Runtime
from dicom_emulator.spool_files import SpoolFiles
from dicom_emulator.worker_shares import ConnectionShares, Deferral

logger = logging.getLogger(__name__)

MAX_ASSOCIATIONS = 32  # concurrent associations accepted
MAX_PDU_SIZE = 1024 * 1024

UNCOMPRESSED_TRANSFER_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian]
# C-STORE accepts the data as sent (never transcoded on store): uncompressed plus the common compressed syntaxes.
STORAGE_TRANSFER_SYNTAXES = [
    *UNCOMPRESSED_TRANSFER_SYNTAXES,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]


def build_ae(ae_title: str) -> AE:
    """The Application Entity and the presentation contexts it accepts as SCP."""
    # Received C-STORE data sets go to a file as they arrive instead of into memory (handlers._spool); a
    # process-wide pynetdicom setting, and this process's only Storage SCP is this one.
    pynetdicom_config.STORE_RECV_CHUNKED_DATASET = True
    spool_received_data_sets()  # ...in this process's spool (association_io.SpooledTemporaryFile)
    wait_for_messages()  # associations wait for work instead of polling every millisecond (association_io.ReactorClock)
    ae = AE(ae_title=ae_title)
    ae.maximum_associations = MAX_ASSOCIATIONS
    # Receive PDUs of up to 1 MiB: a peer then sends a 500 KB instance in one P-DATA PDU instead of ~32 of
    # 16 KB, and pynetdicom (pure Python) pays its per-PDU decoding once (PS3.8 9.3.1, Maximum Length).
    ae.maximum_pdu_size = MAX_PDU_SIZE
    ae.add_supported_context(Verification)
    for context in AllStoragePresentationContexts:
        # Storage SCP for C-STORE; the SCP role may also be granted to a C-GET requestor (role selection,
        # PS3.7 D.3.3.4), which receives the C-STORE sub-operations on the same association.
        abstract_syntax = cast(UID, context.abstract_syntax)  # set in every predefined context
        ae.add_supported_context(abstract_syntax, STORAGE_TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
    for sop_class in (
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelGet,
        ModalityWorklistInformationFind,
        ModalityPerformedProcedureStep,
    ):
        ae.add_supported_context(sop_class, UNCOMPRESSED_TRANSFER_SYNTAXES)
    return ae


def _log_association(event: evt.Event) -> None:
    requestor = event.assoc.requestor
    logger.info("DIMSE association from %s (%s:%s)", requestor.ae_title, requestor.address, requestor.port)


class GatewayAssociationServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with TCP_NODELAY and :class:`GatewayRequestHandler` on each association.

    A C-STORE-RSP or C-FIND-RSP is a small write, and with Nagle's algorithm on it can wait for the peer's
    delayed ACK (~40 ms per message on Linux).
    """

    # Where the associations' received data sets are written (association_io.spooled_temporary_file).
    spool_files: SpoolFiles | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("request_handler", GatewayRequestHandler)
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


class SharedSocketAssociationServer(GatewayAssociationServer):
    """Accepts from a listening socket ``serve`` bound before forking the workers (startup.bind_dimse).

    All workers wait on it; each new association wakes them all and one wins ``accept``. The socket is
    non-blocking so the others get ``BlockingIOError``, which socketserver treats as no request, instead of
    blocking their acceptor thread until the next association.

    Balanced like HTTP (worker_shares.py): a worker holding more open associations than another leaves a new
    one to it for a moment. Without it four storescu associations landed 3+1 on two workers, three of them
    sharing one process's GIL while the other core idled.
    """

    listen_fd = -1
    shares: ConnectionShares | None = None
    worker_index = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open = 0  # accepted connections not yet closed (EVT_CONN_CLOSE, see connection_closed)
        self._open_lock = threading.Lock()
        self._deferral = Deferral(self.shares, self.worker_index) if self.shares is not None else None

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        if self._deferral is not None:
            self._publish()
            if self._deferral.defer(self._open):
                raise BlockingIOError("left to a less loaded worker")  # socketserver: no request this time
            self._deferral.reset()
        request = super().get_request()
        self._count(+1)
        return request

    def connection_closed(self, _event: evt.Event) -> None:
        self._count(-1)

    def service_actions(self) -> None:
        # Called by serve_forever between polls: the count others read stays fresh while no association comes.
        super().service_actions()
        self._publish()

    def _count(self, change: int) -> None:
        with self._open_lock:
            self._open = max(0, self._open + change)
        self._publish()

    def _publish(self) -> None:
        if self.shares is not None:
            self.shares.publish(self.worker_index, self._open)

    def server_bind(self) -> None:
        assert self.socket is not None
        self.socket.close()
        self.socket = socket.socket(fileno=os.dup(self.listen_fd))
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Already listening (bound and listened on by serve)."""

    def server_close(self) -> None:
        # Only this worker's descriptor: a shutdown() of the shared socket would stop the other workers too.
        assert self.socket is not None
        self.socket.close()


class DimseGateway:
    """The DIMSE listener of one app: ``await start()`` in the lifespan, ``await stop()`` when it ends."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        host: str,
        port: int,
        ae_title: str,
        listen_fd: int | None = None,
        shares: ConnectionShares | None = None,
        worker_index: int = 0,
    ) -> None:
        self.runtime = runtime
        self.host = host
        self.port = port
        self.ae_title = ae_title
        self.listen_fd = listen_fd
        self.shares = shares
        self.worker_index = worker_index
        self._ae: AE | None = None
        self._server: ThreadedAssociationServer | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (the bound port when ``port`` was 0)."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    async def start(self) -> None:
        """Bind and start accepting associations; raises ``OSError`` when the port is taken."""
        debug = self.runtime.settings.log_level.lower() == "debug"
        if not debug:
            # pynetdicom logs every PDU exchange at INFO; keep its warnings only.
            logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        # pynetdicom's own handlers that describe each PDU and DIMSE message for its log: with --debug only
        # (they format every message, logged or not; a process-wide setting, and this is its only AE).
        pynetdicom_config.LOG_HANDLER_LEVEL = "standard" if debug else "none"
        context = handlers.HandlerContext(
            runtime=self.runtime,
            bridge=LoopBridge(asyncio.get_running_loop()),
            ae_title=self.ae_title,
        )
        bound = [context]
        evt_handlers: list[EventHandlerType] = [
            (evt.EVT_ACCEPTED, _log_association),
            (evt.EVT_CONN_CLOSE, self._connection_closed),
            (evt.EVT_C_ECHO, handlers.handle_echo, bound),
            (evt.EVT_C_STORE, handlers.handle_store, bound),
            (evt.EVT_C_FIND, handlers.handle_find, bound),
            (evt.EVT_C_GET, handlers.handle_get, bound),
            (evt.EVT_N_CREATE, handlers.handle_n_create, bound),
            (evt.EVT_N_SET, handlers.handle_n_set, bound),
        ]
        ae = build_ae(self.ae_title)
        server_class: type[GatewayAssociationServer] = GatewayAssociationServer
        if self.listen_fd is not None:
            server_class = type(
                "SharedSocketServer",
                (SharedSocketAssociationServer,),
                {"listen_fd": self.listen_fd, "shares": self.shares, "worker_index": self.worker_index},
            )
        server = cast(
            GatewayAssociationServer,
            ae.make_server((self.host, self.port), evt_handlers=evt_handlers, server_class=server_class),
        )
        server.spool_files = self.runtime.spool_files  # received data sets are written there (association_io)
        threading.Thread(target=server.serve_forever, name="AcceptorServer", daemon=True).start()
        ae._servers.append(server)  # so that ae.shutdown() stops it, as it does for ae.start_server's servers
        self._server = server
        self._ae = ae
        host, port = self.address
        logger.info("DIMSE gateway %s listening on %s:%d", self.ae_title, host, port)

    def _connection_closed(self, event: evt.Event) -> None:
        server = self._server
        if isinstance(server, SharedSocketAssociationServer):
            server.connection_closed(event)

    async def stop(self) -> None:
        """Abort open associations and close the socket (off the loop: handlers may be waiting on it)."""
        ae, self._ae, self._server = self._ae, None, None
        if ae is not None:
            await asyncio.to_thread(ae.shutdown)
            logger.info("DIMSE gateway stopped")
