"""Delivers the event outbox to every configured sink: at least once, in sequence order per sink.

One loop per sink, run by the job runner in every process. A loop delivers only while its process holds the
sink's lease (storage/events_store.py), so several processes on one database deliver each event once per sink
in the normal case. The cursor is committed after the sink acknowledged a batch: a crash or restart before that
repeats the batch (at least once), never skips it. A failed batch blocks the ones behind it and is retried on
Event Grid's schedule (azure-behaviour §12.8) until it is delivered, its attempts or time to live run out
(dead-letter), or the sink answers with a status Event Grid never retries (dead-letter at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dicom_emulator.clock import utcnow
from dicom_emulator.config import EventSinkSettings
from dicom_emulator.jobs.event_sinks import Delivery, EventSink
from dicom_emulator.services.event_envelopes import CLOUD_EVENTS_SCHEMA, event_time, matches, render
from dicom_emulator.services.events import validation_signature
from dicom_emulator.storage.events_store import EventRecord, LostSinkLeaseError, SinkState, SqlEventStore

logger = logging.getLogger(__name__)

# Event Grid's retry schedule in seconds (§12.8): 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then 12 h.
RETRY_SCHEDULE = (10, 30, 60, 300, 600, 1800, 3600, 10800, 21600)
RETRY_LATER = 43200
# Status-specific minimum delays (§12.8): 408 at least 2 min, 503 at least 30 s, anything else at least 10 s.
MIN_DELAY = {408: 120, 503: 30}
MIN_DELAY_OTHER = 10
# Seconds a webhook has to GET the validationUrl of an asynchronous handshake (§12.8).
ASYNC_VALIDATION_WINDOW = 300
# Outbox rows read per step (more than one batch, so events a filter drops do not cost a round trip each).
READ_AHEAD = 200


def retry_delay(attempts: int, status: int | None, scale: float) -> float:
    """Seconds before attempt ``attempts + 1``, with Event Grid's small randomization."""
    base = RETRY_SCHEDULE[attempts - 1] if attempts <= len(RETRY_SCHEDULE) else RETRY_LATER
    base = max(base, MIN_DELAY.get(status or 0, MIN_DELAY_OTHER))
    return base * scale * random.uniform(1.0, 1.1)  # noqa: S311 - jitter, not security


class SinkLoop:
    """Delivery of one sink by this process."""

    def __init__(
        self,
        sink: EventSink,
        store: SqlEventStore,
        *,
        owner: str,
        topic: str,
        service_host: str,
        validation_base: str,
        poll_interval: float,
        lease: timedelta,
    ) -> None:
        self.sink = sink
        self.settings: EventSinkSettings = sink.settings
        self.store = store
        self.owner = owner
        self.topic = topic
        self.service_host = service_host
        self.validation_base = validation_base
        self.poll_interval = poll_interval
        self.lease = lease + timedelta(seconds=self.settings.timeout)
        self.wakeup = asyncio.Event()

    @property
    def key(self) -> str:
        return self.settings.key

    async def run(self) -> None:
        opened = False
        try:
            while True:
                delay = self.poll_interval
                try:
                    if not opened:
                        await self.sink.open()
                        opened = True
                    delay = await self.step()
                except LostSinkLeaseError:
                    logger.warning("event sink %s was taken over by another process", self.key)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("event sink %s: delivery step failed", self.key)
                if delay > 0:
                    self.wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), delay)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._shutdown())

    async def _shutdown(self) -> None:
        await self.store.release(self.key, self.owner)
        await self.sink.close()

    async def step(self) -> float:
        """One unit of work; returns how long to wait before the next (0 = at once, unless woken)."""
        if await self._idle():
            return self.poll_interval
        state = await self.store.claim(self.key, self.owner, self.lease)
        if state is None:
            return self.poll_interval  # another process delivers this sink
        now = utcnow()
        if state.next_attempt_at is not None and now < state.next_attempt_at:
            return min((state.next_attempt_at - now).total_seconds(), self.poll_interval * 10)
        if self.settings.type == "webhook" and self.settings.validate_endpoint:
            signature = validation_signature(self.settings)
            if state.validated != signature:
                return await self._validate(state, signature, now)
        records = await self.store.events_after(state.cursor, READ_AHEAD)
        if not records:
            return self.poll_interval
        batch, last = self._batch(records)
        if not batch:
            await self.store.advance(self.key, self.owner, last)  # all filtered out
            return 0
        events = [event for _, event in batch]
        result = await self.sink.deliver(events, delivery_count=state.attempts)
        if result.ok:
            await self.store.advance(self.key, self.owner, last)
            return 0
        return await self._failed(state, batch, last, result, now)

    async def _idle(self) -> bool:
        """Nothing to do, found by reading only: no write (lease renewal) per poll while the outbox is quiet.

        The lease only matters while delivering; an idle process may let it lapse and any process takes it.
        """
        state = await self.store.state(self.key)
        if state is None or state.next_attempt_at is not None:
            return False
        if self.settings.type == "webhook" and self.settings.validate_endpoint:
            if state.validated != validation_signature(self.settings):
                return False
        return await self.store.newest_sequence() <= state.cursor

    def _batch(self, records: list[EventRecord]) -> tuple[list[tuple[EventRecord, dict[str, Any]]], int]:
        """The next batch of matching events, and the sequence the cursor may move to once it is delivered."""
        batch: list[tuple[EventRecord, dict[str, Any]]] = []
        last = records[0].sequence
        for record in records:
            if len(batch) == self.settings.max_events_per_batch:
                break
            last = record.sequence
            event = render(record, self.settings.delivery_schema, topic=self.topic, service_host=self.service_host)
            if matches(
                event,
                included_types=self.settings.included_event_types,
                subject_begins_with=self.settings.subject_begins_with,
                subject_ends_with=self.settings.subject_ends_with,
            ):
                batch.append((record, event))
        return batch, last

    async def _failed(
        self,
        state: SinkState,
        batch: list[tuple[EventRecord, dict[str, Any]]],
        last: int,
        result: Delivery,
        now: datetime,
    ) -> float:
        attempts = state.attempts + 1
        first = state.first_attempt_at or now
        published = min(record.timestamp for record, _ in batch)
        reason = None
        if not result.retry:
            reason = "NonRetriableError"
        elif attempts >= self.settings.max_delivery_attempts:
            reason = "MaxDeliveryAttemptsExceeded"
        elif now - published >= timedelta(minutes=self.settings.event_ttl_minutes):
            reason = "TimeToLiveExceeded"
        if reason is not None:
            await asyncio.to_thread(self._dead_letter, batch, reason, attempts, result.outcome, now)
            await self.store.advance(self.key, self.owner, last)
            return 0
        delay = retry_delay(attempts, result.status, self.settings.retry_scale)
        logger.info(
            "event sink %s: delivery failed (%s), attempt %d, next in %.3f s", self.key, result.outcome, attempts, delay
        )
        await self.store.record_failure(
            self.key,
            self.owner,
            attempts=attempts,
            first_attempt_at=first,
            next_attempt_at=now + timedelta(seconds=delay),
            outcome=result.outcome,
        )
        return delay

    def _dead_letter(
        self,
        batch: list[tuple[EventRecord, dict[str, Any]]],
        reason: str,
        attempts: int,
        outcome: str,
        now: datetime,
    ) -> None:
        """Event Grid's dead-letter record: the event plus why and when (CloudEvents: lower-case names, §12.8)."""
        path: Path | None = self.settings.dead_letter_path
        if path is None:
            logger.warning("event sink %s: dropped %d event(s): %s (%s)", self.key, len(batch), reason, outcome)
            return
        cloud = self.settings.delivery_schema == CLOUD_EVENTS_SCHEMA
        lines = []
        for record, event in batch:
            extra = {
                "deadLetterReason": reason,
                "deliveryAttempts": attempts,
                "lastDeliveryOutcome": outcome,
                "publishTime": event_time(record.timestamp),
                "lastDeliveryAttemptTime": event_time(now),
            }
            if cloud:
                extra = {k.lower(): v for k, v in extra.items()}
            lines.append(json.dumps({**event, **extra}) + "\n")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write("".join(lines))
        logger.warning("event sink %s: dead-lettered %d event(s): %s (%s)", self.key, len(batch), reason, outcome)

    async def _validate(self, state: SinkState, signature: str, now: datetime) -> float:
        """Event Grid's subscription validation handshake; nothing is delivered before it succeeds (§12.8).

        A fresh code each time: a pending asynchronous validation whose window ran out is started over.
        """
        code = str(uuid.uuid4())
        url = f"{self.validation_base}/emulator/eventsubscriptions/{self.settings.subscription_name}/validate?id={code}"
        # Stored first: an endpoint may GET the validationUrl before it answers the validation request.
        await self.store.set_validation(self.key, self.owner, validated=None, code=code)
        outcome = await self.sink.validate(code=code, url=url, topic=self.topic, now=now)
        if outcome.result == "validated":
            await self.store.set_validation(self.key, self.owner, validated=signature, code=None)
            logger.info("event sink %s: subscription validated", self.key)
            return 0
        attempts = state.attempts + 1
        if outcome.result == "pending":
            # The endpoint has five minutes to GET the validationUrl (GET /emulator/eventsubscriptions/…/validate).
            delay = ASYNC_VALIDATION_WINDOW * self.settings.retry_scale
        else:
            logger.warning("event sink %s: subscription validation failed: %s", self.key, outcome.detail)
            delay = retry_delay(attempts, None, self.settings.retry_scale)
        await self.store.record_failure(
            self.key,
            self.owner,
            attempts=attempts,
            first_attempt_at=state.first_attempt_at or now,
            next_attempt_at=now + timedelta(seconds=delay),
            outcome="ValidationPending" if outcome.result == "pending" else "ValidationFailed",
            pending_code=code,
        )
        return delay


class EventDispatcher:
    """All sink loops of this process; the job runner starts ``run`` and cancels it at shutdown."""

    def __init__(self, store: SqlEventStore, loops: list[SinkLoop]) -> None:
        self.store = store
        self.loops = loops

    def wake(self) -> None:
        """New events were committed by this process: deliver now instead of at the next poll."""
        for loop in self.loops:
            loop.wakeup.set()

    async def register(self) -> None:
        """Register new sinks before the app serves: a new sink starts after the events that exist now."""
        for loop in self.loops:
            await self.store.ensure_sink(loop.key)

    async def run(self) -> None:
        if self.loops:
            await asyncio.gather(*(loop.run() for loop in self.loops))
