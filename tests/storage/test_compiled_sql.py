"""compiled_sql: Core statements run on the DB-API cursor write exactly what Connection.execute writes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, bindparam, create_engine, select

from dicom_emulator.storage import compiled_sql

_META = MetaData()
_ROWS = Table(
    "rows",
    _META,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), unique=True),
    Column("at", DateTime),
)
_INSERT = _ROWS.insert().returning(_ROWS.c.id)
_RENAME = _ROWS.update().where(_ROWS.c.id == bindparam("key"))
_FIND = select(_ROWS.c.name).where(_ROWS.c.id == bindparam("key"))


def test_sqlite_rows_match_sqlalchemys_and_unique_violations_are_caught() -> None:
    engine = create_engine("sqlite://")
    _META.create_all(engine)
    at = datetime(2026, 12, 6, 7, 0, 0, tzinfo=UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        first = compiled_sql.scalar(conn, _INSERT, {"name": "a", "at": at})
        second = compiled_sql.scalar(conn, _INSERT, {"name": "b"})  # another key set: compiled on its own
        assert (first, second) == (1, 2)
        compiled_sql.execute_many(conn, _RENAME, [{"key": 1, "name": "c"}, {"key": 2, "name": "d"}])
        assert compiled_sql.first(conn, _FIND, {"key": 2}) == ("d",)
        assert compiled_sql.first(conn, _FIND, {"key": 9}) is None
        with pytest.raises(compiled_sql.integrity_errors(conn)), conn.begin_nested():
            compiled_sql.scalar(conn, _INSERT, {"name": "c"})
        # DATETIME went through SQLAlchemy's bind processor: SQLAlchemy reads it back as the same value, and
        # the column holds SQLAlchemy's text format (microseconds always written).
        assert conn.execute(select(_ROWS.c.at).where(_ROWS.c.id == 1)).scalar() == at
        assert conn.exec_driver_sql("SELECT at FROM rows WHERE id = 1").scalar() == "2026-12-06 07:00:00.000000"
        assert [tuple(r) for r in conn.execute(select(_ROWS.c.id, _ROWS.c.name).order_by(_ROWS.c.id))] == [
            (1, "c"),
            (2, "d"),
        ]
    engine.dispose()


def test_a_missing_parameter_is_an_error_not_a_null() -> None:
    engine = create_engine("sqlite://")
    _META.create_all(engine)
    with engine.begin() as conn, pytest.raises(Exception, match="key"):
        compiled_sql.first(conn, _FIND, {})
    engine.dispose()


def test_a_transaction_of_compiled_statements_only_commits(tmp_path: Path) -> None:
    # No Connection.execute at all: compiled_sql must begin SQLAlchemy's transaction itself, or commit() is a
    # no-op and the driver's implicit transaction is rolled back when the connection returns to the pool.
    engine = create_engine(f"sqlite:///{tmp_path / 'index.sqlite'}")
    _META.create_all(engine)
    with engine.connect() as conn:
        assert compiled_sql.scalar(conn, _INSERT, {"name": "kept"}) == 1
        conn.commit()
    with engine.connect() as conn:
        assert conn.execute(select(_ROWS.c.name)).scalars().all() == ["kept"]
    engine.dispose()


def test_an_in_list_is_refused_at_compile_time() -> None:
    engine = create_engine("sqlite://")
    _META.create_all(engine)
    with engine.connect() as conn, pytest.raises(ValueError, match="expanding"):
        compiled_sql.first(conn, select(_ROWS.c.name).where(_ROWS.c.name.in_(["a", "b"])), {})
    engine.dispose()
