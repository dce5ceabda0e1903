"""Settings: defaults < environment < CLI flags (docs/architecture.md, The Runtime)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("dicom-data")
# Azure's limit per STOW part (azure-behaviour §2.2, §10.5).
MAX_STOW_PART_SIZE = 2 * 1024**3
# Transcode/render source size limit (azure-behaviour §3.2, §10.5).
MAX_TRANSCODE_SIZE = 100 * 1024**2
# Largest data set a Deflated Explicit VR Little Endian instance may inflate to: every retrieve inflates it in
# memory (as a transcode does), so a larger one (a zip bomb) is refused at store time (README, Limits).
MAX_INFLATED_SIZE = MAX_TRANSCODE_SIZE
DEFAULT_AE_TITLE = "DICOM_EMULATOR"


class Settings(BaseSettings):
    """Resolved emulator configuration.

    The original emulator read ``DATABASE_URL`` and ``DICOM_STORAGE_DIR``; both are honoured as
    aliases, beside the ``DICOM_EMULATOR_`` prefix, so existing compose files keep working.
    """

    model_config = SettingsConfigDict(env_prefix="DICOM_EMULATOR_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    in_memory: bool = False
    loose: bool = False
    log_level: str = "info"
    access_log: bool = True
    # The URL clients reach this emulator at (scheme, host, port, optional path prefix), e.g. behind a proxy
    # or a Docker port mapping: RetrieveURLs, Location headers and hrefs start with it. None = from the request.
    public_url: str | None = None
    max_part_size: int = Field(default=MAX_STOW_PART_SIZE, ge=1)
    # Limits against hostile or broken clients (README, Limits; http_protocol.py, api/json_body.py).
    max_json_body_size: int = Field(default=4 * 1024**2, ge=1)  # workitem and extended-query-tag bodies: 413
    max_header_size: int = Field(default=64 * 1024, ge=1024)  # request line + headers: 431, closed
    header_timeout: float = Field(default=30.0, gt=0)  # seconds to send the request headers
    body_timeout: float = Field(default=60.0, gt=0)  # seconds without a body byte while uploading
    keep_alive_timeout: int = Field(default=30, ge=1)  # seconds an idle keep-alive connection stays open
    # Open HTTP connections per process; more are closed at once. None = the open-file limit minus 128.
    max_connections: int | None = Field(default=None, ge=1)
    max_transcode_size: int = Field(default=MAX_TRANSCODE_SIZE, ge=1)
    # CORS for browser viewers (OHIF): comma-separated origins, "*" for any (without credentials),
    # or "" to send no CORS headers at all.
    cors_origins: str = "*"
    # Background jobs: how often an idle runner polls for work, and how long a claimed job may go
    # without a heartbeat before another runner takes it over (e.g. after a crash).
    job_poll_interval: float = Field(default=1.0, gt=0)  # seconds
    job_lease_seconds: float = Field(default=30.0, gt=0)
    # How often studies past their msdicom-expiry time are deleted.
    expiry_interval_seconds: float = Field(default=60.0, gt=0)
    reindex_batch_size: int = Field(default=100, ge=1)
    # Pause between reindex batches (seconds): throttles a reindex so it leaves the database to the API.
    reindex_batch_pause: float = Field(default=0.0, ge=0)
    # Blob files without an index row are removed at start once this old (seconds): younger ones may belong to
    # a store another process has not committed yet.
    orphan_grace_seconds: float = Field(default=3600.0, ge=0)
    # Database connection pool size per process (PostgreSQL only).
    pool_size: int = Field(default=10, ge=1)
    # DIMSE gateway (C-ECHO, C-STORE, C-FIND, C-GET, MWL, MPPS): TCP port, None or 0 = off; and its AE title.
    dimse_port: int | None = Field(default=None, ge=0, le=65535)
    ae_title: str = DEFAULT_AE_TITLE
    # Worker processes serving HTTP and DIMSE on one data directory / database (None = one per CPU core).
    # ``--in-memory`` always runs one: its index and files live in the process.
    workers: int | None = Field(default=None, ge=1, le=64)
    # Set by the supervisor for its workers, not by users: which worker this is (periodic sweeps run in
    # worker 0 only), and whether the lifespan migrates (the supervisor already did, once, before forking).
    worker_index: int = Field(default=0, ge=0, exclude=True)
    migrate_on_start: bool = Field(default=True, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _legacy_env(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "database_url" not in data and os.environ.get("DATABASE_URL"):
                data["database_url"] = os.environ["DATABASE_URL"]
            if "data_dir" not in data and os.environ.get("DICOM_STORAGE_DIR"):
                data["data_dir"] = os.environ["DICOM_STORAGE_DIR"]
        return data

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.database_url:
            self.database_url = normalize_database_url(self.database_url)
        # PS3.5 Table 6.2-1, AE: 1-16 characters, no backslash or control characters, not only spaces.
        title = self.ae_title.strip()
        if not title or len(self.ae_title) > 16 or any(c == "\\" or not " " <= c <= "~" for c in self.ae_title):
            raise ValueError(f"ae_title {self.ae_title!r}: 1-16 printable ASCII characters, no backslash")
        self.ae_title = title
        if self.public_url is not None:
            url = self.public_url.strip().rstrip("/")
            if not url:
                self.public_url = None
            elif not (url.startswith(("http://", "https://")) and len(url.split("://", 1)[1]) > 0):
                raise ValueError(f"public_url {self.public_url!r}: an absolute http:// or https:// URL")
            else:
                self.public_url = url
        return self

    @property
    def resolved_workers(self) -> int:
        if self.in_memory:
            return 1
        if self.workers is not None:
            return self.workers
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

    @property
    def resolved_max_connections(self) -> int:
        if self.max_connections is not None:
            return self.max_connections
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, ValueError, OSError):
            return 1000
        if soft == resource.RLIM_INFINITY:
            return 10000
        # Leave descriptors for the database, the files being stored and retrieved, and DIMSE.
        return max(16, soft - 128)

    @property
    def dimse_enabled(self) -> bool:
        return bool(self.dimse_port)

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL actually used."""
        if self.database_url:
            return self.database_url
        if self.in_memory:
            # One shared in-memory database per process (StaticPool in storage/db.py).
            return "sqlite+aiosqlite://"
        return f"sqlite+aiosqlite:///{(self.data_dir / 'index.sqlite').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        """Where STOW parts are spooled before they are validated and committed."""
        return self.data_dir / "tmp"

    def describe(self) -> dict[str, Any]:
        """The configuration as logged at start (password removed from the database URL)."""
        url = self.resolved_database_url
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            url = f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
        return {
            "host": self.host,
            "port": self.port,
            "database": url,
            "blobs": "memory" if self.in_memory else str(self.blob_dir.resolve()),
            "loose": self.loose,
            "dimse": f"{self.ae_title}@{self.host}:{self.dimse_port}" if self.dimse_enabled else "off",
            "workers": self.resolved_workers,
        }


def normalize_database_url(url: str) -> str:
    """Accept the usual spellings and pick the async drivers (asyncpg, aiosqlite)."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url
