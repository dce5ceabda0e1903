"""Events in Azure's shape (azure-behaviour §12): the ``data`` payload, Event Grid schema and CloudEvents 1.0.

Pure functions from one change-feed row (with its pinned event id) to the JSON object a sink receives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dicom_emulator.storage.events_store import EventRecord

__all__ = ["EventRecord", "render"]

EVENT_GRID_SCHEMA = "EventGridSchema"
CLOUD_EVENTS_SCHEMA = "CloudEventSchemaV1_0"
DEFAULT_PARTITION = "Microsoft.Default"
# One event type per change-feed action (reference §12.6: Create → Created, Delete → Deleted, Update → Updated).
VALIDATION_EVENT_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent"


def event_time(moment: datetime) -> str:
    """UTC with seven fractional digits and ``Z``, like .NET's round-trip format (§12.4)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def event_data(record: EventRecord, service_host: str) -> dict[str, Any]:
    """The ``data`` object, fields in the order of Azure's samples (§12.3)."""
    return {
        "partitionName": record.partition_name or DEFAULT_PARTITION,
        "imageStudyInstanceUid": record.study_uid,
        "imageSeriesInstanceUid": record.series_uid,
        "imageSopInstanceUid": record.sop_uid,
        "serviceHostName": service_host,
        "sequenceNumber": record.sequence,
    }


def event_subject(record: EventRecord, service_host: str) -> str:
    """No scheme, always ``v1`` and the partition segment (2023 docs, §12.4)."""
    partition = record.partition_name or DEFAULT_PARTITION
    return (
        f"{service_host}/v1/partitions/{partition}/studies/{record.study_uid}"
        f"/series/{record.series_uid}/instances/{record.sop_uid}"
    )


def event_grid_event(record: EventRecord, *, topic: str, service_host: str) -> dict[str, Any]:
    return {
        "id": record.event_id,
        "topic": topic,
        "subject": event_subject(record, service_host),
        "data": event_data(record, service_host),
        "eventType": record.event_type,
        "dataVersion": "1",
        "metadataVersion": "1",
        "eventTime": event_time(record.timestamp),
    }


def cloud_event(record: EventRecord, *, topic: str, service_host: str) -> dict[str, Any]:
    """CloudEvents 1.0 structured mode (§12.5): no ``dataschema``/``datacontenttype``, like Azure's samples."""
    return {
        "source": topic,
        "subject": event_subject(record, service_host),
        "type": record.event_type,
        "time": event_time(record.timestamp),
        "id": record.event_id,
        "data": event_data(record, service_host),
        "specversion": "1.0",
    }


def render(record: EventRecord, schema: str, *, topic: str, service_host: str) -> dict[str, Any]:
    if schema == CLOUD_EVENTS_SCHEMA:
        return cloud_event(record, topic=topic, service_host=service_host)
    return event_grid_event(record, topic=topic, service_host=service_host)


def validation_event(*, event_id: str, topic: str, code: str, url: str, now: datetime) -> dict[str, Any]:
    """The subscription validation event Event Grid POSTs to a new webhook (§12.8)."""
    return {
        "id": event_id,
        "topic": topic,
        "subject": "",
        "data": {"validationCode": code, "validationUrl": url},
        "eventType": VALIDATION_EVENT_TYPE,
        "eventTime": event_time(now),
        "metadataVersion": "1",
        "dataVersion": "1",
    }


def matches(
    event: dict[str, Any],
    *,
    included_types: list[str] | None,
    subject_begins_with: str,
    subject_ends_with: str,
) -> bool:
    """Event subscription filters (§12.10): event types, subject prefix and suffix (case-insensitive)."""
    event_type = str(event.get("eventType") or event.get("type") or "")
    if included_types is not None and event_type.lower() not in {t.lower() for t in included_types}:
        return False
    subject = str(event.get("subject", "")).lower()
    return subject.startswith(subject_begins_with.lower()) and subject.endswith(subject_ends_with.lower())
