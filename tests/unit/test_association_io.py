"""association_io: the socket (waits in select, reads a PDU into one buffer) and the C-STORE-RSP encoder."""

from __future__ import annotations

import io
import os
import queue
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta

from dicom_emulator.dimse.association_io import (
    GatewayDul,
    GatewaySocket,
    MessageQueue,
    ReactorClock,
    ReceivedFileMeta,
    SpooledTemporaryFile,
    WakingQueue,
    spooled_temporary_file,
    store_response_command,
    write_received_file_meta,
)
from dicom_emulator.spool_files import SpoolFiles


@pytest.fixture
def pair() -> Any:
    ours, peer = socket.socketpair()
    events: queue.Queue[str] = queue.Queue()
    assoc = SimpleNamespace(dul=SimpleNamespace(event_queue=events))
    wrapped = GatewaySocket(cast(Any, assoc), client_socket=ours)
    assert events.get_nowait() == "Evt5"  # the connection indication pynetdicom's socket queues
    yield wrapped, peer, events
    peer.close()
    ours.close()


def test_recv_collects_exactly_the_bytes_asked_for_across_many_writes(pair: Any) -> None:
    wrapped, peer, _ = pair
    payload = bytes(range(256)) * 12_000  # 3 MB: more than one read, more than the socket buffer

    def send() -> None:
        for start in range(0, len(payload), 70_000):
            peer.sendall(payload[start : start + 70_000])

    sender = threading.Thread(target=send)
    sender.start()
    got = wrapped.recv(len(payload) - 10)
    rest = wrapped.recv(10)
    sender.join()
    assert isinstance(got, bytearray)
    assert bytes(got) + bytes(rest) == payload


def test_recv_returns_what_arrived_when_the_peer_closes(pair: Any) -> None:
    wrapped, peer, _ = pair
    peer.sendall(b"abcdef")
    peer.close()
    assert wrapped.recv(100) == bytearray(b"abcdef")


def test_ready_waits_briefly_and_wakes_on_data(pair: Any) -> None:
    wrapped, peer, _ = pair
    assert wrapped.ready is False  # nothing to read: False after the short wait
    peer.sendall(b"x")
    assert wrapped.ready is True


def test_ready_on_a_closed_socket_is_false_and_reports_the_close(pair: Any) -> None:
    wrapped, _peer, events = pair
    wrapped.socket.close()
    assert wrapped.ready is False
    assert events.get_nowait() == "Evt17"


def test_a_waiting_ready_returns_as_soon_as_data_comes(pair: Any) -> None:
    wrapped, peer, _ = pair
    # Not a timing assertion on the emulator: the wait is select's, and data must end it (no sleep first).
    threading.Timer(0.0005, peer.sendall, args=(b"y",)).start()
    deadline = time.monotonic() + 5
    while not wrapped.ready:
        assert time.monotonic() < deadline
    assert wrapped.recv(1) == bytearray(b"y")


# --- C-STORE-RSP encoding ---------------------------------------------------------------------------------------


def _response(**fields: Any) -> Any:
    primitive = C_STORE()
    for name, value in fields.items():
        setattr(primitive, name, value)
    return primitive


def _pynetdicom_bytes(primitive: Any) -> bytes:
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    (pdata,) = list(message.encode_msg(1, 16382))
    ((context_id, pdv),) = pdata.presentation_data_value_list
    assert context_id == 1 and pdv[:1] == b"\x03"
    return bytes(pdv[1:])


@pytest.mark.parametrize(
    "fields",
    [
        {"Status": 0x0000},
        {"Status": 0xB006},
        {"Status": 0xA700},
        {"Status": 0x0000, "AffectedSOPClassUID": None},
        {"Status": 0x0000, "AffectedSOPInstanceUID": "1.2.3.4"},  # even length: no padding
        {"Status": 0x0000, "MessageIDBeingRespondedTo": 65535},
    ],
    ids=["success", "warning", "failure-without-comment", "no-sop-class", "even-uid", "largest-message-id"],
)
def test_store_response_is_byte_for_byte_pynetdicoms(fields: dict[str, Any]) -> None:
    base = {
        "MessageIDBeingRespondedTo": 7,
        "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
        "AffectedSOPInstanceUID": "1.2.826.0.1.3680043.8.498.4586570442759060642058727350278544325",  # odd length
    }
    primitive = _response(**{**base, **fields})
    assert store_response_command(primitive) == _pynetdicom_bytes(primitive)


@pytest.mark.parametrize(
    "fields",
    [
        {"Status": 0xA900, "ErrorComment": "DICOM100: invalid"},
        {"Status": 0xC000, "OffendingElement": [0x00100020]},
        {"Status": None},
        {"MessageIDBeingRespondedTo": None},  # a request, not a response
    ],
    ids=["error-comment", "offending-element", "no-status", "request"],
)
def test_other_store_messages_are_left_to_pynetdicom(fields: dict[str, Any]) -> None:
    primitive = _response(**{"MessageIDBeingRespondedTo": 7, "Status": 0, "AffectedSOPInstanceUID": "1.2.3", **fields})
    assert store_response_command(primitive) is None


# --- received data sets in the spool --------------------------------------------------------------------------


def test_a_gateway_reader_thread_gets_a_spool_file_and_others_the_real_temporary_file(tmp_path: Path) -> None:
    spool = SpoolFiles(tmp_path)
    reader = threading.Thread()
    reader.assoc = SimpleNamespace(_server=SimpleNamespace(spool_files=spool))  # type: ignore[attr-defined]
    made: list[Any] = []
    reader.run = lambda: made.append(spooled_temporary_file(delete=False, mode="wb", suffix=".dcm"))  # type: ignore[method-assign]
    reader.start()
    reader.join()
    (spooled,) = made
    assert isinstance(spooled, SpooledTemporaryFile)
    assert Path(spooled.name).parent == tmp_path and spooled.name.endswith(".dcm")
    spooled.write(b"\0" * 128 + b"DICM")
    spooled.file.flush()  # pynetdicom flushes after each fragment
    spooled.close()
    assert Path(spooled.name).read_bytes() == b"\0" * 128 + b"DICM"
    spool.close()

    elsewhere = spooled_temporary_file(delete=False, mode="wb", suffix=".dcm")  # not an association's reader
    try:
        assert not isinstance(elsewhere, SpooledTemporaryFile)
        assert Path(elsewhere.name).parent == Path(tempfile.gettempdir())
    finally:
        elsewhere.close()
        os.unlink(elsewhere.name)


# --- waking the reader --------------------------------------------------------------------------------------------


def test_a_queued_pdu_or_a_stop_wakes_the_reader_waiting_in_select() -> None:
    dul = object.__new__(GatewayDul)  # only the wake-up part; pynetdicom's own state is not needed here
    dul.open_wakeup()
    ours, peer = socket.socketpair()
    try:
        assoc = SimpleNamespace(dul=SimpleNamespace(event_queue=queue.Queue(), wake_reader=dul.wake_reader))
        wrapped = GatewaySocket(cast(Any, assoc), client_socket=ours)
        dul._wake()
        dul._wake()  # two wake-ups before the reader looks: one round, both drained
        assert wrapped.ready is False  # woken, and no data from the peer
        assert dul.wake_reader is not None
        with pytest.raises(BlockingIOError):
            dul.wake_reader.recv(1)  # drained
        peer.sendall(b"z")
        assert wrapped.ready is True  # data still wins
    finally:
        for sock in (ours, peer, dul.wake_reader, dul._wake_writer):
            if sock is not None:
                sock.close()


class _RecordingEvent:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def clear(self) -> None:
        self.calls.append("clear")

    def wait(self, timeout: float) -> bool:
        self.calls.append(f"wait {timeout}")
        return False


class _FakeAssociation(threading.Thread):
    """What ReactorClock looks at: the wake event, the two queues and whether the reader lives."""

    def __init__(self, *, message: bool = False, user: bool = False, reader_alive: bool = True) -> None:
        super().__init__(target=self._poll, daemon=True)
        self.reactor_wake = _RecordingEvent()
        self.dimse = SimpleNamespace(msg_queue=queue.Queue())
        self.dul = SimpleNamespace(to_user_queue=queue.Queue(), is_alive=lambda: reader_alive)
        if message:
            self.dimse.msg_queue.put((1, "C-STORE-RQ"))
        if user:
            self.dul.to_user_queue.put("A-RELEASE-RQ")

    def _poll(self) -> None:
        ReactorClock().sleep(0.001)  # what pynetdicom's acceptor reactor calls between rounds
        ReactorClock().sleep(0.0001)  # any other sleep: a plain time.sleep


@pytest.mark.parametrize(
    ("state", "calls"),
    [
        ({}, ["clear", "wait 0.02"]),  # nothing to do: wait for a put (or 20 ms)
        ({"message": True}, ["clear"]),  # a decoded message is waiting: straight back to the reactor
        ({"user": True}, ["clear"]),  # a release or abort from the peer
        ({"reader_alive": False}, ["clear"]),  # the reader ended
    ],
)
def test_the_reactor_poll_waits_only_when_there_is_nothing_to_do(state: dict[str, bool], calls: list[str]) -> None:
    assoc = _FakeAssociation(**state)
    assoc.start()
    assoc.join(5)
    assert not assoc.is_alive()
    assert assoc.reactor_wake.calls == calls
    assert ReactorClock().monotonic is time.monotonic  # the rest of ``time`` passes through


def test_a_queue_put_wakes_the_reactor() -> None:
    wake = threading.Event()
    waking: queue.Queue[Any] = WakingQueue(wake)
    waking.put("message")
    assert wake.is_set() and waking.get_nowait() == "message"


def _store_request(message_id: int = 1) -> C_STORE:
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    request.AffectedSOPInstanceUID = "1.2.3.4"
    request.Priority = 2
    request.DataSet = io.BytesIO(b"data set")
    return request


class _ServingAssociation:
    """What MessageQueue reads of an association: its reader thread, state, checkpoint and _serve_request."""

    def __init__(self, *, established: bool = True, paused: bool = False) -> None:
        self.dul: threading.Thread | None = None
        self.is_established = established
        self._reactor_checkpoint = threading.Event()
        if not paused:
            self._reactor_checkpoint.set()
        self.served: list[tuple[Any, int, str]] = []

    def _serve_request(self, message: Any, context_id: int) -> None:
        self.served.append((message, context_id, threading.current_thread().name))


def _put_from_reader(assoc: _ServingAssociation, messages: queue.Queue[Any], *items: Any) -> None:
    reader = threading.Thread(target=lambda: [messages.put(item) for item in items], name="reader")
    assoc.dul = reader
    reader.start()
    reader.join(5)


def test_the_reader_serves_a_c_store_request_itself_when_nothing_is_queued() -> None:
    assoc = _ServingAssociation()
    wake = threading.Event()
    messages = MessageQueue(wake, cast(Any, assoc))
    request = _store_request()
    _put_from_reader(assoc, messages, (3, request))
    assert assoc.served == [(request, 3, "reader")]
    assert messages.qsize() == 0 and not wake.is_set()


def test_other_messages_and_other_threads_still_go_to_the_reactor() -> None:
    assoc = _ServingAssociation()
    messages = MessageQueue(threading.Event(), cast(Any, assoc))
    response = C_STORE()
    response.MessageIDBeingRespondedTo = 1
    response.Status = 0x0000
    first, second = _store_request(1), _store_request(2)
    # A response (a C-GET's sub-operation), then a request behind a queued message: both wait for the reactor.
    _put_from_reader(assoc, messages, (1, response), (1, first))
    messages.put((1, second))  # not the reader's thread
    assert assoc.served == []
    assert [messages.get_nowait()[1] for _ in range(3)] == [response, first, second]


@pytest.mark.parametrize("state", [{"established": False}, {"paused": True}])
def test_no_request_is_served_by_the_reader_outside_an_established_unpaused_association(
    state: dict[str, bool],
) -> None:
    assoc = _ServingAssociation(**state)
    messages = MessageQueue(threading.Event(), cast(Any, assoc))
    _put_from_reader(assoc, messages, (1, _store_request()))
    assert assoc.served == [] and messages.qsize() == 1


def test_a_failing_inline_request_aborts_the_association() -> None:
    assoc = _ServingAssociation()

    def fail(message: Any, context_id: int) -> None:
        raise RuntimeError("boom")

    assoc._serve_request = fail  # type: ignore[method-assign]
    messages = MessageQueue(threading.Event(), cast(Any, assoc))
    events: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=messages.put, args=((1, _store_request()),), name="reader")
    reader.event_queue = events  # type: ignore[attr-defined]  # pynetdicom's DUL has one
    assoc.dul = reader
    reader.start()
    reader.join(5)
    # Evt19 (PS3.8 9.2: an unrecognized or invalid PDU) has the reader send an A-ABORT, as for a bad message.
    assert events.get_nowait() == "Evt19" and messages.qsize() == 0


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "syntax"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1"),  # odd and even lengths
        ("1.2.840.10008.5.1.4.1.1.4", "1.2.826.0.1.3680043.8.498.123456789012345", "1.2.840.10008.1.2"),
        ("1.2.840.10008.5.1.4.1.1.7", "2.25.1", "1.2.840.10008.1.2.4.50"),
    ],
)
def test_received_file_meta_is_pydicoms_byte_for_byte(sop_class: str, sop_instance: str, syntax: str) -> None:
    ours = io.BytesIO()
    write_received_file_meta(
        ours, ReceivedFileMeta(sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax=syntax)
    )
    theirs = io.BytesIO()
    write_file_meta_info(
        theirs,
        create_file_meta(sop_class_uid=UID(sop_class), sop_instance_uid=UID(sop_instance), transfer_syntax=UID(syntax)),
    )
    assert ours.getvalue() == theirs.getvalue()
    # Any other file meta still goes through pydicom.
    other = io.BytesIO()
    write_received_file_meta(
        other,
        create_file_meta(sop_class_uid=UID(sop_class), sop_instance_uid=UID(sop_instance), transfer_syntax=UID(syntax)),
    )
    assert other.getvalue() == theirs.getvalue()
