"""Instance files in Azure Blob Storage (or Azurite): the third :class:`~dicom_emulator.storage.blobs.BlobStore`.

With it, several emulator processes on several machines share one PostgreSQL index and one container. Keys are
the same as on the filesystem (a fresh suffix per version, so a blob is never overwritten while visible). The
synchronous SDK runs in worker threads (no aiohttp dependency): uploads go in blocks straight from the spooled
file, downloads stream chunk by chunk and read byte ranges for frames. Pixel work that needs a seekable file
(transcoding, rendering) reads the file into memory, bounded by the transcode size limit, as for memory blobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient

from dicom_emulator.storage.export_sink import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

CHUNK_SIZE = 4 * 1024 * 1024


def container_client(*, url: str | None, connection_string: str | None, container: str) -> ContainerClient:
    """The container of ``--blob-url`` (a container URL, with a SAS or on Azurite's development account) or of a
    connection string and ``--blob-container``."""
    options: dict[str, Any] = {
        "max_block_size": CHUNK_SIZE,
        "max_single_put_size": CHUNK_SIZE,
        "max_chunk_get_size": CHUNK_SIZE,
    }
    if url is not None:
        credential: dict[str, str] | None = None
        parts = urlsplit(url)
        if "sig=" not in parts.query and f"/{DEV_ACCOUNT_NAME}/" in f"{parts.path}/":
            credential = {"account_name": DEV_ACCOUNT_NAME, "account_key": DEV_ACCOUNT_KEY}
        return ContainerClient.from_container_url(url, credential=credential, **options)
    assert connection_string is not None
    return BlobServiceClient.from_connection_string(connection_string, **options).get_container_client(container)


class AzureBlobStore:
    def __init__(self, container: ContainerClient) -> None:
        self.container = container

    def ensure_container(self) -> None:
        """Create the container when it does not exist yet (blocking; at start-up)."""
        try:
            self.container.create_container()
        except ResourceExistsError:
            pass

    def put_file_blocking(self, key: str, source: Path) -> None:
        with open(source, "rb") as fh:
            self.container.get_blob_client(key).upload_blob(fh, overwrite=True, length=source.stat().st_size)
        source.unlink(missing_ok=True)

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        blob = self.container.get_blob_client(key)
        downloader = await asyncio.to_thread(blob.download_blob, offset=offset or None, length=length)
        chunks: Iterator[bytes] = downloader.chunks()
        while True:
            chunk = await asyncio.to_thread(next, chunks, b"")
            if not chunk:
                break
            yield chunk

    async def read_bytes(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        blob = self.container.get_blob_client(key)

        def _read() -> bytes:
            return blob.download_blob(offset=offset or None, length=length).readall()

        return await asyncio.to_thread(_read)

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self.container.delete_blob, key)
        except ResourceNotFoundError:
            pass

    def local_path(self, key: str) -> Path | None:
        return None

    def close(self) -> None:
        self.container.close()
