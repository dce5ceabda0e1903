"""Pure parts of events and auth: envelopes, filters, retry delays, route → data action, role → actions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from dicom_emulator.cli import parse_event_sink
from dicom_emulator.config import EventSinkSettings, Settings
from dicom_emulator.jobs.event_delivery import retry_delay
from dicom_emulator.services.auth import ALL_ACTIONS, actions_of, required_action
from dicom_emulator.services.event_envelopes import event_time, matches, render
from dicom_emulator.storage.events_store import EventRecord

RECORD = EventRecord(
    sequence=42,
    event_id="7d1c2b1e-0000-4000-8000-000000000001",
    action="Update",
    study_uid="1.2",
    series_uid="1.2.3",
    sop_uid="1.2.3.4",
    timestamp=datetime(2023, 6, 9, 16, 55, 44, 719713, tzinfo=UTC),
    partition_name="clinic-a",
)


def test_event_grid_envelope_of_an_update_in_a_partition() -> None:
    assert render(RECORD, "EventGridSchema", topic="/t", service_host="h.example") == {
        "id": "7d1c2b1e-0000-4000-8000-000000000001",
        "topic": "/t",
        "subject": "h.example/v1/partitions/clinic-a/studies/1.2/series/1.2.3/instances/1.2.3.4",
        "data": {
            "partitionName": "clinic-a",
            "imageStudyInstanceUid": "1.2",
            "imageSeriesInstanceUid": "1.2.3",
            "imageSopInstanceUid": "1.2.3.4",
            "serviceHostName": "h.example",
            "sequenceNumber": 42,
        },
        "eventType": "Microsoft.HealthcareApis.DicomImageUpdated",
        "dataVersion": "1",
        "metadataVersion": "1",
        "eventTime": "2023-06-09T16:55:44.7197130Z",
    }


def test_cloud_event_envelope_and_default_partition() -> None:
    record = EventRecord(**{**{f: getattr(RECORD, f) for f in RECORD.__slots__}, "partition_name": None})
    event = render(record, "CloudEventSchemaV1_0", topic="/t", service_host="h")
    assert event["data"]["partitionName"] == "Microsoft.Default"
    assert event["subject"].startswith("h/v1/partitions/Microsoft.Default/studies/")
    assert (event["source"], event["type"], event["specversion"]) == (
        "/t", "Microsoft.HealthcareApis.DicomImageUpdated", "1.0",
    )  # fmt: skip


def test_event_time_is_utc_with_seven_digits() -> None:
    assert event_time(datetime(2024, 1, 2, 3, 4, 5, 6)) == "2024-01-02T03:04:05.0000060Z"


def test_filters() -> None:
    event = render(RECORD, "EventGridSchema", topic="/t", service_host="h")
    assert matches(event, included_types=None, subject_begins_with="", subject_ends_with="")
    assert matches(
        event,
        included_types=["microsoft.healthcareapis.dicomimageupdated"],
        subject_begins_with="H/V1",
        subject_ends_with="",
    )
    assert not matches(
        event,
        included_types=["Microsoft.HealthcareApis.DicomImageCreated"],
        subject_begins_with="",
        subject_ends_with="",
    )
    assert not matches(event, included_types=None, subject_begins_with="", subject_ends_with="/1.2.3.5")


def test_retry_delays_follow_event_grids_schedule() -> None:
    assert 10 <= retry_delay(1, 500, 1.0) <= 11
    assert 30 <= retry_delay(2, 500, 1.0) <= 33
    assert 120 <= retry_delay(1, 408, 1.0) <= 132  # 408: at least two minutes
    assert 30 <= retry_delay(1, 503, 1.0) <= 33  # 503: at least 30 s
    assert 43200 <= retry_delay(20, None, 1.0) <= 47520  # then every 12 hours
    assert retry_delay(1, None, 0.001) <= 0.011


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", "/v2/studies", "read"),
        ("HEAD", "/v2/studies/1/metadata", "read"),
        ("GET", "/v2/extendedquerytags/00101010/errors", "read"),
        ("POST", "/v2/studies", "write"),
        ("PUT", "/v2/studies/1", "write"),
        ("POST", "/v2/studies/$bulkUpdate", "write"),
        ("POST", "/v2/workitems/1/cancelrequest", "write"),
        ("DELETE", "/v2/studies/1/series/2", "delete"),
        ("POST", "/v2/extendedquerytags", "manageExtendedQueryTags"),
        ("PATCH", "/v2/extendedquerytags/00101010", "manageExtendedQueryTags"),
        ("DELETE", "/v2/extendedquerytags/00101010", "manageExtendedQueryTags"),
        ("POST", "/v2/export", "export"),
    ],
)
def test_required_action(method: str, path: str, action: str) -> None:
    assert required_action(method, path) == action


def test_roles() -> None:
    assert actions_of(["DICOM Data Owner"]) == ALL_ACTIONS
    assert actions_of(["dicom data reader"]) == {"read"}
    assert actions_of(["globalReader", "unknown"]) == {"read"}
    assert actions_of([]) == frozenset()


def test_event_sink_specs() -> None:
    assert parse_event_sink("http://localhost:7071/api/hook") == EventSinkSettings(
        type="webhook", url="http://localhost:7071/api/hook"
    )
    assert parse_event_sink("file:/tmp/events.jsonl").path == Path("/tmp/events.jsonl")
    assert parse_event_sink("stdout").key == "stdout"
    queue = parse_event_sink('{"type": "queue", "connection_string": "UseDevelopmentStorage=true", "queue_name": "q"}')
    assert (queue.key, queue.queue_base64) == ("queue:q", True)
    with pytest.raises(ValidationError, match="webhook event sink needs url"):
        EventSinkSettings(type="webhook")
    with pytest.raises(SystemExit):
        parse_event_sink("ftp://nope")


def test_event_sinks_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DICOM_EMULATOR_EVENT_SINKS", '[{"type": "file", "path": "ev.jsonl", "max_events_per_batch": 10}]'
    )
    monkeypatch.setenv("DICOM_EMULATOR_AUTH", "true")
    monkeypatch.setenv("DICOM_EMULATOR_AUTH_ROLE_ASSIGNMENTS", '{"oid-1": ["DICOM Data Reader"]}')
    settings = Settings()
    assert [(s.key, s.max_events_per_batch) for s in settings.event_sinks] == [("file:ev.jsonl", 10)]
    assert settings.auth and settings.auth_role_assignments == {"oid-1": ["DICOM Data Reader"]}
    assert settings.describe()["auth"] == "on: development issuer"
