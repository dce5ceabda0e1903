"""The ``azureblob`` export destination (azure-behaviour §10.2, §15.5), written with Azure's own SDK.

Files go to ``{container}/{operationId}/results/{study}/{series}/{sop}.dcm`` as block blobs staged chunk by chunk
from the emulator's blob store (never a whole file in memory); failures go to the append blob
``{container}/{operationId}/errors.log``, one JSON object per line. The SDK used is the synchronous one (no aiohttp
dependency); each call runs in a worker thread.

Credentials: a container URI with a SAS token, a connection string, or (emulator only) a URI of Azurite's
well-known development account, whose public key stands in for the managed identity Azure would use.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from dicom_emulator.errors import BadRequestError

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

# The Azure SDK is imported where an export uses it: it is the costliest import of the package (about a tenth of
# a second), and most emulators never export.

# Azurite's development account (public, documented by Microsoft); a managed identity cannot be emulated, so a URI
# on this account is written with its key instead.
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Messages of Azure's DicomBlobResource (azure-behaviour §15.5).
MSG_CONTAINER_MISSING = "Azure Blob Storage container '{container}' does not exist in account '{account}'."
MSG_CANNOT_CONNECT = "Cannot connect to Azure Blob Storage account '{account}'."
MSG_CANNOT_AUTHENTICATE = "Unable to authenticate for Azure Blob Storage account '{account}'."
MSG_CANNOT_WRITE = "Failed to write to Azure Blob Storage container '{container}' in account '{account}'."
# Emulator wording: Azure's message for a container URI without a container is not recorded.
MSG_NO_CONTAINER = "The BlobContainerUri '{uri}' does not name a container."
MSG_MANAGED_IDENTITY = (
    "Managed identity is not emulated: give the container URI a SAS token, use a connection string, or use the "
    "Azurite development account."
)
_CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 2, "connection_timeout": 10, "read_timeout": 60}


@dataclass(frozen=True, slots=True)
class BlobDestination:
    """Validated ``destination.settings`` of an export request (services/export.py parses them)."""

    container_uri: str | None = None
    connection_string: str | None = None
    container_name: str | None = None
    use_managed_identity: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "blobContainerUri": self.container_uri,
            "connectionString": self.connection_string,
            "blobContainerName": self.container_name,
            "useManagedIdentity": self.use_managed_identity,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlobDestination:
        return cls(
            container_uri=data.get("blobContainerUri"),
            connection_string=data.get("connectionString"),
            container_name=data.get("blobContainerName"),
            use_managed_identity=bool(data.get("useManagedIdentity")),
        )


class DestinationError(Exception):
    """The destination refused a write for a reason of its own configuration: the operation fails (Azure's
    ``ShouldContinue`` is false for a 4xx from the destination)."""


def _account_of(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in ("127.0.0.1", "localhost") or host.replace(".", "").isdigit():
        # Path-style (Azurite, IP endpoints): /{account}/{container}
        return parts.path.strip("/").split("/", 1)[0]
    return host.split(".", 1)[0]


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _container_client(destination: BlobDestination) -> ContainerClient:
    from azure.storage.blob import BlobServiceClient, ContainerClient

    if destination.container_uri is not None:
        uri = destination.container_uri
        has_sas = "sig=" in (urlsplit(uri).query or "")
        credential: dict[str, str] | None = None
        if not has_sas and _account_of(uri) == DEV_ACCOUNT_NAME:
            credential = {"account_name": DEV_ACCOUNT_NAME, "account_key": DEV_ACCOUNT_KEY}
        elif destination.use_managed_identity:
            raise BadRequestError(MSG_MANAGED_IDENTITY)
        try:
            return ContainerClient.from_container_url(uri, credential=credential, **_CLIENT_OPTIONS)
        except ValueError as exc:  # no container name in the path ("https://account.blob.core.windows.net/")
            raise BadRequestError(MSG_NO_CONTAINER.format(uri=uri)) from exc
    assert destination.connection_string is not None and destination.container_name is not None
    try:
        service = BlobServiceClient.from_connection_string(destination.connection_string, **_CLIENT_OPTIONS)
    except ValueError as exc:
        raise BadRequestError("The connection string is invalid.") from exc
    return service.get_container_client(destination.container_name)


class AzureBlobExportSink:
    """One export operation's view of its destination container."""

    def __init__(self, container: ContainerClient, operation_id: str) -> None:
        self.container = container
        self.operation_id = operation_id
        self.account = container.account_name or ""
        self.container_url = _without_query(container.url)

    @property
    def error_href(self) -> str:
        return f"{self.container_url}/{self.operation_id}/errors.log"

    @property
    def _error_blob(self) -> str:
        return f"{self.operation_id}/errors.log"

    @classmethod
    async def open(cls, destination: BlobDestination, operation_id: str, *, create_log: bool) -> AzureBlobExportSink:
        """Connect, check the container exists and (at the start of an operation) create the error log.

        Failures here are the client's (a missing container, bad credentials): 400 with Azure's messages.
        """
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        sink = cls(_container_client(destination), operation_id)
        names = {"account": sink.account, "container": sink.container.container_name}
        try:
            # Writing is the check: a container SAS may write blobs without reading container properties, and a
            # missing container answers ContainerNotFound. A resumed operation reads the log it created.
            log = sink.container.get_blob_client(sink._error_blob)
            if create_log:
                await asyncio.to_thread(log.create_append_blob)
            else:
                await asyncio.to_thread(log.get_blob_properties)
        except ResourceNotFoundError as exc:
            raise BadRequestError(MSG_CONTAINER_MISSING.format(**names)) from exc
        except ClientAuthenticationError as exc:
            raise BadRequestError(MSG_CANNOT_AUTHENTICATE.format(**names)) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            # ServiceResponseError too: urllib3 refuses some hosts only when the request is made.
            raise BadRequestError(MSG_CANNOT_CONNECT.format(**names)) from exc
        except HttpResponseError as exc:
            if exc.status_code in (401, 403):
                raise BadRequestError(MSG_CANNOT_AUTHENTICATE.format(**names)) from exc
            raise BadRequestError(MSG_CANNOT_WRITE.format(**names)) from exc
        return sink

    async def write_instance(self, study: str, series: str, sop: str, chunks: AsyncIterator[bytes]) -> None:
        """Upload one file as a block blob, one staged block per chunk read from the store.

        Raises :class:`DestinationError` for a 4xx of the destination (the operation fails) and lets other errors
        through (the caller skips the instance and logs it).
        """
        from azure.core.exceptions import HttpResponseError
        from azure.storage.blob import BlobBlock

        blob = self.container.get_blob_client(f"{self.operation_id}/results/{study}/{series}/{sop}.dcm")
        blocks: list[BlobBlock] = []
        try:
            async for chunk in chunks:
                block_id = base64.b64encode(f"{len(blocks):08d}".encode()).decode()
                await asyncio.to_thread(blob.stage_block, block_id, chunk)
                blocks.append(BlobBlock(block_id=block_id))
            await asyncio.to_thread(blob.commit_block_list, blocks)
        except HttpResponseError as exc:
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                raise DestinationError(str(exc.message or exc)) from exc
            raise

    async def log_errors(self, lines: list[tuple[datetime, str, str]]) -> None:
        """Append ``(timestamp, identifier, error)`` lines to errors.log (camelCase keys, azure-behaviour §15.5)."""
        if not lines:
            return
        text = "".join(
            json.dumps({"timestamp": ts.isoformat(), "identifier": identifier, "error": error}) + "\n"
            for ts, identifier, error in lines
        )
        log = self.container.get_blob_client(self._error_blob)
        await asyncio.to_thread(log.append_block, text.encode())

    def close(self) -> None:
        self.container.close()
