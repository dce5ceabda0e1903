"""Events end to end: the real ``dicom-emulator serve`` process delivering to a webhook receiver in the test.

Covers the handshake, one event per stored and deleted instance in sequence order, a receiver that is down for a
while, and a server restart with undelivered events (they survive in the outbox, delivered after the restart).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import running_emulator
from tests.factories import make_dataset, multipart, to_bytes
from tests.webhook import Receiver

pytestmark = pytest.mark.e2e
ACCEPT = {"Accept": "application/dicom+json"}
CREATED = "Microsoft.HealthcareApis.DicomImageCreated"
DELETED = "Microsoft.HealthcareApis.DicomImageDeleted"


def _store(client: httpx.Client) -> tuple[str, str]:
    ds = make_dataset()
    body, ctype = multipart([to_bytes(ds)])
    r = client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 200, r.text
    return str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)


def _wait_failed_attempts(client: httpx.Client, count: int) -> None:
    """Until the sink has failed ``count`` times (the receiver is down); a generous bound, not a timing assertion."""
    deadline = time.monotonic() + 60
    while client.get("/emulator/eventsubscriptions").json()[0]["failedAttempts"] < count:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_webhook_receives_every_event_across_downtime_and_restart(tmp_path: Path) -> None:
    receiver = Receiver().start()
    sink = json.dumps({"type": "webhook", "url": receiver.url, "retry_scale": 0.001, "name": "receiver"})
    args = ("--event-sink", sink)
    env = {"DICOM_EMULATOR_JOB_POLL_INTERVAL": "0.1"}
    data = tmp_path / "data"
    try:
        with running_emulator(data, *args, env=env) as emulator, httpx.Client(base_url=emulator.base_url) as client:
            receiver.wait(lambda rs: len(rs) >= 1)  # the handshake happens at registration, before any event
            assert receiver.requests[0].event_type == "SubscriptionValidation"
            study, first = _store(client)
            _, second = _store(client)
            assert client.delete(f"/v2/studies/{study}").status_code == 204
            events = receiver.wait_events(3)
            assert [(e["eventType"], e["data"]["imageSopInstanceUid"]) for e in events] == [
                (CREATED, first),
                (CREATED, second),
                (DELETED, first),
            ]
            assert events[0]["data"]["serviceHostName"] == f"127.0.0.1:{emulator.port}"

            receiver.stop()  # down: events wait in the outbox and are retried
            _, third = _store(client)
            _wait_failed_attempts(client, 2)
            receiver.start()
            events = receiver.wait_events(4)
            assert events[3]["data"]["imageSopInstanceUid"] == third
            assert int(receiver.notifications()[-1].headers["aeg-delivery-count"]) >= 2

            receiver.stop()
            _, fourth = _store(client)
            _wait_failed_attempts(client, 1)
        # The emulator stopped with an undelivered event; it starts again with the receiver up.
        receiver.start()
        with running_emulator(data, *args, env=env):
            events = receiver.wait_events(5)
        assert [e["data"]["sequenceNumber"] for e in events] == [1, 2, 3, 4, 5]
        assert events[4]["data"]["imageSopInstanceUid"] == fourth
        assert len({e["id"] for e in events}) == 5
        # Validated once: the subscription did not change, so the restart did not repeat the handshake.
        assert [r.event_type for r in receiver.requests].count("SubscriptionValidation") == 1
    finally:
        receiver.stop()
