"""Delete at study, series or instance level (azure-behaviour §5)."""

from __future__ import annotations

import logging
from datetime import datetime

from dicom_emulator.errors import NotFoundError
from dicom_emulator.services.retrieve import INSTANCE_NOT_FOUND, SERIES_NOT_FOUND, STUDY_NOT_FOUND
from dicom_emulator.storage.blobs import BlobStore
from dicom_emulator.storage.index import InstanceRecord, SqlIndex

logger = logging.getLogger(__name__)


class DeleteService:
    def __init__(self, index: SqlIndex, blobs: BlobStore) -> None:
        self.index = index
        self.blobs = blobs

    async def delete(
        self, partition_key: int, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> list[InstanceRecord]:
        """Remove the index rows (with one Delete feed entry per instance), then their files."""
        records = await self.index.delete_instances(partition_key, study_uid, series_uid, sop_uid)
        if not records:
            message = INSTANCE_NOT_FOUND if sop_uid else SERIES_NOT_FOUND if series_uid else STUDY_NOT_FOUND
            raise NotFoundError(message)
        for record in records:
            # Every version goes: the latest and the original kept by a bulk update (azure-behaviour §15.3).
            for key in record.blob_keys:
                try:
                    await self.blobs.delete(key)
                except OSError:
                    # The rows are gone, so the instance is deleted; an undeletable file is an orphan.
                    logger.warning("could not delete blob %s", key, exc_info=True)
        return records

    async def expired_studies(self, now: datetime) -> list[tuple[int, str]]:
        """(partition key, study UID) of the studies whose expiry time (STOW ``msdicom-expiry-*``) has passed."""
        return await self.index.expired_studies(now)
