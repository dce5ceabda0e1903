"""Export to Azure Blob Storage (azure-behaviour §10.2, §15.5): validate, queue an ``export`` operation, run it.

The request names ``identifiers`` (``study``, ``study/series`` or ``study/series/sop``) of the URL's partition and an
``azureblob`` destination. The destination is checked before the operation is queued (a missing container or bad
credentials is the client's 400, and ``errors.log`` exists before the operation starts, as in Azure). The job then
copies the latest version of each instance, streaming from the blob store; identifiers that match nothing and
instances whose copy failed are skipped and logged. Progress (a cursor into the identifiers) and the running
results are saved with each heartbeat, so an interrupted export resumes where it stopped.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

from dicom_emulator.clock import utcnow
from dicom_emulator.dicom.identifiers import validate_uid
from dicom_emulator.errors import BadRequestError
from dicom_emulator.services.retrieve import INSTANCE_NOT_FOUND, SERIES_NOT_FOUND, STUDY_NOT_FOUND
from dicom_emulator.storage.blobs import BlobStore
from dicom_emulator.storage.export_sink import AzureBlobExportSink, BlobDestination, DestinationError
from dicom_emulator.storage.index import SqlIndex
from dicom_emulator.storage.jobs import EXPORT, JobRecord, SqlJobStore, new_job_id

# Azure's destination validation messages (AzureBlobExportSinkProvider, azure-behaviour §15.5).
MSG_BOTH_FORMS = "ConnectionString and BlobContainerName cannot be specified along with BlobContainerUri."
MSG_NEED_BOTH = "Please specify both ConnectionString and BlobContainerName."
MSG_IDENTITY_WITH_CONNECTION_STRING = "Managed identity cannot be used with a ConnectionString."
MSG_IDENTITY_WITH_SAS = (
    "UseManagedIdentity cannot be specified if the BlobContainerUri container query string parameters."
)
MSG_ACCOUNT_KEY = "Account key authentication is not supported."
# Emulator wording: Azure's model binding messages for these are not documented.
MSG_BODY_SYNTAX = "The syntax of the request body is invalid."
MSG_SOURCE_TYPE = "The export source type '{value}' is not supported; use 'identifiers'."
MSG_DESTINATION_TYPE = "The export destination type '{value}' is not supported; use 'azureblob'."
MSG_VALUES = "The field Values must be a string or array type with a minimum length of '1'."
MSG_IDENTIFIER = "The value '{value}' is not a valid DICOM identifier: expected 'study[/series[/instance]]'."
_SOURCE = "identifiers"
_DESTINATION = "azureblob"
_UID_NAMES = ("StudyInstanceUid", "SeriesInstanceUid", "SopInstanceUid")


def _get(obj: Any, name: str) -> Any:
    """A JSON property read case-insensitively, as System.Text.Json binds Azure's request models."""
    if not isinstance(obj, dict):
        return None
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def parse_identifier(value: Any) -> tuple[str, ...]:
    """``study[/series[/sop]]`` as validated UIDs."""
    if not isinstance(value, str):
        raise BadRequestError(MSG_IDENTIFIER.format(value=value))
    parts = value.split("/")
    if not 1 <= len(parts) <= 3:
        raise BadRequestError(MSG_IDENTIFIER.format(value=value))
    return tuple(validate_uid(part, name) for part, name in zip(parts, _UID_NAMES, strict=False))


def _text(settings: Any, name: str) -> str | None:
    value = _get(settings, name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestError(MSG_BODY_SYNTAX)
    return value if value.strip() else None


def _split_uri(uri: str) -> SplitResult | None:
    """``uri`` split, or None when it names no usable host: not an absolute URI (as .NET's ``Uri`` would refuse it).

    Checked here so that the blob client is never handed a URI it fails on with an unexpected error (a 500).
    """
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - reading it validates the port (a number within 0..65535)
    except ValueError:  # "http://[::1" (unclosed IPv6 literal), "http://a:b/c", "http://a:99999/c"
        return None
    if not parts.hostname or any(char.isspace() for char in parts.netloc):
        return None
    return parts


def parse_destination(settings: Any) -> BlobDestination:
    """``destination.settings`` of an ``azureblob`` destination, checked in Azure's order."""
    uri = _text(settings, "blobContainerUri")
    connection_string = _text(settings, "connectionString")
    container = _text(settings, "blobContainerName")
    identity = _get(settings, "useManagedIdentity")
    if identity is not None and not isinstance(identity, bool):
        raise BadRequestError(MSG_BODY_SYNTAX)
    if uri is not None:
        if connection_string is not None or container is not None:
            raise BadRequestError(MSG_BOTH_FORMS)
        parts = _split_uri(uri)
        if identity and parts is not None and "sig=" in parts.query.lower():
            raise BadRequestError(MSG_IDENTITY_WITH_SAS)
        if parts is None or not uri.lower().startswith(("http://", "https://")):
            raise BadRequestError(f"The BlobContainerUri '{uri}' is not an absolute URI.")
        return BlobDestination(container_uri=uri, use_managed_identity=bool(identity))
    if connection_string is None or container is None:
        raise BadRequestError(MSG_NEED_BOTH)
    if identity:
        raise BadRequestError(MSG_IDENTITY_WITH_CONNECTION_STRING)
    lowered = connection_string.lower()
    # Account keys are refused except for the storage emulator (Azurite), as Azure's provider does.
    if "accountkey=" in lowered and "devstoreaccount1" not in lowered:
        raise BadRequestError(MSG_ACCOUNT_KEY)
    return BlobDestination(connection_string=connection_string, container_name=container)


def parse_export_request(body: Any) -> tuple[list[str], BlobDestination]:
    """The identifiers and the destination of an export request body."""
    if not isinstance(body, dict):
        raise BadRequestError(MSG_BODY_SYNTAX)
    source, destination = _get(body, "source"), _get(body, "destination")
    source_type = _get(source, "type")
    if not isinstance(source_type, str) or source_type.lower() != _SOURCE:
        raise BadRequestError(MSG_SOURCE_TYPE.format(value=source_type))
    destination_type = _get(destination, "type")
    if not isinstance(destination_type, str) or destination_type.lower() != _DESTINATION:
        raise BadRequestError(MSG_DESTINATION_TYPE.format(value=destination_type))
    values = _get(_get(source, "settings"), "values")
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values:
        raise BadRequestError(MSG_VALUES)
    identifiers = ["/".join(parse_identifier(v)) for v in values]
    return identifiers, parse_destination(_get(destination, "settings"))


class ExportService:
    def __init__(self, index: SqlIndex, blobs: BlobStore, jobs: SqlJobStore, *, wake: Any = lambda: None) -> None:
        self.index = index
        self.blobs = blobs
        self.jobs = jobs
        self.wake = wake

    async def start(self, partition_key: int, body: Any) -> str:
        """Validate the request and the destination, create errors.log, queue the operation; returns its id."""
        identifiers, destination = parse_export_request(body)
        job_id = new_job_id()
        sink = await AzureBlobExportSink.open(destination, job_id, create_log=True)
        try:
            results = {"exported": 0, "skipped": 0, "errorHref": sink.error_href}
        finally:
            sink.close()
        payload = {"partition_key": partition_key, "identifiers": identifiers, "destination": destination.to_json()}
        async with self.jobs.sessions.begin() as session:
            SqlJobStore.add(session, EXPORT, payload, [], job_id=job_id, results=results)
        self.wake()
        return job_id

    async def run(self, job: JobRecord, owner: str) -> dict[str, Any]:
        """Copy every identifier's instances; returns ``{exported, skipped, errorHref}``."""
        payload = job.payload
        partition_key = int(payload["partition_key"])
        identifiers: list[str] = list(payload["identifiers"])
        sink = await AzureBlobExportSink.open(
            BlobDestination.from_json(payload["destination"]), job.job_id, create_log=False
        )
        results: dict[str, Any] = dict(job.results or {})
        results.setdefault("exported", 0)
        results.setdefault("skipped", 0)
        results["errorHref"] = sink.error_href
        try:
            for position in range(job.cursor or 0, len(identifiers)):
                identifier = identifiers[position]
                errors = await self._export_one(sink, partition_key, identifier, results)
                await sink.log_errors(errors)
                async with self.jobs.sessions.begin() as session:
                    await self.jobs.heartbeat(session, job.job_id, owner, cursor=position + 1, results=results)
        finally:
            sink.close()
        return results

    async def _export_one(
        self, sink: AzureBlobExportSink, partition_key: int, identifier: str, results: dict[str, Any]
    ) -> list[Any]:
        parts = identifier.split("/")
        study, series, sop = parts[0], parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None
        records = await self.index.get_instances(partition_key, study, series, sop)
        if not records:
            message = INSTANCE_NOT_FOUND if sop else SERIES_NOT_FOUND if series else STUDY_NOT_FOUND
            results["skipped"] += 1
            return [(utcnow(), identifier, message)]
        errors = []
        for record in records:
            try:
                await sink.write_instance(
                    record.study_uid, record.series_uid, record.sop_uid, self.blobs.read(record.blob_key)
                )
            except DestinationError:
                raise  # the destination refused: the operation fails (azure-behaviour §15.5)
            except Exception as exc:  # noqa: BLE001 - any other copy failure skips the file, as Azure does
                results["skipped"] += 1
                uid = f"{record.study_uid}/{record.series_uid}/{record.sop_uid}"
                errors.append((utcnow(), uid, f"Failed to copy the file: {exc}"))
                continue
            results["exported"] += 1
        return errors
