"""The STOW, WADO, frames and DELETE API tests again, with instance files in Azure Blob Storage (a real Azurite).

The test functions are imported from their modules, so pytest collects them here too, where the ``settings``
fixture points the blob store at a fresh Azurite container (``--blob-connection-string``). SQLite only: the
index backend is covered by the modules themselves; this run is about the blob backend.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from dicom_emulator.config import Settings
from tests.api.test_delete import *  # noqa: F403
from tests.api.test_frames import *  # noqa: F403
from tests.api.test_stow import *  # noqa: F403
from tests.api.test_wado import *  # noqa: F403
from tests.apps import copy_signing_key
from tests.azurite import Azurite
from tests.databases import copy_sqlite_template
from tests.factories import make_dataset, multipart, new_uid, to_bytes

# Looks at files in the data directory; its Azure counterpart is below.
del test_delete_levels  # noqa: F821


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, azurite: Azurite) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data",
        blob_connection_string=azurite.connection_string,
        blob_container=f"dicom-{uuid.uuid4().hex[:12]}",
    )
    copy_sqlite_template(request.getfixturevalue("sqlite_template"), settings)
    copy_signing_key(request.getfixturevalue("issuer_key_file"), settings)
    return settings


async def test_files_live_in_the_container(client: httpx.AsyncClient, settings: Settings, azurite: Azurite) -> None:
    study = new_uid()
    datasets = [make_dataset(study_uid=study) for _ in range(2)]
    body, ctype = multipart([to_bytes(ds) for ds in datasets])
    headers = {"Accept": "application/dicom+json", "Content-Type": ctype}
    assert (await client.post("/v2/studies", content=body, headers=headers)).status_code == 200
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        settings.blob_container
    )
    names = sorted(b.name for b in container.list_blobs())
    assert len(names) == 2 and all(n.startswith(f"1/{study}/") and n.endswith(".dcm") for n in names)
    assert not list(settings.blob_dir.rglob("*.dcm"))
    assert (await client.delete(f"/v2/studies/{study}")).status_code == 204
    assert list(container.list_blobs()) == []
