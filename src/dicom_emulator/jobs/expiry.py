"""Expiry sweep: studies whose ``msdicom-expiry-*`` time has passed are deleted like a DELETE."""

from __future__ import annotations

import logging

from dicom_emulator.clock import utcnow
from dicom_emulator.errors import NotFoundError
from dicom_emulator.services.delete import DeleteService

logger = logging.getLogger(__name__)


class ExpirySweep:
    def __init__(self, deleter: DeleteService) -> None:
        self.deleter = deleter

    async def __call__(self) -> None:
        due = await self.deleter.expired_studies(utcnow())
        for partition_key, study_uid in due:
            try:
                # Same path as DELETE: files, index rows and one Delete feed entry per instance.
                records = await self.deleter.delete(partition_key, study_uid)
                logger.info("expired study %s (%d instances)", study_uid, len(records))
            except NotFoundError:
                pass  # another process expired it first
