"""What ``serve`` does before the app starts, and the one-line explanation of what went wrong.

Order matters for a user reading the output: the HTTP port is bound first (a taken port fails before the
data directory is created or the index migrated, and ``--port 0`` is resolved to the port really bound),
then the DIMSE port is checked, then storage is prepared (data directory, migrations, default partition).
Only then does the app log "ready". Each expected failure is turned into one line naming the setting to
fix (``StartupError``); ``cli`` prints it and exits non-zero instead of a 150-line traceback.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from dicom_emulator.config import Settings


class StartupError(Exception):
    """A start-up failure the user can fix; the message is one line naming the setting."""


# Flag and environment names of the settings a message points at.
_WHERE = {
    "host": "--host / DICOM_EMULATOR_HOST",
    "port": "--port / DICOM_EMULATOR_PORT",
    "data_dir": "--data-dir / DICOM_EMULATOR_DATA_DIR",
    "database_url": "--database-url / DICOM_EMULATOR_DATABASE_URL (or DATABASE_URL)",
    "dimse_port": "--dimse-port / DICOM_EMULATOR_DIMSE_PORT",
}


def where(name: str) -> str:
    """How a user sets ``name``: its flag and environment variable."""
    return _WHERE.get(name) or f"--{name.replace('_', '-')} / DICOM_EMULATOR_{name.upper()}"


def explain_settings_error(exc: ValidationError) -> str:
    """A pydantic validation error of Settings as one line per field, naming the flag and variable."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if field in Settings.model_fields:
            parts.append(f"invalid {field} ({where(field)}): {message}")
        else:  # a check across fields names the setting in its message
            parts.append(f"invalid setting: {message}")
    return "; ".join(parts) or str(exc)


def bind_http(settings: Settings) -> socket.socket:
    """Bind and listen on the HTTP address; ``StartupError`` when the port is taken or the host is wrong."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise StartupError(_bind_message(exc, settings.host, settings.port, "port", "HTTP")) from exc
    sock.set_inheritable(True)
    return sock


def bind_dimse(settings: Settings) -> socket.socket | None:
    """Bind and listen on the DIMSE port before the workers start (None when DIMSE is off).

    Every worker's gateway accepts from this one socket (inherited through fork), so an association goes to
    whichever worker accepts first, usually the least busy one. Separate ``SO_REUSEPORT`` sockets would
    hash each association to a worker instead: with four associations and two workers, three or four of
    them landed on one worker half of the time, and that worker's GIL set the pace.
    """
    if not settings.dimse_enabled or settings.dimse_port is None:
        return None
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.dimse_port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise StartupError(_bind_message(exc, settings.host, settings.dimse_port, "dimse_port", "DIMSE")) from exc
    return sock


def _bind_message(exc: OSError, host: str, port: int, setting: str, what: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{what} port {port} on {host} is already in use (another dicom-emulator?): "
            f"choose another with {where(setting)}" + (", or 0 for a free one" if setting == "port" else "")
        )
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on {what} port {port} (ports below 1024 need root): set {where(setting)}"
    if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return f"cannot listen on host {host!r} ({exc.strerror or exc}): set {where('host')}"
    return f"cannot listen on {host}:{port} ({exc.strerror or exc}): check {where(setting)}"


def prepare(settings: Settings) -> None:
    """Create the data directory, migrate and create the default partition, translating failures."""
    from dicom_emulator.app import prepare_storage

    try:
        asyncio.run(prepare_storage(settings))
    except Exception as exc:
        message = explain_storage_error(exc, settings)
        if message is None:
            raise
        raise StartupError(message) from exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and the DBAPI error SQLAlchemy wraps (``.orig``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo.extend([orig if isinstance(orig, BaseException) else None, current.__cause__, current.__context__])


def explain_storage_error(exc: BaseException, settings: Settings) -> str | None:
    """One line for the storage failures a user can fix, or None for anything else (a real bug)."""
    data_dir = settings.data_dir.resolve()
    postgres = settings.resolved_database_url.startswith("postgresql")
    for error in _chain(exc):
        text = str(error)
        name = type(error).__name__
        if postgres and (
            isinstance(error, (ConnectionError, socket.gaierror, TimeoutError))
            or name in ("InvalidPasswordError", "InvalidCatalogNameError", "InvalidAuthorizationSpecificationError")
            or "connect" in text.lower()
            and isinstance(error, OSError)
        ):
            reason = text.splitlines()[0] if text else name
            return (
                f"cannot connect to PostgreSQL at {settings.describe()['database']} ({reason}): "
                f"start it or fix {where('database_url')}"
            )
        if isinstance(error, sqlite3.DatabaseError) or name == "DatabaseError" and "sqlite" in type(error).__module__:
            lowered = text.lower()
            index = data_dir / "index.sqlite"
            if "not a database" in lowered or "malformed" in lowered:
                return (
                    f"{index} is not a valid SQLite index ({text}): move it away to start empty, "
                    f"or choose another {where('data_dir')}"
                )
            if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
                return f"the index {index} cannot be written ({text}): fix permissions or set {where('data_dir')}"
        if isinstance(error, PermissionError) or isinstance(error, OSError) and error.errno == errno.EROFS:
            path = Path(error.filename) if getattr(error, "filename", None) else data_dir
            return f"data directory {data_dir} is not writable ({error.strerror} on {path}): set {where('data_dir')}"
        if isinstance(error, NotADirectoryError | FileExistsError):
            return f"data directory {data_dir} is not a directory ({error.strerror}): set {where('data_dir')}"
    return None
