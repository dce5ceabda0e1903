"""Hostile and unlucky clients against the real process: aborted uploads, oversized input, slow sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import Emulator, running_emulator
from tests.factories import make_instance, multipart

pytestmark = pytest.mark.e2e


def _wait_for(predicate: object, what: str, timeout: float = 30.0) -> None:
    """Poll until ``predicate()`` holds (a wait for the server to catch up, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["single", "multipart"])
def test_aborted_upload_logs_one_info_line_and_leaves_no_spool_file(emulator: Emulator, kind: str) -> None:
    if kind == "single":
        body, ctype = make_instance(rows=256, columns=256), "application/dicom"
    else:
        body, ctype = multipart([make_instance(rows=256, columns=256)])
    start = len(emulator.output())
    head = (
        f"POST /v2/studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/dicom+json\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", emulator.port)) as sock:
        sock.sendall(head + body[: len(body) // 2])
        # The server has started spooling: the spool file exists before the client goes away.
        _wait_for(lambda: emulator.spool_files(), "the spool file")
    _wait_for(lambda: "client disconnected" in emulator.output()[start:], "the disconnect log line")
    _wait_for(lambda: not emulator.spool_files(), "the spool file to be removed")
    log = emulator.output()[start:]
    assert "Traceback" not in log and " ERROR " not in log, log
    lines = [line for line in log.splitlines() if "client disconnected" in line]
    assert len(lines) == 1 and " INFO " in lines[0], log


# --- limits: a process started with small ones --------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    data_dir = tmp_path_factory.mktemp("limits") / "data"
    args = ["--header-timeout", "1", "--body-timeout", "1", "--max-header-size", "8192"]
    args += ["--max-connections", "20", "--max-json-body-size", "100000", "--keep-alive-timeout", "1"]
    with running_emulator(data_dir, *args, label="limited") as running:
        yield running


def _closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (it must, within 30 s)."""
    sock.settimeout(30)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _health(emulator: Emulator) -> int:
    with httpx.Client(base_url=emulator.base_url, timeout=10) as client:
        return client.get("/health").status_code


def test_a_connection_that_sends_nothing_is_closed(limited: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", limited.port)) as sock:
        assert _closed_by_server(sock) == b""


def test_slow_headers_are_closed(limited: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", limited.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never ends the header block
        assert _closed_by_server(sock) == b""


def test_a_stalled_body_is_closed_and_leaves_no_spool_file(limited: Emulator) -> None:
    head = (
        b"POST /v2/studies HTTP/1.1\r\nHost: x\r\nAccept: application/dicom+json\r\n"
        b"Content-Type: application/dicom\r\nContent-Length: 100000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", limited.port)) as sock:
        sock.sendall(head + b"\0" * 1000)
        assert _closed_by_server(sock) == b""
    _wait_for(lambda: not limited.spool_files(), "the spool file to be removed")
    assert _health(limited) == 200


def test_a_slow_body_that_keeps_coming_is_not_closed(limited: Emulator) -> None:
    # Body timeout 1 s: each piece comes well within it, the whole body takes more than twice as long.
    body = make_instance(rows=8, columns=8)
    head = (
        b"POST /v2/studies HTTP/1.1\r\nHost: x\r\nAccept: application/dicom+json\r\n"
        b"Content-Type: application/dicom\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    pieces = 6
    step = -(-len(body) // pieces)
    with socket.create_connection(("127.0.0.1", limited.port)) as sock:
        sock.sendall(head)
        for start in range(0, len(body), step):
            time.sleep(0.4)
            sock.sendall(body[start : start + step])
        sock.settimeout(30)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_oversized_headers_are_431_and_closed(limited: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", limited.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(100):
                sock.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending
        try:
            answer = _closed_by_server(sock)
        except ConnectionResetError:
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert _health(limited) == 200


def test_connections_over_the_cap_are_closed_at_once_and_the_server_recovers(limited: Emulator) -> None:
    held = [socket.create_connection(("127.0.0.1", limited.port)) for _ in range(20)]
    try:
        # The server must have accepted the twenty before the next one is over the cap.
        with socket.create_connection(("127.0.0.1", limited.port)) as extra:
            assert _closed_by_server(extra) == b""
    finally:
        for sock in held:
            sock.close()
    _wait_for(lambda: _health(limited) == 200, "/health after the flood")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" + b" " * 200_000 + b"]", 413),
        (b"[" * 5000 + b"]" * 5000, 400),
    ],
)
def test_json_bodies_are_capped_and_deep_nesting_is_400(limited: Emulator, body: bytes, status: int) -> None:
    with httpx.Client(base_url=limited.base_url, timeout=30) as client:
        headers = {"Content-Type": "application/json"}
        assert client.post("/v2/extendedquerytags", content=body, headers=headers).status_code == status
        dicom_json = {"Content-Type": "application/dicom+json", "Accept": "application/dicom+json"}
        assert client.post("/v2/workitems", content=body, headers=dicom_json).status_code == status
    assert "Traceback" not in limited.output()


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP response with a Content-Length body, read from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_the_rest_of_a_refused_body_is_not_taken_for_the_next_request_headers(limited: Emulator) -> None:
    # A 413 goes out before the body has arrived; the body bytes that follow it are still that request's body,
    # so a next request on the connection is served, not answered 431 as if they were its header block.
    body = b"[" + b" " * 199_998 + b"]"
    host, port = limited.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = b"POST /v2/extendedquerytags HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:20_000])
        assert _read_response(sock).startswith(b"HTTP/1.1 413 ")
        sock.sendall(body[20_000:] + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
