"""uvicorn's HTTP protocol with the limits a shared or exposed emulator needs (README, Limits).

uvicorn closes idle keep-alive connections, but not a connection that never sends a request, nor one that
sends its header block or body slowly (slowloris), and httptools accepts header blocks of any size. Held open,
such sockets used up the open-file limit and took ``/health`` down; a 128 MB header block stalled the event
loop. Each connection here gets:

- a header timeout: the request line and headers must arrive within ``header_timeout`` seconds of the
  connection (or of the first byte of the next request), else the connection is closed;
- a header size cap: more than ``max_header_size`` bytes before the end of the headers answers 431 and closes;
- a body idle timeout: while a request body is being received, ``body_timeout`` seconds without a byte close the
  connection (the app sees a disconnect: one INFO line, spool files removed). Time the server itself pauses
  reading (flow control) does not count;
- a connection cap: past ``max_connections`` open connections a new one is closed at once, so the process
  keeps file descriptors for the connections it serves.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dicom_emulator.config import Settings

_HEADER_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 33\r\n\r\n"
    b"The request headers are too large"
)


class CoalescingTransport:
    """A connection's transport whose writes made in one round of the event loop go out as one ``send``.

    uvicorn writes a response's status line and headers, then its body, as two writes; each is a ``send`` on
    the socket and, on loopback, a wake-up of the client for a segment it cannot use alone (the first write
    was ~8 % of a one-instance STOW's GIL time in py-spy; joined: STOW 1/request 4 clients +5 %, CPU per
    instance -5 %, 4 alternating pairs, benchmarks/README.md session 10). The writes are joined and sent at
    the end of the loop round that made them, so nothing waits for a later event. Flow control still works:
    uvicorn pauses on the real transport's buffer, which sees the bytes one round later at most, and a
    streamed body yields to the loop between its chunks. ``close`` sends what is pending first.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def limited_protocol(settings: Settings) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` option, bound to ``settings``' limits."""

    max_connections = settings.resolved_max_connections

    class LimitedHttpProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._timer: asyncio.TimerHandle | None = None
            self._in_headers = True
            self._header_bytes = 0
            self._headers_seen = 0  # header blocks completed on this connection
            # Loop time of the last body bytes while a body is being received, else None. A chunk only
            # records it: re-arming a timer for each of the dozens of chunks of a large part cost more.
            self._last_body: float | None = None

        def _arm(self, seconds: float, reason: str, delay: float | None = None) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds if delay is None else delay, self._expired, seconds, reason)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self, seconds: float, reason: str) -> None:
            self._timer = None
            if self.flow is not None and self.flow.read_paused:
                self._arm(seconds, reason)  # we stopped reading, not the client: wait on
                return
            if self._last_body is not None:
                idle = self.loop.time() - self._last_body
                if idle < seconds:
                    self._arm(seconds, reason, delay=seconds - idle)  # bytes came meanwhile
                    return
            self.logger.info("closing a connection from %s: %s", self.client, reason)
            self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= max_connections:
                transport.close()
                return
            # Typed as uvicorn's asyncio.Transport; the proxy passes every other call through.
            super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))  # type: ignore[arg-type]
            self._arm(settings.header_timeout, "no complete request headers in time")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self.transport is None:  # refused in connection_made
                return
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            counting = self._in_headers
            headers_seen = self._headers_seen
            super().data_received(data)
            # Counted only while the headers are still incomplete after this chunk: a chunk that ends the
            # headers may carry any amount of body behind them (and even a whole message).
            if counting and headers_seen == self._headers_seen and not self.transport.is_closing():
                self._header_bytes += len(data)
                if self._header_bytes > settings.max_header_size:
                    self._disarm()
                    self.transport.write(_HEADER_TOO_LARGE)
                    self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            self._last_body = None
            self._arm(settings.header_timeout, "no complete request headers in time")

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._headers_seen += 1
            self._header_bytes = 0
            self._last_body = self.loop.time()
            self._arm(settings.body_timeout, "no request body bytes in time")
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            self._last_body = self.loop.time()
            super().on_body(body)

        def on_message_complete(self) -> None:
            # The next bytes start the next request's header block. Not at the response's end: an early answer
            # (a 413 before the body is read) can go out while the rest of this request's body is on its way.
            self._in_headers = True
            self._header_bytes = 0
            self._last_body = None
            self._disarm()
            super().on_message_complete()

    return LimitedHttpProtocol
