"""PostgreSQL: a lone new instance stored by one autocommitted statement (storage/lone_store_pg.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from dicom_emulator.storage import lone_store_pg
from dicom_emulator.storage.instance_writes import NewInstance
from tests.factories import make_dataset, multipart, to_bytes

POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
STOW_HEADERS = {"Accept": "application/dicom+json"}


def _new(sop: str, *, study: str = "1.2.3", series: str = "1.2.3.4", patient_id: str = "P1") -> NewInstance:
    return NewInstance(
        partition_key=1,
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        transfer_syntax="1.2.840.10008.1.2.1",
        blob_key=f"blob-{sop}",
        size=10,
        number_of_frames=1,
        metadata_json="{}",
        study_values={"patient_id": patient_id, "study_description": f"of {sop}"},
        series_values={"modality": "CT"},
        metadata={},
        frames_json="[]",
    )


async def _rows(app: FastAPI, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with app.state.runtime.store.index.sessions() as session:
        return [tuple(row) for row in (await session.execute(text(sql), params)).all()]


async def _add(app: FastAPI, new: NewInstance) -> Any:
    index = app.state.runtime.store.index
    (result,) = await asyncio.to_thread(index._write_blocking, [new], False)
    return result


def test_only_new_instances_take_the_single_statement() -> None:
    assert lone_store_pg.eligible(_new("9"), replace=False)
    assert not lone_store_pg.eligible(_new("9"), replace=True)  # an upsert deletes the old version first
    updated = _new("9")
    updated.action = "Update"  # a bulk update's new version keeps its original
    assert not lone_store_pg.eligible(updated, replace=False)


@POSTGRES_ONLY
async def test_a_lone_store_writes_every_row_in_one_statement(app: FastAPI) -> None:
    index = app.state.runtime.store.index
    assert index._lone_engine is not None
    result = await _add(app, _new("1.1"))
    assert result.error is None and result.watermark is not None
    assert await _rows(app, "SELECT study_key, series_key FROM instances WHERE sop_uid = '1.1'") == [
        (result.study_key, result.series_key)
    ]
    assert await _rows(app, "SELECT latest_watermark, patient_id, study_description FROM studies") == [
        (result.watermark, "P1", "of 1.1")
    ]
    assert await _rows(app, "SELECT latest_watermark, modality FROM series") == [(result.watermark, "CT")]
    feed = await _rows(app, "SELECT action, sop_uid, watermark, sequence FROM changefeed")
    assert feed == [("Create", "1.1", result.watermark, feed[0][3])]
    assert await _rows(app, "SELECT sequence FROM event_outbox") == [(feed[0][3],)]

    # A second instance of the study: the same study and series rows, pointing at the newer instance.
    second = await _add(app, _new("1.2", patient_id="P2"))
    assert (second.study_key, second.series_key) == (result.study_key, result.series_key)
    assert second.watermark > result.watermark
    assert await _rows(app, "SELECT latest_watermark, patient_id FROM studies") == [(second.watermark, "P2")]


@POSTGRES_ONLY
async def test_a_duplicate_changes_nothing(app: FastAPI) -> None:
    first = await _add(app, _new("2.1", patient_id="P1"))
    duplicate = await _add(app, _new("2.1", patient_id="CHANGED"))
    assert type(duplicate.error).__name__ == "InstanceAlreadyExistsError" and duplicate.watermark is None
    assert await _rows(app, "SELECT latest_watermark, patient_id FROM studies") == [(first.watermark, "P1")]
    assert await _rows(app, "SELECT count(*) FROM changefeed") == [(1,)]
    assert await _rows(app, "SELECT count(*) FROM event_outbox") == [(1,)]


@POSTGRES_ONLY
async def test_an_older_watermark_never_overwrites_the_newer_instances_attributes(app: FastAPI) -> None:
    # Two stores of one study race: the one that drew the smaller watermark may commit second.
    first = await _add(app, _new("3.1", patient_id="P1"))
    async with app.state.runtime.store.index.engine.begin() as conn:
        await conn.execute(text("UPDATE studies SET latest_watermark = latest_watermark + 1000"))
        await conn.execute(text("UPDATE series SET latest_watermark = latest_watermark + 1000"))
    older = await _add(app, _new("3.2", patient_id="OLDER"))
    assert older.error is None
    assert await _rows(app, "SELECT latest_watermark, patient_id FROM studies") == [(first.watermark + 1000, "P1")]
    assert await _rows(app, "SELECT latest_watermark FROM series") == [(first.watermark + 1000,)]


@POSTGRES_ONLY
async def test_with_extended_query_tags_the_transactional_path_indexes_their_values(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    tag = {"path": "00181000", "vr": "LO", "level": "Series"}  # DeviceSerialNumber
    response = await client.post("/v2/extendedquerytags", json=[tag])
    assert response.status_code == 202, response.text
    lone_engine = app.state.runtime.store.index._lone_engine

    def lone() -> Any:
        with lone_engine.connect() as conn:
            return lone_store_pg.store_lone(conn, _new("4.1"), datetime.now(UTC))

    assert await asyncio.to_thread(lone) is None  # a tag is being added: nothing written here
    assert await _rows(app, "SELECT count(*) FROM instances") == [(0,)]

    ds = make_dataset()
    ds.DeviceSerialNumber = "SCANNER-7"
    body, content_type = multipart([to_bytes(ds)])
    response = await client.post("/v2/studies", content=body, headers={**STOW_HEADERS, "Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert await _rows(app, "SELECT text_value FROM extended_query_tag_values WHERE series_key IS NOT NULL") == [
        ("SCANNER-7",)
    ]


@POSTGRES_ONLY
async def test_the_loop_sends_the_same_statement_through_asyncpg(app: FastAPI, client: httpx.AsyncClient) -> None:
    index = app.state.runtime.store.index
    first = await index.add_lone_async(_new("5.1", patient_id="P1"))
    assert first is not None and first.error is None
    duplicate = await index.add_lone_async(_new("5.1", patient_id="CHANGED"))
    assert duplicate is not None and type(duplicate.error).__name__ == "InstanceAlreadyExistsError"
    assert await _rows(app, "SELECT latest_watermark, patient_id FROM studies") == [(first.watermark, "P1")]
    assert await _rows(app, "SELECT sop_uid, watermark FROM changefeed") == [("5.1", first.watermark)]

    # A STOW of one instance takes this path (the loop, no worker thread): stored, then 45070 when sent again.
    ds = make_dataset()
    body, content_type = multipart([to_bytes(ds)])
    headers = {**STOW_HEADERS, "Content-Type": content_type}
    response = await client.post("/v2/studies", content=body, headers=headers)
    assert response.status_code == 200, response.text
    again = await client.post("/v2/studies", content=body, headers=headers)
    assert again.status_code == 409, again.text
    assert again.json()["00081198"]["Value"][0]["00081197"]["Value"] == [45070]

    tag = {"path": "00181000", "vr": "LO", "level": "Series"}
    assert (await client.post("/v2/extendedquerytags", json=[tag])).status_code == 202
    assert await index.add_lone_async(_new("5.2")) is None  # a tag is being added: the transactional path
    assert await _rows(app, "SELECT count(*) FROM instances WHERE sop_uid = '5.2'") == [(0,)]
