"""Extended query tags (azure-behaviour §7): add with a reindex operation, list, get, patch, delete, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dicom_emulator.dicom.extended_tags import normalize_path, validate_add_request
from dicom_emulator.errors import BadRequestError, ConflictError, NotFoundError
from dicom_emulator.storage.jobs import REINDEX, SqlJobStore, new_job_id
from dicom_emulator.storage.tags_store import (
    QUERY_DISABLED,
    QUERY_ENABLED,
    SqlTagStore,
    TagErrorRecord,
    TagRecord,
)


class ExistingReindexError(ConflictError):
    """Another reindex is running; carries its id for the Location header (azure-behaviour §7.2)."""

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"There is already an active re-index operation with ID '{operation_id}'.")
        self.operation_id = operation_id


def _not_found(path: str) -> NotFoundError:
    return NotFoundError(f"The specified extended query tag with tag path {path} cannot be found.")


class ExtendedQueryTagService:
    def __init__(self, tags: SqlTagStore, jobs: SqlJobStore, *, wake: Callable[[], None] = lambda: None) -> None:
        self.tags = tags
        self.jobs = jobs
        # Tells this process's job runner to poll now, so a queued reindex starts without waiting a poll interval.
        self.wake = wake

    async def add(self, body: Any, *, base_url: str) -> str:
        """Validate, insert the tags as 'adding' and queue their reindex in one transaction; returns its id."""
        definitions = validate_add_request(body)
        job_id = new_job_id()
        # Check and insert under one lock: of concurrent adds exactly one queues its reindex, the others
        # find it active (409), never a unique-constraint 500 and never two reindex jobs at once.
        async with self.tags.exclusive() as session:
            running = await SqlJobStore.active_of_type_in(session, REINDEX)
            if running is not None:
                raise ExistingReindexError(running.job_id)
            keys = await self.tags.add(session, definitions, job_id)
            resources = [f"{base_url}/extendedquerytags/{d.path}" for d in definitions]
            SqlJobStore.add(session, REINDEX, {"tag_keys": keys}, resources, job_id=job_id)
        self.wake()
        return job_id

    async def list_tags(self, limit: int, offset: int) -> list[TagRecord]:
        return await self.tags.list_tags(limit, offset)

    async def get(self, path: str) -> TagRecord:
        normalized = normalize_path(path)
        record = await self.tags.get(normalized)
        if record is None:
            raise _not_found(path)
        return record

    async def update(self, path: str, body: Any) -> TagRecord:
        """PATCH {"queryStatus": "Enabled"|"Disabled"} (azure-behaviour §7.4)."""
        normalized = normalize_path(path)
        if not isinstance(body, dict):
            raise BadRequestError("The syntax of the request body is invalid.")
        status: str | None = None
        for key, value in body.items():
            if key.lower() != "querystatus":
                raise BadRequestError(f'The field is not supported: "{key}".')
            status = str(value).strip().lower() if value is not None else None
        if status is None:
            raise BadRequestError("The request body must contain the field 'queryStatus'.")
        if status not in (QUERY_ENABLED, QUERY_DISABLED):
            raise BadRequestError(
                f"The field 'queryStatus' in request body is invalid: Expected value '{body.get('queryStatus')}' "
                "to be one of the following values: ['Disabled', 'Enabled']"
            )
        record = await self.tags.set_query_status(normalized, status)
        if record is None:
            raise _not_found(path)
        return record

    async def delete(self, path: str) -> None:
        normalized = normalize_path(path)
        if not await self.tags.delete(normalized):
            raise _not_found(path)

    async def errors(self, path: str, limit: int, offset: int) -> list[TagErrorRecord]:
        record = await self.get(path)
        return await self.tags.errors(record.tag_key, limit, offset)
