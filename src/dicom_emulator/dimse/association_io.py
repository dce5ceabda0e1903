"""How the gateway's associations read PDUs and send C-STORE responses: pynetdicom's classes, made cheaper.

pynetdicom runs two polling threads per association and builds every DIMSE message through pydicom datasets;
at hundreds of C-STORE per second those costs are a large part of a store. The classes here change how the
bytes move, never what is sent: the reader waits in ``select`` instead of sleeping, reads each PDU into one
buffer and writes a received data set into a spool file made ahead of need, and a plain C-STORE-RSP command
set is encoded directly (byte for byte what pynetdicom encodes; tests/unit/test_association_io.py compares
them). Anything else goes through pynetdicom unchanged. Requires pynetdicom's 3.x internals (pyproject pins).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import socket
import ssl
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from pydicom.filewriter import write_file_meta_info as pydicom_write_file_meta_info
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, dimse_messages, evt
from pynetdicom import association as association_module
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket, RequestHandler

from dicom_emulator.spool_files import SpoolFiles

logger = logging.getLogger(__name__)

# How long the association's reader thread waits in select for data, a message to send or a stop
# (GatewayDul wakes it for the last two) before it looks at pynetdicom's timers again.
_READY_WAIT = 0.01
# Largest single read while a PDU's body is collected.
_RECV_CHUNK = 1024 * 1024
# pynetdicom's acceptor reactor sleeps this long between looks at its queues (association.py, _run_reactor);
# here it waits for a wake-up instead, at most _REACTOR_WAIT (its timers and a pause request are seen then).
_REACTOR_POLL = 0.001
_REACTOR_WAIT = 0.02


class GatewaySocket(AssociationSocket):
    """pynetdicom's association socket, reading as data arrives and in large pieces.

    pynetdicom's reader thread (DUL) polls: it sleeps 1 ms whenever the socket had nothing to read, so a PDU
    that arrives meanwhile waits up to 1 ms, twice per C-STORE (command and data set). Here :attr:`ready`
    waits in ``select`` instead, on the socket and on :class:`GatewayDul`'s wake-up socket, and the reader's
    own sleep is turned off (:class:`GatewayRequestHandler`): it wakes as soon as a PDU comes or one is
    queued to send. :meth:`recv` fills one buffer with ``recv_into`` instead of appending 4 KB reads to a
    bytearray (a 500 KB P-DATA PDU was ~130 reads and as many copies).
    """

    @property
    def ready(self) -> bool:
        sock = self.socket
        if sock is None or self._is_connected is False:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # decrypted data select() cannot see
        wake = getattr(self._assoc.dul, "wake_reader", None)
        try:
            readable, _, _ = select.select([sock] if wake is None else [sock, wake], [], [], _READY_WAIT)
        except (OSError, ValueError):
            self.event_queue.put("Evt17")  # transport connection closed, as pynetdicom's own ready does
            return False
        if wake is not None and wake in readable:
            _drain(wake)  # a message to send, or a stop: the reader's loop handles it next
        return sock in readable

    def recv(self, nr_bytes: int) -> bytearray:
        sock = cast(socket.socket, self.socket)
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        filled = 0
        while filled < nr_bytes:
            count = sock.recv_into(view[filled : filled + _RECV_CHUNK])
            if count == 0:  # connection closed: what arrived so far, as pynetdicom's recv returns
                view.release()
                del buffer[filled:]
                return buffer
            filled += count
        view.release()
        return buffer


# PS3.7 E.1: Command Field of a C-STORE-RSP; Command Data Set Type "no data set" (0101H).
_C_STORE_RSP = 0x8001
_NO_DATA_SET = 0x0101
# PS3.8 9.3.5.1: message control header of a PDV holding a whole command (command, last fragment).
_LAST_COMMAND_FRAGMENT = b"\x03"


def _command_element(element: int, value: bytes) -> bytes:
    # Command sets are Implicit VR Little Endian (PS3.7 6.3.1): tag (group 0000), 32-bit length, value.
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def _uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw  # UI values are padded to even length with NUL (PS3.5 6.2)


def store_response_command(primitive: C_STORE) -> bytes | None:
    """The encoded command set of a C-STORE-RSP (PS3.7 9.3.1.2), or None when it needs pynetdicom's encoder.

    Only the plain response: a status, the message ID it answers and the SOP class and instance. One with an
    Error Comment or Offending Element (a failure) goes through pynetdicom.
    """
    if primitive.MessageIDBeingRespondedTo is None or primitive.Status is None:
        return None
    if primitive.ErrorComment is not None or primitive.OffendingElement is not None:
        return None
    body = b""
    if primitive.AffectedSOPClassUID is not None:
        body += _command_element(0x0002, _uid(str(primitive.AffectedSOPClassUID)))
    body += _command_element(0x0100, struct.pack("<H", _C_STORE_RSP))
    body += _command_element(0x0120, struct.pack("<H", primitive.MessageIDBeingRespondedTo))
    body += _command_element(0x0800, struct.pack("<H", _NO_DATA_SET))
    body += _command_element(0x0900, struct.pack("<H", primitive.Status))
    if primitive.AffectedSOPInstanceUID is not None:
        body += _command_element(0x1000, _uid(str(primitive.AffectedSOPInstanceUID)))
    return _command_element(0x0000, struct.pack("<I", len(body))) + body


class GatewayDimse(DIMSEServiceProvider):
    """pynetdicom's DIMSE provider, sending a plain C-STORE-RSP without building a pydicom dataset for it.

    pynetdicom turns every response primitive into a DIMSE message (a pydicom dataset set attribute by
    attribute), encodes it twice (once to measure the group length) and cuts it into PDVs: ~0.25 ms per
    C-STORE-RSP here. Taken only when nothing listens for the sent message (EVT_DIMSE_SENT: pynetdicom's
    debug log, bound with ``--debug``) and the response fits one PDU of the peer's maximum length.
    """

    def send_msg(self, primitive: Any, context_id: int) -> None:
        encoded = store_response_command(primitive) if isinstance(primitive, C_STORE) else None
        limit = self.maximum_pdu_size
        if encoded is None or (limit and len(encoded) + 6 > limit) or self.assoc.get_handlers(evt.EVT_DIMSE_SENT):
            super().send_msg(primitive, context_id)
            return
        pdata = P_DATA()
        pdata.presentation_data_value_list.append((context_id, _LAST_COMMAND_FRAGMENT + encoded))
        self.dul.send_pdu(pdata)


def _drain(wake: socket.socket) -> None:
    # Read the pending wake-up bytes until none is left (BlockingIOError), or the pair is closed (OSError).
    with contextlib.suppress(OSError):
        while wake.recv(4096):
            continue


class GatewayDul(DULServiceProvider):
    """pynetdicom's reader thread (DUL), woken as soon as it has a PDU to send or must stop.

    It waits in :attr:`GatewaySocket.ready` for data from the peer; a response the association thread queues
    (:meth:`send_pdu`) or a stop (:meth:`kill_dul`, :meth:`stop_dul`) writes a byte to a socket pair the same
    ``select`` watches, so neither waits for the next round (pynetdicom polls every 1 ms: half a millisecond
    per C-STORE response on average, and a thousand rounds a second per idle association).
    """

    wake_reader: socket.socket | None = None
    _wake_writer: socket.socket | None = None

    def open_wakeup(self) -> None:
        self.wake_reader, self._wake_writer = socket.socketpair()
        self.wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)

    def _wake(self) -> None:
        writer = self._wake_writer
        if writer is not None:
            # A full buffer (BlockingIOError) means a wake-up is pending already; a closed pair, that the
            # reader has ended: either way there is nothing more to do.
            with contextlib.suppress(OSError):
                writer.send(b"\0")

    def run(self) -> None:
        try:
            super().run()
        finally:
            for sock in (self.wake_reader, self._wake_writer):
                if sock is not None:
                    sock.close()
            # The reactor notices a dead reader at once (ReactorClock), not at its next timed look.
            reactor_wake: threading.Event | None = getattr(self.assoc, "reactor_wake", None)
            if reactor_wake is not None:
                reactor_wake.set()

    def send_pdu(self, primitive: Any) -> None:
        super().send_pdu(primitive)
        if threading.current_thread() is not self:
            # From the reader itself (a C-STORE served inline, MessageQueue) the queue is looked at next round.
            self._wake()

    def kill_dul(self) -> None:
        super().kill_dul()
        self._wake()

    def stop_dul(self) -> bool:
        # pynetdicom's stop_dul, with the wake-up between the flag and the wait.
        if self.state_machine.current_state != "Sta1":
            return False
        self._kill_thread = True
        self._wake()
        while self.is_alive():
            time.sleep(0.001)
        return True


class WakingQueue(queue.Queue[Any]):
    """A queue the association's reactor waits on: every put wakes it (see :class:`ReactorClock`)."""

    def __init__(self, wake: threading.Event) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake.set()


class MessageQueue(WakingQueue):
    """The association's queue of received DIMSE messages, where the reader serves a C-STORE request itself.

    pynetdicom's reader (DUL) decodes a message and queues it; the association's reactor thread takes it, runs
    the service class and queues the response, and the reader sends it: two thread wake-ups per C-STORE, each
    a GIL hand-off (with four associations they were ~12 % of the gateway's Python time and most of its futex
    calls). A C-STORE request that finds the queue empty is served in the reader's thread instead, as
    pynetdicom itself serves an N-EVENT-REPORT request without the reactor (dimse.py): the same
    ``_serve_request`` (context checks, service class, handler, response), in arrival order, and the reader
    sends the response before it reads again. The peer waits for that response before its next request
    (pynetdicom negotiates no asynchronous operations window), so two requests of one association never run
    at once. Anything else, or a message behind queued ones, goes to the reactor as before.
    """

    def __init__(self, wake: threading.Event, assoc: Association) -> None:
        super().__init__(wake)
        self._assoc = assoc

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        context_id, message = item
        assoc = self._assoc
        if (
            isinstance(message, C_STORE)
            and message.is_valid_request
            and threading.current_thread() is assoc.dul
            and assoc.is_established
            and assoc._reactor_checkpoint.is_set()  # nobody paused the reactor to use the association itself
            and not self.qsize()
        ):
            try:
                assoc._serve_request(message, context_id)
            except Exception:
                # What would end the reactor thread ends the association: an A-ABORT, as for an invalid message.
                logger.exception("serving a C-STORE request failed; aborting the association")
                assoc.dul.event_queue.put("Evt19")
            return
        super().put(item, block, timeout)


class ReactorClock:
    """``time`` as pynetdicom's association module sees it, with the acceptor reactor's poll made a wait.

    pynetdicom's reactor sleeps 1 ms, then looks for a decoded message, a release or an abort: a thousand
    rounds a second per association, ~3 % of a core each while idle (four idle associations took 11 % here),
    and up to a millisecond between a message's arrival and its handling. In a gateway association (one with
    ``reactor_wake``) that sleep waits on an event set by every put into the message and user queues and by the
    reader's end; anything else (other sleeps, other threads such as an SCU's) sleeps as before.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        thread = threading.current_thread()
        wake: threading.Event | None = getattr(thread, "reactor_wake", None)
        if wake is None or seconds != _REACTOR_POLL:
            time.sleep(seconds)
            return
        assoc = cast(Association, thread)
        # Clear first, then look: a put after the look sets the event again, so no wake-up is lost.
        wake.clear()
        if assoc.dimse.msg_queue.qsize() or assoc.dul.to_user_queue.qsize() or not assoc.dul.is_alive():
            return
        wake.wait(_REACTOR_WAIT)


def wait_for_messages() -> None:
    """Have pynetdicom's acceptor reactors wait for work instead of polling (:class:`ReactorClock`); process-wide."""
    setattr(association_module, "time", ReactorClock())  # noqa: B010 - a module attribute, typed as a module


class GatewayRequestHandler(RequestHandler):
    """pynetdicom's request handler: :class:`GatewaySocket`, :class:`GatewayDimse` and :class:`GatewayDul`."""

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        # pynetdicom made and registered the socket (queueing the connection event); only its class changes.
        cast(AssociationSocket, assoc.dul.socket).__class__ = GatewaySocket
        assoc.dimse.__class__ = GatewayDimse
        assoc.dul.__class__ = GatewayDul
        cast(GatewayDul, assoc.dul).open_wakeup()
        # The reactor waits for these queues (ReactorClock); both are still empty, the association not started.
        wake = threading.Event()
        assoc.reactor_wake = wake  # type: ignore[attr-defined]
        assoc.dimse.msg_queue = MessageQueue(wake, assoc)
        assoc.dul.to_user_queue = WakingQueue(wake)
        # The reader waits in GatewaySocket.ready (woken by GatewayDul); a sleep between rounds would only add latency.
        assoc.dul._run_loop_delay = 0
        return assoc


# --- received data sets straight into the spool -------------------------------------------------------------------


class SpooledTemporaryFile:
    """What pynetdicom uses of ``NamedTemporaryFile(delete=False)``, on a file of the gateway's spool.

    pynetdicom writes a received data set (``STORE_RECV_CHUNKED_DATASET``) to a temporary file it creates
    itself, in the reader thread, before the first fragment: a new inode in the system temp dir, made while
    the association waits (0.1-0.7 ms on the benchmark machine's disk after deletes) and left there if the
    process dies. Taken from the spool's reserve instead (spool_files.py), the file is made ahead of need,
    already where the store wants it, and swept with the spool after a crash.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.name = str(path)
        self.file: IO[bytes] = open(fd, "wb", buffering=64 * 1024, closefd=True)  # noqa: SIM115 - closed by pynetdicom

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def spooled_temporary_file(*args: Any, **kwargs: Any) -> Any:
    """``NamedTemporaryFile`` for pynetdicom's DIMSE messages: a spool file when a gateway association reads.

    The reader thread of an association is pynetdicom's DUL (a Thread with ``assoc``), whose server carries
    the spool (:class:`GatewayAssociationServer`); any other caller gets the real ``NamedTemporaryFile``.
    """
    assoc = getattr(threading.current_thread(), "assoc", None)
    spool = getattr(getattr(assoc, "_server", None), "spool_files", None)
    if not isinstance(spool, SpoolFiles) or kwargs.get("delete", True) is not False:
        return tempfile.NamedTemporaryFile(*args, **kwargs)  # noqa: SIM115 - the caller owns it
    path, fd = spool.new_file("dimse-", kwargs.get("suffix") or ".tmp")
    try:
        return SpooledTemporaryFile(path, fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise


# --- the file meta of a received data set, encoded directly ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedFileMeta:
    """pynetdicom's ``create_file_meta`` for a received C-STORE data set: the values of its file's group 0002
    (called with the same keywords), no pydicom dataset."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    implementation_uid: str = PYNETDICOM_IMPLEMENTATION_UID
    implementation_version: str = PYNETDICOM_IMPLEMENTATION_VERSION


def _meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    # Group 0002 is Explicit VR Little Endian (PS3.10 7.1): OB has a reserved field and a 32-bit length.
    if vr == b"OB":
        return struct.pack("<HH2sHI", 0x0002, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def encode_file_meta(meta: ReceivedFileMeta) -> bytes:
    """Group 0002 after the preamble and ``DICM``: byte for byte what pydicom's write_file_meta_info writes."""
    version = meta.implementation_version.encode("ascii")
    body = (
        _meta_element(0x0001, b"OB", b"\x00\x01")
        + _meta_element(0x0002, b"UI", _uid(meta.sop_class_uid))
        + _meta_element(0x0003, b"UI", _uid(meta.sop_instance_uid))
        + _meta_element(0x0010, b"UI", _uid(meta.transfer_syntax))
        + _meta_element(0x0012, b"UI", _uid(meta.implementation_uid))
        + _meta_element(0x0013, b"SH", version + b" " if len(version) % 2 else version)
    )
    return _meta_element(0x0000, b"UL", struct.pack("<I", len(body))) + body


def write_received_file_meta(fp: Any, file_meta: Any, enforce_standard: bool = True) -> None:
    """pynetdicom's ``write_file_meta_info`` call for a received data set; anything else goes to pydicom's."""
    if isinstance(file_meta, ReceivedFileMeta):
        fp.write(encode_file_meta(file_meta))
        return
    pydicom_write_file_meta_info(fp, file_meta, enforce_standard=enforce_standard)


def spool_received_data_sets() -> None:
    """Have pynetdicom create the files of received data sets through :func:`spooled_temporary_file`.

    A process-wide switch, like ``STORE_RECV_CHUNKED_DATASET``: the gateway is the process's only pynetdicom
    acceptor, and other threads (an SCU in tests) still get ``NamedTemporaryFile``.
    """
    dimse_messages.NamedTemporaryFile = spooled_temporary_file  # type: ignore[attr-defined]
    # Its file meta, encoded directly: pydicom built and wrote a FileMetaDataset for each (~6 % of a C-STORE's
    # Python time with four associations). dimse_messages uses create_file_meta only for these files.
    setattr(dimse_messages, "create_file_meta", ReceivedFileMeta)  # noqa: B010 - typed as pynetdicom's function
    setattr(dimse_messages, "write_file_meta_info", write_received_file_meta)  # noqa: B010
