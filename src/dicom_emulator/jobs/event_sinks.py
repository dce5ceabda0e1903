"""Event sinks: an Event Grid webhook, an Azure Storage Queue, a JSON-lines file or stdout (azure-behaviour §12).

Each sink delivers a batch of already rendered events and says how it went; retries, dead-lettering and the
cursor are the dispatcher's (jobs/event_delivery.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dicom_emulator.config import EventSinkSettings
from dicom_emulator.services.event_envelopes import CLOUD_EVENTS_SCHEMA, validation_event

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

# Event Grid counts only these as delivered (§12.8).
SUCCESS_CODES = frozenset({200, 201, 202, 203, 204})
# Webhook answers Event Grid never retries: dead-lettered at once (or dropped) (§12.8).
NO_RETRY_CODES = frozenset({400, 401, 403, 413})
# Azure resources (the queue) are not retried on these (Event Grid "delivery and retry").
NO_RETRY_RESOURCE_CODES = frozenset({400, 403, 413})
# The origin public-cloud Event Grid announces in the CloudEvents abuse-protection handshake (§12.8).
CLOUD_EVENTS_ORIGIN = "eventgrid.azure.net"
# Event Grid's own names for why a delivery failed (lastDeliveryOutcome).
OUTCOMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    408: "TimedOut",
    413: "RequestEntityTooLarge",
    429: "Busy",
    503: "Busy",
}


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one attempt went: ``ok``; otherwise whether it may be retried, and the status (for the delay)."""

    ok: bool
    retry: bool = True
    outcome: str = "Delivered"
    status: int | None = None


DELIVERED = Delivery(ok=True)


@dataclass(frozen=True, slots=True)
class Validation:
    """Outcome of the subscription validation handshake: ``validated``, ``pending`` (async) or ``failed``."""

    result: str
    detail: str = ""


class EventSink(Protocol):
    settings: EventSinkSettings

    async def open(self) -> None: ...

    async def validate(self, *, code: str, url: str, topic: str, now: datetime) -> Validation: ...

    async def deliver(self, events: list[dict[str, Any]], *, delivery_count: int) -> Delivery: ...

    async def close(self) -> None: ...


def _outcome(status: int) -> str:
    return OUTCOMES.get(status, "GenericError")


class WebhookSink:
    """Event Grid's webhook delivery: POST with ``aeg-*`` headers, JSON array (EG) or CloudEvents structured mode."""

    def __init__(self, settings: EventSinkSettings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.timeout, follow_redirects=False)
        return self._client

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _headers(self, event_type: str, delivery_count: int) -> dict[str, str]:
        return {
            **self.settings.headers,
            "aeg-event-type": event_type,
            # Observed upper-cased on the wire (reference §12.8).
            "aeg-subscription-name": self.settings.subscription_name.upper(),
            "aeg-delivery-count": str(delivery_count),
            "aeg-data-version": "1",
            "aeg-metadata-version": "1",
        }

    async def validate(self, *, code: str, url: str, topic: str, now: datetime) -> Validation:
        import httpx  # imported by the webhook sink only (a tenth of a second of every start otherwise)

        assert self.settings.url is not None
        try:
            if self.settings.delivery_schema == CLOUD_EVENTS_SCHEMA:
                return await self._validate_cloud_events()
            body = [validation_event(event_id=str(uuid.uuid4()), topic=topic, code=code, url=url, now=now)]
            response = await self.client.post(
                self.settings.url,
                content=json.dumps(body).encode(),
                headers={
                    **self._headers("SubscriptionValidation", 0),
                    "Content-Type": "application/json; charset=utf-8",
                },
            )
        except httpx.HTTPError as exc:
            return Validation("failed", f"{type(exc).__name__}: {exc}")
        # Only 200 counts (202 is not accepted); the code in the body completes it now, without it the endpoint
        # has to GET the validationUrl (§12.8).
        if response.status_code != 200:
            return Validation("failed", f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict):
            echoed = {k.lower(): v for k, v in answer.items()}.get("validationresponse")
            if echoed == code:
                return Validation("validated")
            if echoed is not None:
                return Validation("failed", "validationResponse does not match the validationCode")
        return Validation("pending")

    async def _validate_cloud_events(self) -> Validation:
        """CloudEvents abuse protection: OPTIONS with WebHook-Request-Origin, granted by WebHook-Allowed-Origin."""
        assert self.settings.url is not None
        response = await self.client.options(
            self.settings.url, headers={**self.settings.headers, "WebHook-Request-Origin": CLOUD_EVENTS_ORIGIN}
        )
        allowed = response.headers.get("WebHook-Allowed-Origin", "")
        if response.status_code == 200 and allowed.strip() in ("*", CLOUD_EVENTS_ORIGIN):
            return Validation("validated")
        return Validation("failed", f"HTTP {response.status_code}, WebHook-Allowed-Origin {allowed!r}")

    async def deliver(self, events: list[dict[str, Any]], *, delivery_count: int) -> Delivery:
        import httpx

        assert self.settings.url is not None
        payload: Any
        if self.settings.delivery_schema == CLOUD_EVENTS_SCHEMA:
            # One event per request (structured mode); batches in the CloudEvents JSON batch format.
            if len(events) == 1:
                payload, content_type = events[0], "application/cloudevents+json; charset=utf-8"
            else:
                payload, content_type = events, "application/cloudevents-batch+json; charset=utf-8"
        else:
            payload, content_type = events, "application/json; charset=utf-8"
        try:
            response = await self.client.post(
                self.settings.url,
                content=json.dumps(payload).encode(),
                headers={**self._headers("Notification", delivery_count), "Content-Type": content_type},
            )
        except httpx.TimeoutException:
            return Delivery(ok=False, outcome="TimedOut", status=408)
        except httpx.HTTPError as exc:
            logger.info("event delivery to %s failed: %s", self.settings.url, exc)
            return Delivery(ok=False, outcome="GenericError")
        if response.status_code in SUCCESS_CODES:
            return DELIVERED
        status = response.status_code
        return Delivery(ok=False, retry=status not in NO_RETRY_CODES, outcome=_outcome(status), status=status)


class QueueSink:
    """One Azure Storage Queue message per event (the event object, §12.9), through Azure's own SDK."""

    def __init__(self, settings: EventSinkSettings) -> None:
        from azure.storage.queue import QueueClient, TextBase64EncodePolicy

        assert settings.connection_string is not None and settings.queue_name is not None
        self.settings = settings
        self.client = QueueClient.from_connection_string(
            settings.connection_string,
            settings.queue_name,
            message_encode_policy=TextBase64EncodePolicy() if settings.queue_base64 else None,
        )

    async def open(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        # Event Grid needs an existing queue; creating it here spares every test the step.
        try:
            await asyncio.to_thread(self.client.create_queue)
        except ResourceExistsError:
            pass

    async def validate(self, *, code: str, url: str, topic: str, now: datetime) -> Validation:
        return Validation("validated")

    def _send(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.client.send_message(json.dumps(event), time_to_live=self.settings.queue_message_ttl)

    async def deliver(self, events: list[dict[str, Any]], *, delivery_count: int) -> Delivery:
        from azure.core.exceptions import AzureError, HttpResponseError

        try:
            await asyncio.to_thread(self._send, events)
        except HttpResponseError as exc:
            status = exc.status_code or 0
            return Delivery(
                ok=False, retry=status not in NO_RETRY_RESOURCE_CODES, outcome=_outcome(status), status=status
            )
        except AzureError as exc:
            logger.info("event delivery to queue %s failed: %s", self.settings.queue_name, exc)
            return Delivery(ok=False, outcome="GenericError")
        return DELIVERED

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)


class LinesSink:
    """Each event as one JSON line, appended to a file or written to stdout (emulator-only, for tests)."""

    def __init__(self, settings: EventSinkSettings) -> None:
        self.settings = settings

    async def open(self) -> None:
        if self.settings.path is not None:
            self.settings.path.parent.mkdir(parents=True, exist_ok=True)

    async def validate(self, *, code: str, url: str, topic: str, now: datetime) -> Validation:
        return Validation("validated")

    async def deliver(self, events: list[dict[str, Any]], *, delivery_count: int) -> Delivery:
        text = "".join(json.dumps(event) + "\n" for event in events)
        try:
            if self.settings.path is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                await asyncio.to_thread(_append, self.settings.path, text)
        except OSError as exc:
            logger.warning("writing events to %s failed: %s", self.settings.path or "stdout", exc)
            return Delivery(ok=False, outcome="GenericError")
        return DELIVERED

    async def close(self) -> None:
        return None


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(text)
        out.flush()


def build_sink(settings: EventSinkSettings) -> EventSink:
    if settings.type == "webhook":
        return WebhookSink(settings)
    if settings.type == "queue":
        return QueueSink(settings)
    return LinesSink(settings)
