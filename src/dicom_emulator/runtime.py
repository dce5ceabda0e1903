"""The per-app bundle of storage and services that the fronts use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dicom_emulator.config import Settings
from dicom_emulator.jobs.runner import JobRunner
from dicom_emulator.services.changefeed import ChangeFeedService
from dicom_emulator.services.delete import DeleteService
from dicom_emulator.services.extended_query_tags import ExtendedQueryTagService
from dicom_emulator.services.mpps import MppsService
from dicom_emulator.services.operations import OperationService
from dicom_emulator.services.pixels import PixelService
from dicom_emulator.services.retrieve import RetrieveService
from dicom_emulator.services.search import SearchService
from dicom_emulator.services.store import StoreService
from dicom_emulator.services.workitems import WorkitemService
from dicom_emulator.storage.blobs import BlobStore
from dicom_emulator.storage.index import SqlIndex
from dicom_emulator.storage.tags_store import SqlTagStore


@dataclass(slots=True)
class Runtime:
    """Everything the routes need, built once per app in the lifespan."""

    settings: Settings
    index: SqlIndex
    blobs: BlobStore
    spool_dir: Path
    store: StoreService
    retrieve: RetrieveService
    search: SearchService
    delete: DeleteService
    changefeed: ChangeFeedService
    tags: SqlTagStore
    extended_query_tags: ExtendedQueryTagService
    operations: OperationService
    jobs_runner: JobRunner
    pixels: PixelService
    workitems: WorkitemService
    mpps: MppsService  # MPPS N-CREATE / N-SET (DIMSE only)
