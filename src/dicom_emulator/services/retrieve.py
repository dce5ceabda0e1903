"""Resolve instances for WADO-RS and C-GET, read their stored files, and serve metadata from the JSON stored at
store time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from dicom_emulator.errors import NotFoundError
from dicom_emulator.storage.blobs import BlobStore
from dicom_emulator.storage.index import InstanceRecord, SqlIndex

STUDY_NOT_FOUND = "The specified study cannot be found."
SERIES_NOT_FOUND = "The specified series cannot be found."
INSTANCE_NOT_FOUND = "The specified instance cannot be found."


@dataclass(frozen=True, slots=True)
class MetadataResult:
    etag: str
    # A JSON array, assembled from stored text without re-parsing (architecture invariant 4).
    body: bytes


class RetrieveService:
    def __init__(self, index: SqlIndex, blobs: BlobStore) -> None:
        self.index = index
        self.blobs = blobs

    async def instances(
        self, partition_key: int, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> list[InstanceRecord]:
        """Instances at the addressed level; 404 with the level's message when there are none (azure-behaviour §3.7)."""
        records = await self.index.get_instances(partition_key, study_uid, series_uid, sop_uid)
        if records:
            return records
        if sop_uid is not None:
            if await self.index.exists(partition_key, study_uid, series_uid):
                raise NotFoundError(INSTANCE_NOT_FOUND)
            if await self.index.exists(partition_key, study_uid):
                raise NotFoundError(SERIES_NOT_FOUND)
            raise NotFoundError(STUDY_NOT_FOUND)
        if series_uid is not None and await self.index.exists(partition_key, study_uid):
            raise NotFoundError(SERIES_NOT_FOUND)
        raise NotFoundError(STUDY_NOT_FOUND)

    async def metadata(
        self,
        partition_key: int,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        *,
        original: bool = False,
    ) -> MetadataResult:
        """Metadata array and its ETag: ``{maxWatermark}-{count}``, or ``{watermark}`` for one instance
        (azure-behaviour §3.5); with ``original``, of each instance's first version (azure-behaviour §15.4)."""
        records = await self.instances(partition_key, study_uid, series_uid, sop_uid)
        if original:
            records = [r.original() for r in records]
        if sop_uid is not None:
            etag = str(records[0].watermark)
        else:
            etag = f"{max(r.watermark for r in records)}-{len(records)}"
        body = b"[" + b",".join(r.metadata_json.encode() for r in records) + b"]"
        return MetadataResult(etag=etag, body=body)

    def read(self, record: InstanceRecord) -> AsyncIterator[bytes]:
        """The stored file of ``record`` as sent (no transcoding), streamed in chunks."""
        return self.blobs.read(record.blob_key)

    async def read_bytes(self, record: InstanceRecord) -> bytes:
        """The stored file of ``record`` in memory (C-GET reads it into a dataset)."""
        return await self.blobs.read_bytes(record.blob_key)

    def local_path(self, record: InstanceRecord) -> Path | None:
        """A filesystem path to the stored file for libraries that need one (pydicom), ``None`` for memory blobs."""
        return self.blobs.local_path(record.blob_key)
