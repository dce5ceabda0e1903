"""Application factory: ``create_app(settings)`` wires storage and services in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine

from dicom_emulator import __version__
from dicom_emulator.api import build_router
from dicom_emulator.api.auth import AuthMiddleware
from dicom_emulator.api.errors import install_error_handlers
from dicom_emulator.api.faults import FaultInjector, FaultMiddleware, load_config
from dicom_emulator.api.openapi import install_openapi
from dicom_emulator.api.versions import VersionGuardMiddleware
from dicom_emulator.config import Settings
from dicom_emulator.dicom.reading import configure_pydicom
from dicom_emulator.jobs.bulk_update import BulkUpdateHandler
from dicom_emulator.jobs.event_delivery import EventDispatcher, SinkLoop
from dicom_emulator.jobs.event_sinks import build_sink
from dicom_emulator.jobs.expiry import ExpirySweep
from dicom_emulator.jobs.export import ExportHandler
from dicom_emulator.jobs.reindex import ReindexHandler
from dicom_emulator.jobs.runner import JobRunner
from dicom_emulator.runtime import Runtime
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
from dicom_emulator.services.pixels import PixelService, ThumbnailCache
from dicom_emulator.services.retrieve import RetrieveService
from dicom_emulator.services.search import SearchService
from dicom_emulator.services.store import StoreService
from dicom_emulator.services.workitems import WorkitemService
from dicom_emulator.spool_files import SpoolFiles
from dicom_emulator.storage.blobs import BlobStore, FileSystemBlobStore, MemoryBlobStore
from dicom_emulator.storage.changefeed_store import SqlChangeFeedStore
from dicom_emulator.storage.db import create_engine, create_sync_engine, migrate, session_factory
from dicom_emulator.storage.events_store import SqlEventStore
from dicom_emulator.storage.index import SqlIndex
from dicom_emulator.storage.jobs import EXPORT, REINDEX, UPDATE, SqlJobStore
from dicom_emulator.storage.mpps_store import SqlMppsStore
from dicom_emulator.storage.partition_store import SqlPartitionStore
from dicom_emulator.storage.reindex_store import SqlReindexStore
from dicom_emulator.storage.sweep import SpoolDirectory, sweep_orphan_blobs, sweep_spool
from dicom_emulator.storage.tags_store import SqlTagStore
from dicom_emulator.storage.workitem_store import SqlWorkitemStore
from dicom_emulator.worker_shares import ConnectionShares

if TYPE_CHECKING:
    from dicom_emulator.dimse.gateway import DimseGateway

logger = logging.getLogger(__name__)


EXPOSED_HEADERS = [
    "Location",
    "Content-Location",
    "ETag",
    "Warning",
    "erroneous-dicom-attributes",
    "api-supported-versions",
    "WWW-Authenticate",  # the 401 challenge of --auth names the authority to get a token from
]


async def prepare_storage(settings: Settings) -> None:
    """What must happen once before worker processes start: the data directory and the migrations.

    ``serve --workers N`` calls this in the supervisor, then starts the workers with
    ``migrate_on_start=False``, so N processes never race to migrate one SQLite file.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url, pool_size=1)
    try:
        await migrate(engine)
        await SqlIndex(session_factory(engine)).ensure_default_partition()
    finally:
        await engine.dispose()
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    sweep_spool(settings.spool_dir)


async def _sweep_orphans(blob_root: Path, engine: AsyncEngine, grace_seconds: float) -> None:
    try:
        removed = await sweep_orphan_blobs(blob_root, engine, grace_seconds=grace_seconds)
    except Exception:  # noqa: BLE001 - a failed sweep must not stop the emulator; it runs again at the next start
        logger.warning("start-up sweep of orphan blob files failed", exc_info=True)
        return
    logger.info("start-up sweep: removed %d orphan blob files", removed)


def _event_dispatcher(settings: Settings, store: SqlEventStore) -> EventDispatcher:
    """One delivery loop per configured sink (jobs/event_delivery.py), owned by this process's runner."""
    owner = uuid.uuid4().hex
    host = settings.resolved_event_service_host
    return EventDispatcher(
        store,
        [
            SinkLoop(
                build_sink(sink),
                store,
                owner=owner,
                topic=settings.event_topic,
                service_host=host,
                validation_base=f"{settings.scheme}://{host}",
                poll_interval=settings.job_poll_interval,
                lease=timedelta(seconds=settings.job_lease_seconds),
            )
            for sink in settings.event_sinks
        ],
    )


def create_app(settings: Settings | None = None, *, dimse_shares: ConnectionShares | None = None) -> FastAPI:
    """The app; ``dimse_shares``: the supervisor's per-worker association counts (``serve --workers N``)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_pydicom()
        # Fault rules of this run (api/faults.py): the file's, or none until PUT /emulator/faults.
        app.state.faults = FaultInjector(load_config(settings.faults) if settings.faults else None)
        if not settings.in_memory:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        power_safe = settings.sync_commits
        engine = create_engine(settings.resolved_database_url, pool_size=settings.pool_size, power_safe=power_safe)
        tmp: tempfile.TemporaryDirectory[str] | None = None
        runner: JobRunner | None = None
        gateway: DimseGateway | None = None
        index: SqlIndex | None = None
        spool: SpoolDirectory | None = None
        spool_files: SpoolFiles | None = None
        tags: SqlTagStore | None = None
        sweeper: asyncio.Task[None] | None = None
        try:
            if settings.migrate_on_start:
                await migrate(engine)
            # Writers of several processes on one SQLite file queue on a lock file beside it (storage/write_lock.py).
            lock_path = None if settings.in_memory or settings.database_url else settings.data_dir / "index.lock"
            sync_engine = create_sync_engine(settings.resolved_database_url, power_safe=power_safe)
            index = SqlIndex(session_factory(engine), lock_path=lock_path, sync_engine=sync_engine)
            await index.ensure_default_partition()
            partitions = PartitionService(SqlPartitionStore(index.sessions), enabled=settings.data_partitions)
            await partitions.check_start()
            blobs: BlobStore
            if settings.azure_blobs:
                # Imported only for this backend: the Azure SDK is the package's costliest import.
                from dicom_emulator.storage.azure_blobs import AzureBlobStore, container_client

                azure = AzureBlobStore(
                    container_client(
                        url=settings.blob_url,
                        connection_string=settings.blob_connection_string,
                        container=settings.blob_container,
                    )
                )
                await asyncio.to_thread(azure.ensure_container)
                blobs = azure
            if settings.in_memory:
                if not settings.azure_blobs:
                    blobs = MemoryBlobStore()
                tmp = tempfile.TemporaryDirectory(prefix="dicom-emulator-")
                spool_dir = Path(tmp.name)
            else:
                if not settings.azure_blobs:
                    blobs = FileSystemBlobStore(settings.blob_dir, sync=settings.sync_files)
                # A spool directory of this process's own, locked while it lives: the sweep removes those of
                # processes that died (storage/sweep.py), also when another process starts.
                removed = sweep_spool(settings.spool_dir)
                if removed:
                    logger.info("start-up sweep: removed %d spool files of dead processes", removed)
                spool = SpoolDirectory(settings.spool_dir)
                spool_dir = spool.path
            spool_files = SpoolFiles(spool_dir)
            sessions = index.sessions
            tags = SqlTagStore(sessions, sync_engine=sync_engine)
            jobs = SqlJobStore(sessions)
            deleter = DeleteService(index, blobs)
            export = ExportService(index, blobs, jobs)
            store = StoreService(index, blobs, tags)
            bulk_update = BulkUpdateService(index, blobs, jobs, store, spool_dir=spool_dir)
            events = SqlEventStore(sessions)
            dispatcher = _event_dispatcher(settings, events)
            await dispatcher.register()
            if dispatcher.loops:  # no sink configured: nothing to wake after each commit
                index.feed_listeners.append(dispatcher.wake)
            runner = JobRunner(
                jobs,
                {
                    REINDEX: ReindexHandler(
                        tags,
                        SqlReindexStore(sessions),
                        jobs,
                        batch_size=settings.reindex_batch_size,
                        pause=settings.reindex_batch_pause,
                    ),
                    EXPORT: ExportHandler(export),
                    UPDATE: BulkUpdateHandler(bulk_update),
                },
                poll_interval=settings.job_poll_interval,
                lease=timedelta(seconds=settings.job_lease_seconds),
                # With several worker processes one sweep is enough; the job queue itself is shared safely.
                periodic=[(settings.expiry_interval_seconds, ExpirySweep(deleter))]
                if settings.worker_index == 0
                else [],
                services=[dispatcher.run],
            )
            export.wake = runner.wake
            bulk_update.wake = runner.wake
            retrieve = RetrieveService(index, blobs)
            pixels = PixelService(
                retrieve,
                blobs,
                spool_dir=spool_dir,
                max_transcode_size=settings.max_transcode_size,
                thumbnails=ThumbnailCache(),
            )
            workitems = WorkitemService(SqlWorkitemStore(sessions))
            app.state.runtime = Runtime(
                settings=settings,
                spool_dir=spool_dir,
                spool_files=spool_files,
                store=store,
                retrieve=retrieve,
                search=SearchService(index, tags, loose=settings.loose),
                delete=deleter,
                changefeed=ChangeFeedService(SqlChangeFeedStore(sessions)),
                extended_query_tags=ExtendedQueryTagService(tags, jobs, wake=runner.wake),
                operations=OperationService(jobs),
                pixels=pixels,
                workitems=workitems,
                mpps=MppsService(SqlMppsStore(sessions), workitems, ae_title=settings.ae_title),
                partitions=partitions,
                export=export,
                bulk_update=bulk_update,
                events=EventService(
                    events,
                    topic=settings.event_topic,
                    service_host=settings.resolved_event_service_host,
                    sinks=settings.event_sinks,
                ),
                auth=await AuthService.create(settings),
            )
            # The composition root's own handles, for tests that reach under the services (the fronts use the
            # Runtime only).
            app.state.index = index
            app.state.jobs_runner = runner
            runner.start()
            if settings.dimse_enabled:
                assert settings.dimse_port is not None
                # Imported only when DIMSE is on (off by default): pynetdicom's imports cost ~140 ms of each start.
                from dicom_emulator.dimse.gateway import DimseGateway

                gateway = DimseGateway(
                    app.state.runtime,
                    host=settings.host,
                    port=settings.dimse_port,
                    ae_title=settings.ae_title,
                    # serve bound the port once; every worker accepts from that socket.
                    listen_fd=settings.dimse_fd,
                    shares=dimse_shares,
                    worker_index=settings.worker_index,
                )
                await gateway.start()
            if not settings.in_memory and not settings.azure_blobs and settings.worker_index == 0:
                sweeper = asyncio.create_task(
                    _sweep_orphans(settings.blob_dir, engine, settings.orphan_grace_seconds), name="orphan sweep"
                )
            # One line a user (and the pytest plugin, pytest_plugin.py) reads: where to point a client.
            logger.info(
                "dicom-emulator %s ready on %s (API docs: %s/emulator/docs): %s",
                __version__,
                settings.base_url,
                settings.base_url,
                settings.describe(),
            )
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            if gateway is not None:
                await gateway.stop()
            if runner is not None:
                await runner.stop()
            if index is not None:
                index.close()
            if tags is not None:
                tags.close()
            await engine.dispose()
            if spool_files is not None:
                spool_files.close()
            if tmp is not None:
                tmp.cleanup()
            if spool is not None:
                spool.close()

    app = FastAPI(
        title="Azure Health Data Services DICOM service emulator",
        version=__version__,
        lifespan=lifespan,
        docs_url="/emulator/docs",
        redoc_url=None,
        openapi_url="/emulator/openapi.json",
    )
    install_error_handlers(app)
    install_openapi(app)
    # Inside the version guard: unknown versions are 400 before any token is looked at.
    app.add_middleware(AuthMiddleware)
    app.add_middleware(VersionGuardMiddleware)
    # Emulator-only fault injection (off unless rules are loaded); inside CORS so browsers can read its answers.
    app.add_middleware(FaultMiddleware)
    origins = settings.cors_origin_list
    if origins:
        # Outermost, so preflights and error responses carry the headers too. Browsers may only read
        # the headers listed in expose_headers (Location for operations, ETag for metadata caching...).
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials="*" not in origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    app.include_router(build_router())
    return app
