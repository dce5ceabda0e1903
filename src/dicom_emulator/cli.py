"""Command line: ``dicom-emulator serve`` (flags win over environment, which wins over defaults)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from dicom_emulator import __version__
from dicom_emulator.config import Settings

logger = logging.getLogger("dicom_emulator")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dicom-emulator", description="Azure DICOM service emulator")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the emulator")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1; 0.0.0.0 in Docker)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8080; 0 picks a free port)")
    serve.add_argument("--data-dir", type=Path, help="where the SQLite index and files live (default ./dicom-data)")
    serve.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql://user@host/db (default SQLite)")
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="URL clients reach the emulator at (proxy, Docker port mapping); RetrieveURLs and hrefs use it",
    )
    serve.add_argument("--in-memory", action="store_true", default=None, help="keep nothing on disk")
    serve.add_argument(
        "--loose", action="store_true", default=None, help="allow QIDO wildcards and UID lists (not in Azure)"
    )
    serve.add_argument(
        "--dimse-port",
        type=int,
        metavar="PORT",
        help="DIMSE port (C-STORE, C-FIND, C-GET, MWL, MPPS); 0 = off (default)",
    )
    serve.add_argument("--ae-title", help="AE title of the DIMSE gateway (default DICOM_EMULATOR)")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes on one store (default: one per CPU core; --in-memory runs one)",
    )
    limits = serve.add_argument_group("limits (README, Limits)")
    limits.add_argument("--max-json-body-size", type=int, metavar="BYTES", help="workitem and tag JSON bodies (4 MiB)")
    limits.add_argument("--max-header-size", type=int, metavar="BYTES", help="request line and headers (64 KiB)")
    limits.add_argument("--header-timeout", type=float, metavar="S", help="seconds to send request headers (30)")
    limits.add_argument("--body-timeout", type=float, metavar="S", help="seconds without a body byte (60)")
    limits.add_argument("--keep-alive-timeout", type=int, metavar="S", help="idle keep-alive seconds (30)")
    limits.add_argument("--max-connections", type=int, metavar="N", help="open connections per process")
    verbosity = serve.add_mutually_exclusive_group()
    verbosity.add_argument("--silent", action="store_true", help="no access log, warnings only")
    verbosity.add_argument("--debug", action="store_true", help="debug logging")
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
        "dimse_port",
        "ae_title",
        "workers",
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
    if args.silent:
        overrides["log_level"] = "warning"
        overrides["access_log"] = False
    elif args.debug:
        overrides["log_level"] = "debug"
    return Settings(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(settings_from_args(args))
    return 2


def serve(settings: Settings) -> int:
    import uvicorn

    from dicom_emulator.app import create_app
    from dicom_emulator.http_protocol import limited_protocol

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.info("configuration: %s", settings.describe())
    config_kwargs: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        # Cap request bodies only per part (STOW streams); keep-alive like Azure's front door.
        "timeout_keep_alive": settings.keep_alive_timeout,
        # httptools with header, body and connection limits (http_protocol.py).
        "http": limited_protocol(settings),
    }
    if settings.resolved_workers > 1:
        from dicom_emulator.supervisor import serve_workers

        return serve_workers(settings, config_kwargs)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **config_kwargs))
    server.run()
    return 0
