"""Settings: defaults < environment < CLI flags (docs/architecture.md, The Runtime)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
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
# Event Grid topic of the events (azure-behaviour §12.4): the workspace's ARM id in Azure; a fixed fake one here.
DEFAULT_EVENT_TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dicom-emulator"
    "/providers/Microsoft.HealthcareApis/workspaces/emulator"
)
# Azure's one token audience for every DICOM service (azure-behaviour §13.1), with and without the slash.
DICOM_AUDIENCES = ("https://dicom.healthcareapis.azure.com", "https://dicom.healthcareapis.azure.com/")
# Tenant of the built-in development issuer (any GUID; clients put it in their authority URL).
DEV_TENANT = "00000000-0000-0000-0000-00000000d1c0"
EVENT_SCHEMAS = ("EventGridSchema", "CloudEventSchemaV1_0")


class EventSinkSettings(BaseModel):
    """One event subscription: where events go and how (azure-behaviour §12.8, §12.9).

    ``type`` is ``webhook`` (``url``), ``queue`` (Azure Storage Queue: ``connection_string`` + ``queue_name``),
    ``file`` (JSON lines appended to ``path``) or ``stdout``. The retry, batch and filter fields mirror an Event
    Grid event subscription's properties.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["webhook", "queue", "file", "stdout"]
    # Key of the sink's delivery cursor in the database: keep it stable across restarts (default from the target).
    name: str | None = None
    url: str | None = None
    path: Path | None = None
    connection_string: str | None = None
    queue_name: str | None = None
    # Event Grid's queue messages are base64 today (azure-behaviour §12.9, open question): false = plain JSON text.
    queue_base64: bool = True
    queue_message_ttl: int | None = Field(default=None, ge=-1)  # seconds; -1 = never expires; None = 7 days
    delivery_schema: Literal["EventGridSchema", "CloudEventSchemaV1_0"] = "EventGridSchema"
    max_events_per_batch: int = Field(default=1, ge=1, le=5000)
    max_delivery_attempts: int = Field(default=30, ge=1, le=30)
    event_ttl_minutes: int = Field(default=1440, ge=1, le=1440)
    # Multiplies Event Grid's retry schedule (10 s, 30 s, 1 min ... 12 h): 0.001 makes a test's retries quick.
    retry_scale: float = Field(default=1.0, gt=0)
    dead_letter_path: Path | None = None  # JSON lines; none = dropped like Event Grid without dead-lettering
    headers: dict[str, str] = Field(default_factory=dict)  # custom delivery properties (webhook)
    subscription_name: str = "DICOM-EMULATOR"
    # Webhook subscription validation handshake (EG: validation event; CloudEvents: OPTIONS) before delivering.
    validate_endpoint: bool = True
    timeout: float = Field(default=30.0, gt=0)  # seconds Event Grid waits for a webhook's answer
    included_event_types: list[str] | None = None
    subject_begins_with: str = ""
    subject_ends_with: str = ""

    @model_validator(mode="after")
    def _check(self) -> EventSinkSettings:
        needed = {"webhook": ("url",), "queue": ("connection_string", "queue_name"), "file": ("path",), "stdout": ()}
        missing = [f for f in needed[self.type] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{self.type} event sink needs {', '.join(missing)}")
        return self

    @property
    def key(self) -> str:
        if self.name:
            return self.name
        target = {"webhook": self.url, "queue": self.queue_name, "file": str(self.path), "stdout": ""}[self.type]
        return f"{self.type}:{target}" if target else self.type


class AuthClient(BaseModel):
    """A client of the built-in development issuer (client-credentials grant) and the roles its tokens carry."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    client_secret: str
    roles: list[str] = Field(default_factory=list)
    # The token's ``oid`` (object id of the service principal); default derived from the client id.
    object_id: str | None = None


# Clients of the development issuer unless configured (like the OSS server's test clients, secret = id).
DEFAULT_AUTH_CLIENTS = [
    AuthClient(client_id="dicom-owner", client_secret="dicom-owner", roles=["DICOM Data Owner"]),
    AuthClient(client_id="dicom-reader", client_secret="dicom-reader", roles=["DICOM Data Reader"]),
    AuthClient(client_id="dicom-norole", client_secret="dicom-norole", roles=[]),
]


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
    # Azure's data partitions feature (azure-behaviour §10.3): partition-aware routes only under
    # /{v}/partitions/{name}/…; off = today's Azure default (those routes answer 400).
    data_partitions: bool = False
    # Instance files in Azure Blob Storage instead of the data directory: a container URL (with a SAS, or on
    # Azurite's development account), or a connection string and a container name.
    blob_url: str | None = None
    blob_connection_string: str | None = None
    blob_container: str = "dicom"
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
    # What an acknowledged store survives (README, Ingest and durability). Every level survives any crash of
    # the emulator (kill -9). On a power loss or an OS crash: "process" (no syncs) may lose the last commits
    # and leave surviving rows without their file's data; "consistent" (the default; each file fdatasynced
    # before its index row commits, as Orthanc's SyncStorageArea default) may lose the last commits but every
    # surviving row has its file; "power" (also SQLite synchronous=FULL) loses nothing acknowledged.
    durability: Literal["process", "consistent", "power"] = "consistent"

    @property
    def sync_files(self) -> bool:
        return self.durability != "process"

    @property
    def sync_commits(self) -> bool:
        return self.durability == "power"

    # Database connection pool size per process (PostgreSQL only).
    pool_size: int = Field(default=10, ge=1)
    # DIMSE gateway (C-ECHO, C-STORE, C-FIND, C-GET, MWL, MPPS): TCP port, None or 0 = off; and its AE title.
    dimse_port: int | None = Field(default=None, ge=0, le=65535)
    ae_title: str = DEFAULT_AE_TITLE
    # Worker processes serving HTTP and DIMSE on one data directory / database (None = one per CPU core).
    # ``--in-memory`` always runs one: its index and files live in the process.
    workers: int | None = Field(default=None, ge=1, le=64)
    # Where ``serve`` writes its base URL once the port is bound (``--port 0`` users, Docker's healthcheck).
    url_file: Path | None = None
    # Fault injection rules (JSON file, api/faults.py); emulator-only, off by default.
    faults: Path | None = None
    # Where an OHIF viewer for this emulator runs (e.g. http://localhost:3000): the /emulator/ page links to it.
    ohif_url: str | None = None
    # Set by the supervisor for its workers, not by users: which worker this is (periodic sweeps run in
    # worker 0 only), and whether the lifespan migrates (the supervisor already did, once, before forking).
    worker_index: int = Field(default=0, ge=0, exclude=True)
    # Set by ``serve``: the DIMSE socket it bound (startup.bind_dimse), which every worker's gateway accepts from.
    dimse_fd: int | None = Field(default=None, exclude=True)
    migrate_on_start: bool = Field(default=True, exclude=True)
    # Events (azure-behaviour §12): sinks (JSON list in DICOM_EMULATOR_EVENT_SINKS, or --event-sink), the topic,
    # and serviceHostName (default: host:port of this emulator).
    event_sinks: list[EventSinkSettings] = Field(default_factory=list)
    event_topic: str = DEFAULT_EVENT_TOPIC
    event_service_host: str | None = None
    # HTTPS: certificate and key files (PEM) for uvicorn; Entra clients (MSAL, azure-identity) need an https authority.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    # Authentication and authorization (azure-behaviour §13); off by default like the OSS server.
    auth: bool = False
    # OpenID authority of a real issuer (e.g. https://login.microsoftonline.com/<tenant>/v2.0) or a JWKS URL;
    # neither = the built-in development issuer.
    auth_authority: str | None = None
    auth_jwks_url: str | None = None
    auth_issuers: list[str] = Field(default_factory=list)  # accepted ``iss`` values (default: the authority's)
    auth_audiences: list[str] = Field(default_factory=lambda: list(DICOM_AUDIENCES))
    # The service URL (e.g. https://ws-dicom.dicom.azurehealthcareapis.com) is accepted as an audience too.
    auth_service_url: str | None = None
    # Azure RBAC stand-in: object id (``oid``) → role names, added to the token's ``roles`` claim.
    auth_role_assignments: dict[str, list[str]] = Field(default_factory=dict)
    auth_clients: list[AuthClient] = Field(default_factory=lambda: list(DEFAULT_AUTH_CLIENTS))
    auth_token_lifetime: int = Field(default=3600, ge=1)  # seconds, Entra's default
    # The development issuer's RSA key (PEM); default <data-dir>/auth-signing-key.pem, or per process in memory.
    auth_signing_key_path: Path | None = None

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
    def cors_origin_list(self) -> list[str]:
        """The configured origins as browsers send them: an ``Origin`` header never ends with "/", so a
        pasted ``http://host:port/`` would never match (and the preflight would fail with no log line)."""
        return [o.strip().rstrip("/") if o.strip() != "*" else "*" for o in self.cors_origins.split(",") if o.strip()]

    @property
    def base_url(self) -> str:
        """Where a client on this machine reaches the HTTP API (a wildcard host is reached on loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

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

    @property
    def azure_blobs(self) -> bool:
        return bool(self.blob_url or self.blob_connection_string)

    def _describe_blobs(self) -> str:
        if self.blob_url:
            return self.blob_url.split("?", 1)[0]
        if self.blob_connection_string:
            return f"Azure Blob Storage container '{self.blob_container}' (connection string)"
        return "memory" if self.in_memory else str(self.blob_dir.resolve())

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
            "blobs": self._describe_blobs(),
            "loose": self.loose,
            "cors": ",".join(self.cors_origin_list) or "off",
            "faults": str(self.faults) if self.faults else "off",
            "data_partitions": self.data_partitions,
            "dimse": f"{self.ae_title}@{self.host}:{self.dimse_port}" if self.dimse_enabled else "off",
            "workers": self.resolved_workers,
            "durability": self.durability,
            "event_sinks": [sink.key for sink in self.event_sinks],
            "auth": ("on: " + (self.auth_authority or self.auth_jwks_url or "development issuer"))
            if self.auth
            else "off",
        }

    @property
    def scheme(self) -> str:
        return "https" if self.tls_certfile else "http"

    @property
    def resolved_event_service_host(self) -> str:
        """``data.serviceHostName`` of events: the host (no scheme) clients reach this emulator at."""
        if self.event_service_host:
            return self.event_service_host
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{host}:{self.port}"


def normalize_database_url(url: str) -> str:
    """Accept the usual spellings and pick the async drivers (asyncpg, aiosqlite)."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url
