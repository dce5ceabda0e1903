"""Expiry sweep: studies whose ``msdicom-expiry-*`` time has passed are deleted like a DELETE."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dicom_emulator.clock import utcnow
from dicom_emulator.errors import NotFoundError
from dicom_emulator.services.delete import DeleteService
from dicom_emulator.storage.models import Study

logger = logging.getLogger(__name__)


class ExpirySweep:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], deleter: DeleteService) -> None:
        self.sessions = sessions
        self.deleter = deleter

    async def __call__(self) -> None:
        async with self.sessions() as session:
            due = (
                await session.execute(
                    select(Study.partition_key, Study.study_uid).where(
                        Study.expires_at.is_not(None), Study.expires_at <= utcnow()
                    )
                )
            ).all()
        for partition_key, study_uid in due:
            try:
                # Same path as DELETE: files, index rows and one Delete feed entry per instance.
                records = await self.deleter.delete(partition_key, study_uid)
                logger.info("expired study %s (%d instances)", study_uid, len(records))
            except NotFoundError:
                pass  # another process expired it first
