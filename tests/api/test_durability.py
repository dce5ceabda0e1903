"""``--durability``: which stored files are synced, and that they are synced before their rows commit."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dicom_emulator.config import Settings
from dicom_emulator.storage.index import SqlIndex
from tests.apps import APP_POOL, asgi_client
from tests.factories import make_instance, multipart, new_uid

ACCEPT = {"Accept": "application/dicom+json"}


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """ "sync" for each fdatasync, "commit" for each store transaction, in the order they happen."""
    log: list[str] = []
    real_sync = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (log.append("sync"), real_sync(fd))[1])

    def recording(name: str) -> None:
        original: Callable[..., Any] = getattr(SqlIndex, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            log.append("commit")
            return original(*args, **kwargs)

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            log.append("commit")
            return await original(*args, **kwargs)

        monkeypatch.setattr(SqlIndex, name, async_wrapper if name == "add_instances" else wrapper)

    recording("add_instances")
    recording("add_instances_blocking")
    return log


async def _stow(client: httpx.AsyncClient, count: int) -> None:
    study = new_uid()
    body, ctype = multipart([make_instance(study_uid=study) for _ in range(count)])
    answer = await client.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert answer.status_code == 200, answer.text


async def test_default_syncs_every_file_before_its_rows_commit(client: httpx.AsyncClient, events: list[str]) -> None:
    await _stow(client, 3)
    assert events == ["sync", "sync", "sync", "commit"]


async def test_process_durability_syncs_nothing(settings: Settings, events: list[str]) -> None:
    async with (
        APP_POOL.running(settings.model_copy(update={"durability": "process"})) as app,
        asgi_client(app) as client,
    ):
        await _stow(client, 3)
    assert events == ["commit"]
