"""Command line: ``dicom-emulator serve`` (flags win over environment, which wins over defaults)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from dicom_emulator import __version__
from dicom_emulator.config import EventSinkSettings, Settings

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
    verbosity = serve.add_mutually_exclusive_group()
    verbosity.add_argument("--silent", action="store_true", help="no access log, warnings only")
    verbosity.add_argument("--debug", action="store_true", help="debug logging")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    names = ("host", "port", "data_dir", "database_url", "in_memory", "loose", "dimse_port", "ae_title", "workers")
    for name in (*names, "auth", "auth_authority", "auth_jwks_url", "tls_certfile", "tls_keyfile"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if args.event_sink:
        overrides["event_sinks"] = [parse_event_sink(spec) for spec in args.event_sink]
    if args.silent:
        overrides["log_level"] = "warning"
        overrides["access_log"] = False
    elif args.debug:
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
        return serve(settings_from_args(args))
    return 2


def serve(settings: Settings) -> int:
    import uvicorn

    from dicom_emulator.app import create_app

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.info("configuration: %s", settings.describe())
    config_kwargs: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        # Cap request bodies only per part (STOW streams); keep-alive like Azure's front door.
        "timeout_keep_alive": 30,
    }
    if settings.tls_certfile is not None:
        config_kwargs["ssl_certfile"] = str(settings.tls_certfile)
        config_kwargs["ssl_keyfile"] = str(settings.tls_keyfile) if settings.tls_keyfile else None
    if settings.resolved_workers > 1:
        from dicom_emulator.supervisor import serve_workers

        return serve_workers(settings, config_kwargs)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **config_kwargs))
    server.run()
    return 0
