"""The per-app bundle of domain services that the fronts (api/ routes, dimse/ handlers) use.

Built once per app by the composition root (``app.py``) in the lifespan. It is typed only with service types (plus
the settings and the spool directory), so a front that holds it can reach the domain but not the SQL index, the
blob store or the job runner: those stay with the composition root, which wires them into the services. In the
import-linter layers it sits between the fronts and ``services``: it imports services only, and is imported by the
fronts and the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dicom_emulator.config import Settings
from dicom_emulator.services.auth import AuthService
from dicom_emulator.services.bulk_update import BulkUpdateService
from dicom_emulator.services.changefeed import ChangeFeedService
from dicom_emulator.services.delete import DeleteService
from dicom_emulator.services.events import EventService
from dicom_emulator.services.export import ExportService
from dicom_emulator.services.extended_query_tags import ExtendedQueryTagService
from dicom_emulator.services.mpps import MppsService
from dicom_emulator.services.operations import OperationService
from dicom_emulator.services.partitions import PartitionService
from dicom_emulator.services.pixels import PixelService
from dicom_emulator.services.retrieve import RetrieveService
from dicom_emulator.services.search import SearchService
from dicom_emulator.services.store import StoreService
from dicom_emulator.services.workitems import WorkitemService
from dicom_emulator.spool_files import SpoolFiles


@dataclass(slots=True)
class Runtime:
    """Everything the routes and DIMSE handlers need, built once per app in the lifespan."""

    settings: Settings
    spool_dir: Path
    spool_files: SpoolFiles  # new files in spool_dir, made ahead of need (STOW parts, C-STORE data sets)
    store: StoreService
    retrieve: RetrieveService
    search: SearchService
    delete: DeleteService
    changefeed: ChangeFeedService
    extended_query_tags: ExtendedQueryTagService
    operations: OperationService
    pixels: PixelService
    workitems: WorkitemService
    mpps: MppsService  # MPPS N-CREATE / N-SET (DIMSE only)
    partitions: PartitionService
    export: ExportService
    bulk_update: BulkUpdateService
    events: EventService  # events as published (GET /emulator/events) and webhook validation
    auth: AuthService  # bearer tokens and roles (serve --auth; api/auth.py), the development issuer
