"""A bounded fuzz run over the emulator's OpenAPI (schemathesis, in-process over ASGI): no request gets a 5xx.

Every operation of ``/emulator/openapi.json`` is called with generated path values, query parameters, headers and
bodies (the schema declares what the routes read by hand, api/openapi.py), on the embedded default (SQLite + files
in a temporary directory). Unpartitioned routes run against the default app, ``/partitions/{partitionName}/``
routes against an app with data partitions on, so both reach their handlers.

Bounded for CI: a fixed number of examples per operation, derandomized (the same cases every run) and no
Hypothesis database. ``DICOM_EMULATOR_TEST_FUZZ_EXAMPLES=500 ./scripts/test tests/fuzz`` searches deeper.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import not_a_server_error

from dicom_emulator.app import create_app
from dicom_emulator.config import Settings

# Hypothesis' caches (source constants, unicode tables) go to the temporary directory, not ``./.hypothesis``; set
# before any strategy is built (collection builds them). No example database is used (``database=None`` below).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "dicom-emulator-hypothesis")

MAX_EXAMPLES = int(os.environ.get("DICOM_EMULATOR_TEST_FUZZ_EXAMPLES", "5"))
PARTITIONED = r"/partitions/\{partitionName\}/"


def _schema(*, partitions: bool) -> schemathesis.BaseSchema:
    # The schema is static: building it needs no started app (operations are collected at import).
    raw = create_app(Settings(data_partitions=partitions)).openapi()
    schema = schemathesis.openapi.from_dict(raw)
    # Fault rules exist to make the emulator answer 5xx on purpose.
    schema = schema.exclude(path="/emulator/faults", method="PUT")
    return schema.include(path_regex=PARTITIONED) if partitions else schema.exclude(path_regex=PARTITIONED)


default_schema = _schema(partitions=False)
partitioned_schema = _schema(partitions=True)

BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    # schemathesis starts the app's lifespan on the first request and ends it after each test.
    yield create_app(Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data"))


@pytest.fixture(scope="module")
def partitioned_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    yield create_app(Settings(data_dir=tmp_path_factory.mktemp("fuzz-partitions") / "data", data_partitions=True))


@default_schema.parametrize()
@BOUNDED
def test_no_server_error(case: schemathesis.Case, default_app: FastAPI) -> None:
    case.call_and_validate(checks=[not_a_server_error], app=default_app)


@partitioned_schema.parametrize()
@BOUNDED
def test_no_server_error_partitioned(case: schemathesis.Case, partitioned_app: FastAPI) -> None:
    case.call_and_validate(checks=[not_a_server_error], app=partitioned_app)


@schemathesis.serializer("application/dicom", "multipart/related")
def _raw_bytes(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """STOW bodies are sent as generated: DICOM parsing and multipart framing must reject garbage with a 4xx."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()
