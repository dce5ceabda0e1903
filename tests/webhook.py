"""A real HTTP webhook receiver for event tests: records every request and answers as the test tells it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_type(self) -> str:
        return self.headers.get("aeg-event-type", "")


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def echo_validation(request: Received) -> Answer:
    """Event Grid's synchronous handshake: answer the validation code; accept notifications; grant OPTIONS."""
    if request.method == "OPTIONS":
        origin = request.headers.get("webhook-request-origin", "")
        return Answer(200, headers={"WebHook-Allowed-Origin": origin})
    if request.event_type == "SubscriptionValidation":
        code = request.json[0]["data"]["validationCode"]
        return Answer(200, json.dumps({"validationResponse": code}).encode(), {"Content-Type": "application/json"})
    return Answer(200)


class Receiver:
    """``ThreadingHTTPServer`` on 127.0.0.1; ``stop()`` and ``start()`` again on the same port (receiver down)."""

    def __init__(self, respond: Callable[[Received], Answer] = echo_validation, port: int = 0) -> None:
        self.respond = respond
        self.requests: list[Received] = []
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                answer = receiver.respond(request)
                with receiver._lock:
                    receiver.requests.append(request)
                    receiver._lock.notify_all()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_OPTIONS = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        # serve_forever's select() wakes every poll_interval to notice shutdown(): socketserver's 0.5 s default
        # made every stop() (each test, each "receiver down") wait up to half a second; requests are served at
        # once either way.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def notifications(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.event_type == "Notification"]

    def events(self) -> list[dict[str, Any]]:
        """Every event of every notification, in arrival order (EG arrays are flattened)."""
        out: list[dict[str, Any]] = []
        for request in self.notifications():
            body = request.json
            out.extend(body if isinstance(body, list) else [body])
        return out

    def wait(self, predicate: Callable[[list[Received]], bool], timeout: float = 60.0) -> list[Received]:
        """Block until ``predicate(requests)`` holds (a generous bound: a hang fails the test, never a slow run)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.requests):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"receiver never saw what the test waited for; got {self.requests!r}")
                self._lock.wait(remaining)
            return list(self.requests)

    def wait_events(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        self.wait(lambda _: len(self.events()) >= count, timeout)
        return self.events()
