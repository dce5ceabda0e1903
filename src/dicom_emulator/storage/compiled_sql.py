"""Core statements compiled once and run on the DB-API cursor: the store transaction's hot path.

``Connection.execute`` costs more Python than SQLite takes to run a point INSERT: an execution context, a
cache-key lookup, a result object and its metadata per statement. The store transaction runs about ten
statements per instance, hundreds of times per second, always the same few statements with the same
parameter names. So each (statement, dialect, parameter names) is compiled once with SQLAlchemy, its type
bind processors looked up once (SQLite stores DATETIME as text), and each execution is one
``cursor.execute`` on the connection's DB-API connection, inside the transaction the
:class:`~sqlalchemy.engine.Connection` began (savepoints included: they are statements on the same
connection).

Only on the synchronous drivers the store transaction runs on (pysqlite, psycopg); on the async engine's
adapters (aiosqlite for ``--in-memory``, asyncpg for deletes on PostgreSQL) it falls back to
``Connection.execute``. Errors are then the driver's or SQLAlchemy's: callers catch ``integrity_errors(conn)``.
Use it only for module-level statements that are built once (the cache holds them by identity).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    # Bind names in placeholder order for positional paramstyles (SQLite's qmark); None for named ones.
    positions: tuple[str, ...] | None
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]
    construct: Callable[[Mapping[str, Any]], dict[str, Any]]


# Drivers whose DB-API cursor takes the compiled string as is (the async adapters rewrite placeholders).
_DIRECT_DRIVERS = frozenset({"pysqlite", "psycopg"})

# Keyed by the statement's identity: only statements that live as long as the process may be passed.
_CACHE: dict[tuple[int, str, frozenset[str]], tuple[Executable, _Compiled]] = {}


def _compiled(conn: Connection, stmt: Executable, keys: frozenset[str]) -> _Compiled:
    dialect = conn.dialect
    cache_key = (id(stmt), dialect.name, keys)
    hit = _CACHE.get(cache_key)
    if hit is not None and hit[0] is stmt:
        return hit[1]
    compiled = stmt.compile(dialect=dialect, column_keys=sorted(keys))  # type: ignore[attr-defined]
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("compiled_sql cannot run an expanding parameter (IN with a list); compare one by one")
    processors = []
    for name, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors.append((compiled.escaped_bind_names.get(name, name), processor))
    positions = tuple(compiled.positiontup) if compiled.positional else None
    entry = _Compiled(compiled.string, positions, tuple(processors), compiled.construct_params)
    _CACHE[cache_key] = (stmt, entry)
    return entry


def _bound(entry: _Compiled, params: Mapping[str, Any]) -> Any:
    # construct_params fills in the statement's own bound values and checks that every bind has one.
    values = entry.construct(params)
    for name, processor in entry.processors:
        values[name] = processor(values[name])
    if entry.positions is None:
        return values
    return tuple(values[name] for name in entry.positions)


def _cursor(conn: Connection) -> Any:
    # Begin the Connection's transaction as its own execute would (autobegin): otherwise a transaction whose
    # statements all came through here has none on SQLAlchemy's side, and conn.commit() commits nothing
    # (psycopg's implicit transaction is then rolled back when the connection returns to the pool).
    if not conn.in_transaction():
        conn.begin()
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def execute(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> Any:
    """Run ``stmt`` with ``params`` on ``conn``'s DB-API connection; a cursor to fetch from and close."""
    if conn.dialect.driver not in _DIRECT_DRIVERS:
        return conn.execute(stmt, dict(params))
    entry = _compiled(conn, stmt, frozenset(params))
    cursor = _cursor(conn)
    cursor.execute(entry.sql, _bound(entry, params))
    return cursor


def scalar(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> Any:
    """The first column of the first row ``stmt`` returns (None without a row)."""
    row = first(conn, stmt, params)
    return None if row is None else row[0]


def first(conn: Connection, stmt: Executable, params: Mapping[str, Any]) -> Sequence[Any] | None:
    """The first row ``stmt`` returns, or None."""
    cursor = execute(conn, stmt, params)
    try:
        row: Sequence[Any] | None = cursor.fetchone()
    finally:
        cursor.close()
    return row


def execute_many(conn: Connection, stmt: Executable, rows: Iterable[Mapping[str, Any]]) -> None:
    """Run ``stmt`` once per row of parameters (all rows share one set of names)."""
    rows = list(rows)
    if not rows:
        return
    if conn.dialect.driver not in _DIRECT_DRIVERS:
        conn.execute(stmt, [dict(row) for row in rows])
        return
    entry = _compiled(conn, stmt, frozenset(rows[0]))
    cursor = _cursor(conn)
    try:
        cursor.executemany(entry.sql, [_bound(entry, row) for row in rows])
    finally:
        cursor.close()


def integrity_errors(conn: Connection) -> tuple[type[Exception], ...]:
    """What a unique violation raised through :func:`execute` can be: the driver's or SQLAlchemy's error."""
    return (conn.dialect.loaded_dbapi.IntegrityError, exc.IntegrityError)
