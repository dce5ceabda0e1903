"""CoalescingTransport: the writes of one event-loop round leave as one send, and close sends them first."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from dicom_emulator.http_protocol import CoalescingTransport


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True


def _wrap(real: _Transport) -> CoalescingTransport:
    return CoalescingTransport(cast(Any, real), asyncio.get_running_loop())


async def test_writes_of_one_round_are_sent_together_at_its_end() -> None:
    real = _Transport()
    transport = _wrap(real)
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert real.writes == []  # nothing yet: the round is not over
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")  # a later round: a send of its own
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]


async def test_close_sends_what_is_pending_first_and_nothing_after() -> None:
    real = _Transport()
    transport = _wrap(real)
    transport.write(b"431 answer")
    transport.close()
    assert real.writes == [b"431 answer"] and real.closed
    transport.write(b"late")
    await asyncio.sleep(0)
    assert real.writes == [b"431 answer"]  # a closing transport takes nothing more


async def test_everything_else_reaches_the_real_transport() -> None:
    real = _Transport()
    transport = _wrap(real)
    transport.pause_reading()
    assert real.paused and transport.is_closing() is False
