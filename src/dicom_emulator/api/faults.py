"""Fault injection (emulator-only; Azure has nothing like it): answer matching requests with an error, a delay
or a dropped connection, so a client's retry logic can be tested against the errors it meets in Azure.

Rules come from ``serve --faults FILE`` (JSON) or ``PUT /emulator/faults`` (same JSON) and are tried in order;
the first rule that matches the request (``path`` regular expression searched in the URL path, ``method``),
has not used up its ``count`` and wins its ``rate`` draw (from one ``random.Random(seed)``, so a seeded run
repeats itself) decides the request's fate:

* an HTTP status (e.g. ``429`` throttling, ``503`` data store unavailable, ``500``): a plain-text body like
  Azure's errors, with ``Retry-After`` for 429 and 503 (``retry_after`` seconds, null for none);
* ``"delay"``: wait ``delay`` seconds, then serve the request normally;
* ``"drop"``: close the connection without an answer (the client sees a reset / incomplete response).

``/emulator/...`` itself is never faulted. Every injected fault is logged at WARNING. The state (rules,
counters, random generator) lives in the process; ``serve --workers N`` loads the file in every worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

# Bodies of injected errors. Azure's gateway answers throttling with 429 and Retry-After; the DICOM service
# maps a data store failure to 503 (azure-behaviour §1, exception map). The texts are the emulator's own:
# Azure's exact wording is not recorded, so clients should not depend on it (a rule's ``body`` overrides it).
DEFAULT_BODIES = {
    429: "Too many requests. Retry after the number of seconds in the Retry-After header.",
    503: "The data store is unavailable. Please retry the request.",
    500: "The server encountered an internal error. Please retry the request. If the issue persists, please "
    "contact support.",
}
EXCLUDED_PREFIX = "/emulator/"


class FaultRule(BaseModel):
    """One rule; the JSON shape users write."""

    model_config = ConfigDict(extra="forbid")

    fault: int | str = Field(description="an HTTP error status (400-599), 'delay' or 'drop'")
    path: str = Field(default="", description="regular expression searched in the URL path ('' = any)")
    method: list[str] = Field(default_factory=list, description="HTTP methods ([] = any)")
    rate: float = Field(default=1.0, ge=0.0, le=1.0, description="probability that a matching request is faulted")
    count: int | None = Field(default=None, ge=0, description="fault at most this many requests (null = no limit)")
    retry_after: int | None = Field(default=1, ge=0, description="Retry-After seconds on 429/503 (null = none)")
    delay: float = Field(default=1.0, ge=0.0, le=600.0, description="seconds, for fault 'delay'")
    body: str | None = Field(default=None, description="body of an error answer (default: a plain-text message)")
    matched: int = 0
    fired: int = 0
    _pattern: re.Pattern[str] = PrivateAttr()

    @field_validator("fault")
    @classmethod
    def _status(cls, value: int | str) -> int | str:
        if isinstance(value, int) and 400 <= value <= 599 or value in ("delay", "drop"):
            return value
        raise ValueError(f"{value!r} is not an HTTP error status (400-599), 'delay' or 'drop'")

    @field_validator("method")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        return [m.upper() for m in value]

    @field_validator("path")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression ({exc})") from None
        return value

    def model_post_init(self, context: Any) -> None:
        self._pattern = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return (not self.method or method in self.method) and self._pattern.search(path) is not None


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    rules: list[FaultRule] = Field(default_factory=list)


class FaultInjector:
    """The rules in force and the one random generator they draw from."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        for rule in config.rules:
            rule.matched = rule.fired = 0
        self.config = config
        self.random = random.Random(config.seed)

    @property
    def active(self) -> bool:
        return bool(self.config.rules)

    def decide(self, method: str, path: str) -> tuple[int, FaultRule] | None:
        """The rule (and its index) that faults this request, counting matches and faults; None to serve it."""
        for index, rule in enumerate(self.config.rules):
            if not rule.matches(method, path):
                continue
            rule.matched += 1
            if rule.count is not None and rule.fired >= rule.count:
                continue
            if rule.rate < 1.0 and self.random.random() >= rule.rate:
                continue
            rule.fired += 1
            return index, rule
        return None

    def state(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")


def parse_config(data: bytes | str) -> FaultConfig:
    """The JSON of a faults file or ``PUT /emulator/faults``; ``ValueError`` with one readable line."""
    try:
        return FaultConfig.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ValueError(f"invalid fault rules: {problems}") from None


def load_config(path: Path) -> FaultConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read fault rules {path}: {exc.strerror}") from exc
    try:
        return parse_config(text)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


class FaultMiddleware:
    """Pure ASGI (streams untouched), inside CORS so a browser can read an injected 429 too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The injector of the running lifespan (app.state.faults), so every start begins with its own rules.
        injector: FaultInjector | None = getattr(scope["app"].state, "faults", None) if "app" in scope else None
        if (
            scope["type"] != "http"
            or injector is None
            or not injector.active
            or scope["path"].startswith(EXCLUDED_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        decision = injector.decide(scope["method"], scope["path"])
        if decision is None:
            await self.app(scope, receive, send)
            return
        index, rule = decision
        logger.warning(
            "fault injected: %s on %s %s (rule %d, fault %d of %s)",
            rule.fault,
            scope["method"],
            scope["path"],
            index,
            rule.fired,
            rule.count if rule.count is not None else "unlimited",
        )
        if rule.fault == "delay":
            await asyncio.sleep(rule.delay)
            await self.app(scope, receive, send)
        elif rule.fault == "drop":
            await _drop(receive)
        else:
            assert isinstance(rule.fault, int)
            await _answer(send, rule)


async def _answer(send: Send, rule: FaultRule) -> None:
    assert isinstance(rule.fault, int)
    body = (rule.body if rule.body is not None else DEFAULT_BODIES.get(rule.fault, "Injected fault.")).encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if rule.fault in (429, 503) and rule.retry_after is not None:
        headers.append((b"retry-after", str(rule.retry_after).encode()))
    await send({"type": "http.response.start", "status": rule.fault, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(receive: Receive) -> None:
    """Abort the TCP connection. uvicorn's ``receive`` is a method of its request cycle, which holds the
    transport; once aborted, uvicorn sees the disconnect and sends nothing more."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:  # not served by uvicorn (e.g. an in-process test client): fail the request instead
        raise ConnectionAbortedError("fault injection: connection dropped")
    transport.abort()
    await asyncio.sleep(0)  # let the loop deliver connection_lost before uvicorn checks the cycle


def describe(config: FaultConfig) -> str:
    return json.dumps(config.model_dump(mode="json", exclude={"rules": {"__all__": {"matched", "fired"}}}))
