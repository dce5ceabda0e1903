"""Bulk update (azure-behaviour §10.1, §15.1–§15.3): validate, queue an ``update`` operation, write new versions.

Studies are processed one at a time in request order. Each instance is copied from the blob store to a spool file,
read with its pixel data deferred (never loaded), changed, written to a second spool file, then validated and
indexed the way STOW does it: a new version under a fresh blob key with an ``Update`` change-feed entry, the
study and series rows taking the new values (QIDO sees them at once). The first version stays (file and
metadata) for ``msdicom-request-original``; an intermediate version's file is deleted once replaced.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread

from dicom_emulator import __version__
from dicom_emulator.dicom.bulk_update import (
    MAX_STUDIES,
    MSG_STUDIES_MISSING,
    MSG_TOO_MANY_STUDIES,
    apply_changes,
    change_dataset_errors,
)
from dicom_emulator.dicom.identifiers import validate_uid
from dicom_emulator.dicom.json_model import json_to_dataset
from dicom_emulator.errors import BadRequestError, ConflictError
from dicom_emulator.services.store import StoreRequest, StoreService, prepare_new_version
from dicom_emulator.storage.blobs import BlobStore
from dicom_emulator.storage.index import ACTION_UPDATE, InstanceRecord, NewInstance, SqlIndex
from dicom_emulator.storage.jobs import UPDATE, JobFailedError, JobRecord, SqlJobStore, new_job_id

logger = logging.getLogger(__name__)

MSG_BODY_SYNTAX = "The syntax of the request body is invalid."
MSG_CHANGE_DATASET_MISSING = "The required field 'ChangeDataset' is missing."  # emulator wording
MSG_STUDY_FAILED = "Failed to update instances for study {study}"
MSG_INSTANCE_FAILED = (
    "Failed to update instance. PartitionKey: {partition}, StudyInstanceUID: {study}, SeriesInstanceUID: {series}, "
    "SOPInstanceUID: {sop}"
)
MSG_MORE_FAILED = (
    "There are more instances failed to update than listed above. Please check the diagnostics logs for the "
    "complete list."
)
MAX_LISTED_FAILURES = 5
COMMIT_BATCH = 50


class ExistingUpdateError(ConflictError):
    def __init__(self, operation_id: str) -> None:
        super().__init__(f"There is already an active update operation with ID '{operation_id}'.")


class ChangeDatasetError(BadRequestError):
    """Tags that may not be updated: answered as a DICOM JSON dataset with ErrorComments (azure-behaviour §10.1)."""

    def __init__(self, comments: list[str]) -> None:
        super().__init__("; ".join(comments))
        self.comments = comments

    def dataset_json(self) -> dict[str, Any]:
        items = [{"00000902": {"vr": "LO", "Value": [c]}} for c in self.comments]
        return {"00741048": {"vr": "SQ", "Value": items}}


def _get(obj: Any, name: str) -> Any:
    """A JSON property read case-insensitively (System.Text.Json binding of Azure's request model)."""
    if not isinstance(obj, dict):
        return None
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def parse_bulk_update_request(body: Any) -> tuple[list[str], dict[str, Any]]:
    """The study UIDs and the change dataset (DICOM JSON) of a request, validated as Azure does."""
    if not isinstance(body, dict):
        raise BadRequestError(MSG_BODY_SYNTAX)
    studies = _get(body, "studyInstanceUids")
    if not isinstance(studies, list) or not studies:
        raise BadRequestError(MSG_STUDIES_MISSING)
    if len(studies) > MAX_STUDIES:
        raise BadRequestError(MSG_TOO_MANY_STUDIES)
    uids = [validate_uid(s if isinstance(s, str) else str(s), "StudyInstanceUid") for s in studies]
    change = _get(body, "changeDataset")
    if not isinstance(change, dict):
        raise BadRequestError(MSG_CHANGE_DATASET_MISSING)
    errors = change_dataset_errors(json_to_dataset(change))
    if errors:
        raise ChangeDatasetError(errors)
    return uids, change


class BulkUpdateService:
    def __init__(
        self,
        index: SqlIndex,
        blobs: BlobStore,
        jobs: SqlJobStore,
        store: StoreService,
        *,
        spool_dir: Path,
        wake: Any = lambda: None,
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.jobs = jobs
        self.store = store
        self.spool_dir = spool_dir
        self.wake = wake

    async def start(self, partition_key: int, partition_name: str, body: Any) -> str:
        """Validate and queue the update; 409 while another update is not finished."""
        study_uids, change = parse_bulk_update_request(body)
        running = await self.jobs.active_of_type(UPDATE)
        if running is not None:
            raise ExistingUpdateError(running.job_id)
        payload = {
            "partition_key": partition_key,
            "partition_name": partition_name,
            "study_uids": study_uids,
            "change_dataset": change,
        }
        results = {"studyProcessed": 0, "studyUpdated": 0, "studyFailed": 0, "instanceUpdated": 0}
        job_id = new_job_id()
        async with self.jobs.sessions.begin() as session:
            SqlJobStore.add(session, UPDATE, payload, [], job_id=job_id, results=results)
        self.wake()
        return job_id

    async def run(self, job: JobRecord, owner: str) -> dict[str, Any]:
        payload = job.payload
        studies: list[str] = list(payload["study_uids"])
        change = json_to_dataset(payload["change_dataset"])
        results: dict[str, Any] = dict(job.results or {})
        for name in ("studyProcessed", "studyUpdated", "studyFailed", "instanceUpdated"):
            results.setdefault(name, 0)
        for position in range(job.cursor or 0, len(studies)):
            study = studies[position]
            updated, failures = await self._update_study(
                int(payload["partition_key"]), str(payload["partition_name"]), study, change
            )
            results["studyProcessed"] += 1
            if failures:
                results["studyFailed"] += 1
                errors = results.setdefault("errors", [])
                errors.append(MSG_STUDY_FAILED.format(study=study))
                errors.extend(failures[:MAX_LISTED_FAILURES])
                if len(failures) > MAX_LISTED_FAILURES:
                    errors.append(MSG_MORE_FAILED)
            elif updated:
                results["studyUpdated"] += 1
                results["instanceUpdated"] += updated
            percent = (position + 1) * 100 // len(studies)
            async with self.jobs.sessions.begin() as session:
                await self.jobs.heartbeat(
                    session, job.job_id, owner, cursor=position + 1, percent=percent, results=results
                )
        if results["studyFailed"]:
            raise JobFailedError(results)  # "Update operation completed with errors." (azure-behaviour §15.2)
        return results

    async def _update_study(
        self, partition_key: int, partition_name: str, study: str, change: Dataset
    ) -> tuple[int, list[str]]:
        """New versions of every instance of ``study``: (instances updated, failure messages)."""
        records = await self.index.get_instances(partition_key, study)
        if not records:
            return 0, []  # processed, neither updated nor failed (azure-behaviour §15.2)
        extended = await self.store.extended_tags()
        request = StoreRequest(api_major=2, route_study_uid=study, replace=True, partition_key=partition_key)
        updated = 0
        failures: list[str] = []
        for start in range(0, len(records), COMMIT_BATCH):
            batch: list[NewInstance] = []
            for record in records[start : start + COMMIT_BATCH]:
                try:
                    batch.append(await self._new_version(record, change, request, extended))
                except Exception:  # noqa: BLE001 - one instance's failure fails its study, not the operation
                    logger.warning("updating %s failed", record.sop_uid, exc_info=True)
                    failures.append(_failure(partition_name, record))
            if failures:
                for new in batch:
                    await self.blobs.delete(new.blob_key)
                break
            results = await self.index.add_instances(batch, replace=True)
            for new, result in zip(batch, results, strict=True):
                if result.error is not None:
                    await self.blobs.delete(new.blob_key)
                    failures.append(_failure(partition_name, next(r for r in records if r.sop_uid == new.sop_uid)))
                    continue
                updated += 1
                # The replaced version's file goes unless it is the original, which is kept.
                if result.old_blob is not None and result.old_blob != new.original_blob_key:
                    await self.blobs.delete(result.old_blob)
        return updated, failures

    async def _new_version(
        self, record: InstanceRecord, change: Dataset, request: StoreRequest, extended: frozenset[int]
    ) -> NewInstance:
        """Rewrite one instance's file with ``change`` and place it in the blob store; its NewInstance."""
        source = self.spool_dir / f"update-{uuid.uuid4().hex}.dcm"
        target = source.with_suffix(".new.dcm")
        try:
            with open(source, "wb") as fh:
                async for chunk in self.blobs.read(record.blob_key):
                    await asyncio.to_thread(fh.write, chunk)

            def rewrite() -> NewInstance:
                # defer_size: pixel data (and any large value) is read from ``source`` only while writing.
                ds = dcmread(source, defer_size=4096)
                apply_changes(ds, change, implementation_version=f"dicom-emulator {__version__}")
                ds.save_as(target, enforce_file_format=False)
                outcome, new = prepare_new_version(target, request, extended)
                if new is None:
                    raise ValueError(f"the updated instance failed validation: {outcome.comments}")
                self.blobs.put_file_blocking(new.blob_key, target)
                return new

            new = await asyncio.to_thread(rewrite)
        finally:
            source.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
        # The first version is kept once; later updates carry it over (azure-behaviour §15.3).
        first = record.original()
        return dataclasses.replace(
            new,
            action=ACTION_UPDATE,
            keep_expiry=True,
            original_watermark=first.watermark,
            original_blob_key=first.blob_key,
            original_size=first.size,
            original_metadata_json=first.metadata_json,
        )


def _failure(partition_name: str, record: InstanceRecord) -> str:
    return MSG_INSTANCE_FAILED.format(
        partition=partition_name, study=record.study_uid, series=record.series_uid, sop=record.sop_uid
    )
