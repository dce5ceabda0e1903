"""Hostile and unlucky clients against the real process: aborted uploads, oversized input, slow sockets."""

from __future__ import annotations

import socket
import time

import pytest

from tests.e2e.server import Emulator
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
