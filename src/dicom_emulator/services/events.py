"""Events as published (azure-behaviour §12): what ``GET /emulator/events`` reads, and webhook validation.

Events are produced by the change-feed writers in the feed row's own transaction (storage/feed_append.py) and
delivered to the configured sinks by the job runner (jobs/event_delivery.py); this service is the read side the
HTTP front uses.
"""

from __future__ import annotations

from typing import Any

from dicom_emulator.config import EventSinkSettings
from dicom_emulator.services.event_envelopes import event_time, render
from dicom_emulator.storage.events_store import SqlEventStore

MAX_EVENTS_PAGE = 1000


def validation_signature(sink: EventSinkSettings) -> str:
    """What a webhook subscription was validated for: a new endpoint or schema must be validated again."""
    return f"{sink.delivery_schema} {sink.url}"


class EventService:
    def __init__(self, store: SqlEventStore, *, topic: str, service_host: str, sinks: list[EventSinkSettings]) -> None:
        self.store = store
        self.topic = topic
        self.service_host = service_host
        self.sinks = sinks

    async def published(self, after: int, limit: int, schema: str) -> list[dict[str, Any]]:
        """Events with ``sequenceNumber`` above ``after``, oldest first, in the given schema."""
        records = await self.store.events_after(after, min(limit, MAX_EVENTS_PAGE))
        return [render(r, schema, topic=self.topic, service_host=self.service_host) for r in records]

    async def confirm_validation(self, code: str) -> bool:
        """A webhook endpoint GET its ``validationUrl`` (Event Grid's asynchronous handshake)."""
        signatures = {s.key: validation_signature(s) for s in self.sinks if s.type == "webhook"}
        return await self.store.confirm_validation(code, signatures)

    async def subscriptions(self) -> list[dict[str, Any]]:
        """Each configured sink with its delivery state (emulator-only, to watch retries and cursors)."""
        out = []
        for sink in self.sinks:
            state = await self.store.state(sink.key)
            out.append(
                {
                    "name": sink.key,
                    "type": sink.type,
                    "deliverySchema": sink.delivery_schema,
                    "deliveredThrough": state.cursor if state else 0,
                    "failedAttempts": state.attempts if state else 0,
                    "lastDeliveryOutcome": state.last_outcome if state else None,
                    "nextAttemptTime": event_time(state.next_attempt_at) if state and state.next_attempt_at else None,
                    "validated": sink.type != "webhook"
                    or not sink.validate_endpoint
                    or (state is not None and state.validated == validation_signature(sink)),
                }
            )
        return out
