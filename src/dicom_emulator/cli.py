"""Command line: ``dicom-emulator serve`` (flags win over environment, which wins over defaults)."""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dicom_emulator import __version__
from dicom_emulator.config import EventSinkSettings, Settings
from dicom_emulator.startup import StartupError, bind_dimse, bind_http, explain_settings_error, prepare, where

logger = logging.getLogger("dicom_emulator")


def _env(name: str) -> str:
    return f"DICOM_EMULATOR_{name.upper()}"


# Settings only the environment sets (listed in ``serve --help``'s epilog).
_ENV_ONLY = (
    ("max_part_size", "bytes per STOW part (Azure: 2 GiB)"),
    ("max_transcode_size", "largest instance transcoded on retrieve (Azure: 100 MiB)"),
    ("expiry_interval_seconds", "how often expired studies are deleted"),
    ("job_poll_interval", "seconds between polls of an idle job runner"),
    ("job_lease_seconds", "a job without heartbeat this long is taken over"),
    ("reindex_batch_size", "instances per reindex transaction"),
    ("reindex_batch_pause", "seconds between reindex batches"),
    ("pool_size", "database connections per process (PostgreSQL)"),
    ("log_level", "debug, info, warning, error"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicom-emulator",
        description="Local emulator of the Azure Health Data Services DICOM service (DICOMweb + Azure's APIs).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run the emulator",
        description="Run the emulator. Flags win over environment variables, which win over defaults.",
        epilog="environment only:\n"
        + "\n".join(f"  {_env(name):42} {meaning}" for name, meaning in _ENV_ONLY)
        + "\n\nlegacy names: DATABASE_URL (= DICOM_EMULATOR_DATABASE_URL), DICOM_STORAGE_DIR (= ..._DATA_DIR)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help=f"interface to bind (default 127.0.0.1; 0.0.0.0 in Docker) [{_env('host')}]")
    serve.add_argument("--port", type=int, help=f"HTTP port (default 8080; 0 picks a free port) [{_env('port')}]")
    serve.add_argument(
        "--data-dir",
        type=Path,
        help=f"where the SQLite index and files live (default ./dicom-data) [{_env('data_dir')}, DICOM_STORAGE_DIR]",
    )
    serve.add_argument(
        "--database-url",
        help=f"SQLAlchemy URL, e.g. postgresql://user@host/db (default SQLite) [{_env('database_url')}, DATABASE_URL]",
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="URL clients reach the emulator at (proxy, Docker port mapping); RetrieveURLs and hrefs use it "
        f"[{_env('public_url')}]",
    )
    serve.add_argument(
        "--in-memory", action="store_true", default=None, help=f"keep nothing on disk [{_env('in_memory')}=1]"
    )
    serve.add_argument(
        "--loose",
        action="store_true",
        default=None,
        help="emulator-only, not in Azure: QIDO * and ? wildcards and UID lists, /thumbnail routes, the rendered "
        f"window= parameter [{_env('loose')}=1]",
    )
    serve.add_argument(
        "--data-partitions",
        action="store_true",
        default=None,
        help="turn on Azure's data partitions (routes under /{v}/partitions/{name}/...)",
    )
    serve.add_argument(
        "--blob-url",
        metavar="URL",
        help="keep instance files in this Azure Blob Storage container (a SAS URL, or an Azurite container URL)",
    )
    serve.add_argument(
        "--blob-connection-string",
        metavar="CS",
        help="keep instance files in Azure Blob Storage: connection string (container: --blob-container)",
    )
    serve.add_argument("--blob-container", metavar="NAME", help="container for --blob-connection-string (dicom)")
    serve.add_argument(
        "--dimse-port",
        type=int,
        metavar="PORT",
        help=f"DIMSE port (C-STORE, C-FIND, C-GET, MWL, MPPS); 0 = off (default) [{_env('dimse_port')}]",
    )
    serve.add_argument(
        "--ae-title", help=f"AE title of the DIMSE gateway (default DICOM_EMULATOR) [{_env('ae_title')}]"
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help=f"worker processes on one store (default: one per CPU core; --in-memory runs one) [{_env('workers')}]",
    )
    serve.add_argument(
        "--durability",
        choices=["process", "consistent", "power"],
        help="what an acknowledged store survives besides any crash of the emulator (kill -9): process = no "
        "syncs, fastest; consistent = each file synced before its row commits, a power loss may lose the last "
        "commits only (default); power = also SQLite synchronous=FULL, a power loss loses nothing acknowledged "
        f"[{_env('durability')}]",
    )
    # Browser and test-suite features (issue 12).
    serve.add_argument(
        "--cors-origins",
        metavar="ORIGINS",
        help="CORS for browser viewers such as OHIF: comma-separated origins (e.g. http://localhost:3000), "
        f"* for any (default), or '' for no CORS headers [{_env('cors_origins')}]",
    )
    serve.add_argument(
        "--faults",
        type=Path,
        metavar="FILE",
        help="emulator-only fault injection: JSON rules answering matching requests with 429/503, a delay or a "
        f"dropped connection (see README; also PUT /emulator/faults) [{_env('faults')}]",
    )
    serve.add_argument(
        "--ohif-url",
        metavar="URL",
        help="an OHIF viewer for this emulator (e.g. http://localhost:3000): /emulator/ links studies to it "
        f"[{_env('ohif_url')}]",
    )
    serve.add_argument(
        "--url-file",
        type=Path,
        metavar="FILE",
        help=f"write the base URL (with the real port of --port 0) to FILE once bound [{_env('url_file')}]",
    )
    serve.add_argument(
        "--event-sink",
        action="append",
        metavar="SINK",
        help="publish events (repeatable): an http(s) webhook URL, file:PATH (JSON lines), stdout, "
        'or a JSON object such as {"type": "queue", "connection_string": "...", "queue_name": "dicom-events"}',
    )
    serve.add_argument(
        "--auth", action="store_true", default=None, help="require Entra-style bearer tokens with DICOM roles"
    )
    serve.add_argument("--auth-authority", metavar="URL", help="OpenID authority whose tokens are accepted")
    serve.add_argument("--auth-jwks-url", metavar="URL", help="JWKS whose keys sign accepted tokens")
    serve.add_argument("--tls-certfile", type=Path, metavar="PEM", help="serve HTTPS with this certificate")
    serve.add_argument("--tls-keyfile", type=Path, metavar="PEM", help="private key of --tls-certfile")
    limits = serve.add_argument_group("limits (README, Limits)")
    limits.add_argument("--max-json-body-size", type=int, metavar="BYTES", help="workitem and tag JSON bodies (4 MiB)")
    limits.add_argument("--max-header-size", type=int, metavar="BYTES", help="request line and headers (64 KiB)")
    limits.add_argument("--header-timeout", type=float, metavar="S", help="seconds to send request headers (30)")
    limits.add_argument("--body-timeout", type=float, metavar="S", help="seconds without a body byte (60)")
    limits.add_argument("--keep-alive-timeout", type=int, metavar="S", help="idle keep-alive seconds (30)")
    limits.add_argument("--max-connections", type=int, metavar="N", help="open connections per process")
    verbosity = serve.add_mutually_exclusive_group()
    verbosity.add_argument("--silent", action="store_true", help="no access log, warnings only")
    verbosity.add_argument("--debug", action="store_true", help=f"debug logging [{_env('log_level')}=debug]")
    load = sub.add_parser(
        "import",
        help="load folders, zip files or files of DICOM instances into the store (resumable)",
        description="Store DICOM files through the same store service as STOW v2, into the data directory or "
        "database serve uses (a running serve may stay up). Instances already stored are skipped, so running "
        "it again resumes an interrupted import. Exit status 1 when a file failed.",
    )
    load.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="folder (recursive), .zip or file")
    load.add_argument(
        "--data-dir", type=Path, help=f"the store's data directory (default ./dicom-data) [{_env('data_dir')}]"
    )
    load.add_argument("--database-url", help=f"the store's database (default SQLite) [{_env('database_url')}]")
    load.add_argument("--jobs", type=int, default=4, metavar="N", help="files stored concurrently (default 4)")
    load.add_argument("--quiet", action="store_true", help="no progress bar, only the summary table")
    stats = sub.add_parser(
        "stats",
        help="what a store holds: studies, series, instances, change feed, operations, file bytes",
        description="Count what the store of serve holds, read-only (a running serve may stay up).",
    )
    stats.add_argument(
        "--data-dir", type=Path, help=f"the store's data directory (default ./dicom-data) [{_env('data_dir')}]"
    )
    stats.add_argument("--database-url", help=f"the store's database (default SQLite) [{_env('database_url')}]")
    stats.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    health = sub.add_parser(
        "healthcheck",
        help="exit 0 when a running emulator answers GET /health (Docker's HEALTHCHECK)",
        description="Probe GET /health of a running emulator: the URL given, else the one serve wrote to "
        "--url-file / DICOM_EMULATOR_URL_FILE, else http://127.0.0.1:$DICOM_EMULATOR_PORT.",
    )
    health.add_argument("--url", help="base URL of the emulator")
    health.add_argument("--url-file", type=Path, metavar="FILE", help=f"file written by serve [{_env('url_file')}]")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in (
        "host",
        "port",
        "data_dir",
        "database_url",
        "public_url",
        "in_memory",
        "loose",
        "data_partitions",
        "blob_url",
        "blob_connection_string",
        "blob_container",
        "dimse_port",
        "ae_title",
        "workers",
        "durability",
        "cors_origins",
        "url_file",
        "faults",
        "ohif_url",
        "auth",
        "auth_authority",
        "auth_jwks_url",
        "tls_certfile",
        "tls_keyfile",
        "max_json_body_size",
        "max_header_size",
        "header_timeout",
        "body_timeout",
        "keep_alive_timeout",
        "max_connections",
    ):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "event_sink", None):
        overrides["event_sinks"] = [parse_event_sink(spec) for spec in args.event_sink]
    if getattr(args, "silent", False):
        overrides["log_level"] = "warning"
        overrides["access_log"] = False
    elif getattr(args, "debug", False):
        overrides["log_level"] = "debug"
    return Settings(**overrides)


def parse_event_sink(spec: str) -> EventSinkSettings:
    """``--event-sink``: a webhook URL, ``file:PATH``, ``stdout``, or the sink's settings as a JSON object."""
    spec = spec.strip()
    if spec.startswith("{"):
        return EventSinkSettings.model_validate(json.loads(spec))
    if spec.startswith(("http://", "https://")):
        return EventSinkSettings(type="webhook", url=spec)
    if spec.startswith("file:"):
        return EventSinkSettings(type="file", path=Path(spec.removeprefix("file:")))
    if spec == "stdout":
        return EventSinkSettings(type="stdout")
    raise SystemExit(f"--event-sink {spec!r}: expected a URL, file:PATH, stdout or a JSON object")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        try:
            settings = settings_from_args(args)
        except ValidationError as exc:
            return _fail(explain_settings_error(exc))
        return serve(settings)
    if args.command == "import":
        from dicom_emulator.importer import import_command

        try:
            settings = settings_from_args(args)
            return import_command(settings, args.paths, jobs=args.jobs, quiet=args.quiet)
        except ValidationError as exc:
            return _fail(explain_settings_error(exc))
        except StartupError as exc:
            return _fail(str(exc))
    if args.command == "stats":
        from dicom_emulator.stats import stats_command

        try:
            return stats_command(settings_from_args(args), as_json=args.json)
        except ValidationError as exc:
            return _fail(explain_settings_error(exc))
        except StartupError as exc:
            return _fail(str(exc))
    if args.command == "healthcheck":
        return healthcheck(args.url, args.url_file)
    return 2


def healthcheck(url: str | None, url_file: Path | None) -> int:
    """0 when ``GET {url}/health`` answers 200, else 1 with one line on stderr."""
    import urllib.request

    if url is None:
        settings = Settings()
        path = url_file or settings.url_file
        url = path.read_text().strip() if path is not None and path.is_file() else settings.base_url
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=4) as response:
            status = int(response.status)
    except OSError as exc:
        return _fail(f"{url}/health: {exc}")
    return 0 if status == 200 else _fail(f"{url}/health answered {status}")


def _fail(message: str) -> int:
    """A failure the user can fix (start-up, import, stats, healthcheck): one line on stderr, exit status 1."""
    print(f"dicom-emulator: error: {message}", file=sys.stderr)  # noqa: T201 - the CLI's own output
    return 1


def _tune_gc() -> None:
    """Fewer and cheaper runs of the cyclic garbage collector in a serving process.

    With the default threshold (a collection every 700 net allocations) a STOW spent 2-4 % of its CPU in the
    collector (perf, benchmarks/README.md session 6): a parsed header is thousands of small objects. Objects made
    by the start-up (modules, settings) are frozen out of every scan, before the workers fork (their pages stay
    shared), and young collections run every 50,000 allocations. Reference counting still frees at once whatever
    is not in a cycle, so memory does not grow with the ingest.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _tune_malloc() -> None:
    """Keep freed memory for the next request instead of handing it back to the kernel at once.

    Request bodies pass through Python in chunks of tens to hundreds of KB. With glibc's defaults many of those
    buffers were mapped fresh and unmapped again per request (or the heap top trimmed), and the kernel zeroed
    and faulted in their pages each time: 10 % of a 1-instance STOW's CPU under perf went to page faults. Up to
    64 MB of free heap is now kept per arena and allocations under 8 MB come from the heap. Not glibc (musl,
    macOS): nothing to tune.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 8 * 1024 * 1024)
    mallopt(_M_TRIM_THRESHOLD, 64 * 1024 * 1024)


def serve(settings: Settings) -> int:
    import uvicorn

    from dicom_emulator.app import create_app
    from dicom_emulator.http_protocol import limited_protocol

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.faults is not None:
        from dicom_emulator.api.faults import load_config

        try:
            load_config(settings.faults)
        except ValueError as exc:
            return _fail(f"{exc} ({where('faults')})")
    try:
        # Bind first: a taken port fails before anything is created, and --port 0 becomes the real port.
        sock = bind_http(settings)
    except StartupError as exc:
        return _fail(str(exc))
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    dimse_sock: socket.socket | None = None
    try:
        dimse_sock = bind_dimse(settings)
        if dimse_sock is not None:
            # The workers' gateways (or this process's) accept from it; it stays open as long as this process.
            settings = settings.model_copy(update={"dimse_fd": dimse_sock.fileno()})
        if not settings.in_memory:
            # Once, before any worker: data dir, migrations, default partition (the lifespan then skips them).
            prepare(settings)
            settings = settings.model_copy(update={"migrate_on_start": False})
    except StartupError as exc:
        sock.close()
        if dimse_sock is not None:
            dimse_sock.close()
        return _fail(str(exc))
    if settings.url_file is not None:
        try:
            settings.url_file.write_text(settings.base_url + "\n")
        except OSError as exc:
            sock.close()
            return _fail(f"cannot write the URL file {settings.url_file} ({exc.strerror}): set {where('url_file')}")
    logger.info("configuration: %s", settings.describe())
    config_kwargs: dict[str, Any] = {
        # uvicorn serves the socket bound above; host and port are only for its "running on" line.
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        # Cap request bodies only per part (STOW streams); keep-alive like Azure's front door.
        "timeout_keep_alive": settings.keep_alive_timeout,
        # httptools with header, body and connection limits (http_protocol.py).
        "http": limited_protocol(settings),
    }
    _tune_gc()
    _tune_malloc()
    # Pin the worker count (routes that hold per-process state, like /emulator/faults, read it).
    settings = settings.model_copy(update={"workers": settings.resolved_workers})
    if settings.tls_certfile is not None:
        config_kwargs["ssl_certfile"] = str(settings.tls_certfile)
        config_kwargs["ssl_keyfile"] = str(settings.tls_keyfile) if settings.tls_keyfile else None
    if settings.resolved_workers > 1:
        from dicom_emulator.supervisor import serve_workers

        return serve_workers(settings, config_kwargs, sock)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **config_kwargs))
    server.run(sockets=[sock])
    # uvicorn leaves started=False when the lifespan failed (the traceback is in the log).
    return 0 if server.started else 3
