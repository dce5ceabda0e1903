"""gateway.GatewaySocket: pynetdicom's association socket that waits for data in select and reads in large pieces."""

from __future__ import annotations

import queue
import socket
import threading
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from dicom_emulator.dimse.gateway import GatewaySocket


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
