"""Export to Azure Blob Storage (azure-behaviour §10.2, §15.5): written into a real Azurite, read back with the SDK."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from dicom_emulator.config import Settings
from tests.apps import APP_POOL, asgi_client
from tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from tests.factories import make_dataset, multipart, new_uid, to_bytes

ACCEPT = {"Accept": "application/dicom+json"}
ANY_TS = {"Accept": "application/dicom; transfer-syntax=*"}


@pytest.fixture
def container(azurite: Azurite) -> Iterator[str]:
    """A fresh container in Azurite, removed afterwards."""
    name = f"export-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(name)
    yield name
    service.delete_container(name)


def blob_service(azurite: Azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


async def stow(client: httpx.AsyncClient, prefix: str, *datasets: Any) -> None:
    body, ctype = multipart([to_bytes(ds) for ds in datasets])
    r = await client.post(f"{prefix}/studies", content=body, headers={**ACCEPT, "Content-Type": ctype})
    assert r.status_code == 200, r.text


def request_body(values: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": {"type": "identifiers", "settings": {"values": values}},
        "destination": {"type": "azureBlob", "settings": settings},
    }


async def finished(client: httpx.AsyncClient, href: str, version: str = "v2") -> dict[str, Any]:
    """Poll the operation until it is no longer running (the runner was woken when it was queued)."""
    path = href.replace("http://testserver", "").replace("/v2/", f"/{version}/")
    for _ in range(600):
        r = await client.get(path)
        if r.status_code == 200:
            return r.json()  # type: ignore[no-any-return]
        assert r.status_code == 202
        assert r.headers["location"].endswith(path.split("/operations/")[1])
        await asyncio.sleep(0.05)
    raise AssertionError("export did not finish")


async def test_export_identifiers_with_connection_string(
    client: httpx.AsyncClient, azurite: Azurite, container: str
) -> None:
    study, series, other_series = new_uid(), new_uid(), new_uid()
    a = make_dataset(study_uid=study, series_uid=series)
    b = make_dataset(study_uid=study, series_uid=series)
    c = make_dataset(study_uid=study, series_uid=other_series)
    lone = make_dataset()
    await stow(client, "/v2", a, b, c, lone)
    missing_study, missing_sop = new_uid(), new_uid()
    values = [
        study,
        f"{lone.StudyInstanceUID}/{lone.SeriesInstanceUID}/{lone.SOPInstanceUID}",
        missing_study,
        f"{study}/{series}/{missing_sop}",
    ]
    settings = {"connectionString": azurite.connection_string, "blobContainerName": container}
    r = await client.post("/v2/export", json=request_body(values, settings))
    assert r.status_code == 202, r.text
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert set(body) == {"id", "href"} and len(body["id"]) == 32
    assert body["href"] == f"http://testserver/v2/operations/{body['id']}"
    assert r.headers["location"] == body["href"]

    operation = await finished(client, body["href"])
    error_href = f"{azurite.blob_endpoint}/{container}/{body['id']}/errors.log"
    assert operation["type"] == "export"
    assert operation["status"] == "succeeded"  # even with skipped identifiers (azure-behaviour §15.5)
    assert "percentComplete" not in operation
    assert operation["results"] == {"exported": 4, "skipped": 2, "errorHref": error_href}
    v1 = await finished(client, body["href"], "v1")
    assert v1["status"] == "completed"

    blobs = blob_service(azurite).get_container_client(container)
    names = sorted(b.name for b in blobs.list_blobs())
    expected = sorted(
        f"{body['id']}/results/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
        for ds in (a, b, c, lone)
    )
    assert names == sorted([*expected, f"{body['id']}/errors.log"])
    for ds in (a, lone):
        stored = await client.get(
            f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}",
            headers=ANY_TS,
        )
        name = f"{body['id']}/results/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
        assert blobs.download_blob(name).readall() == stored.content
    log = blobs.download_blob(f"{body['id']}/errors.log").readall().decode()
    lines = [json.loads(line) for line in log.splitlines()]
    assert [(e["identifier"], e["error"]) for e in lines] == [
        (missing_study, "The specified study cannot be found."),
        (f"{study}/{series}/{missing_sop}", "The specified instance cannot be found."),
    ]
    assert all(datetime.fromisoformat(e["timestamp"]) for e in lines)
    assert log.endswith("\n")


async def test_export_with_sas_uri_and_dev_account_uri(
    client: httpx.AsyncClient, azurite: Azurite, container: str
) -> None:
    ds = make_dataset()
    await stow(client, "/v1", ds)
    series = f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}"
    sas = generate_container_sas(
        ACCOUNT_NAME,
        container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, write=True, create=True, add=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    uri = f"{azurite.blob_endpoint}/{container}"
    for settings in ({"blobContainerUri": f"{uri}?{sas}"}, {"blobContainerUri": uri, "useManagedIdentity": True}):
        r = await client.post("/v1/export", json=request_body([series], settings))
        assert r.status_code == 202, r.text
        operation = await finished(client, r.json()["href"], "v1")
        assert operation["status"] == "completed"
        # The error log's address never carries the SAS token.
        assert operation["results"] == {"exported": 1, "skipped": 0, "errorHref": f"{uri}/{r.json()['id']}/errors.log"}
        blob = f"{r.json()['id']}/results/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
        assert blob_service(azurite).get_blob_client(container, blob).exists()
        log = blob_service(azurite).get_blob_client(container, f"{r.json()['id']}/errors.log")
        assert log.download_blob().readall() == b""


@pytest.fixture
async def pclient(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings.data_partitions = True
    async with APP_POOL.running(settings) as app, asgi_client(app) as c:
        yield c


async def test_export_runs_in_the_url_partition(pclient: httpx.AsyncClient, azurite: Azurite, container: str) -> None:
    study, series, sop = new_uid(), new_uid(), new_uid()
    await stow(pclient, "/v2/partitions/one", make_dataset(study_uid=study, series_uid=series, sop_uid=sop))
    await stow(pclient, "/v2/partitions/two", make_dataset(study_uid=new_uid()))
    settings = {"connectionString": azurite.connection_string, "blobContainerName": container}
    r = await pclient.post("/v2/partitions/two/export", json=request_body([study], settings))
    assert r.status_code == 202
    assert r.json()["href"].startswith("http://testserver/v2/operations/")  # never partitioned
    operation = await finished(pclient, r.json()["href"])
    assert (operation["results"]["exported"], operation["results"]["skipped"]) == (0, 1)
    r = await pclient.post("/v2/partitions/one/export", json=request_body([study], settings))
    operation = await finished(pclient, r.json()["href"])
    assert (operation["results"]["exported"], operation["results"]["skipped"]) == (1, 0)
    r = await pclient.post("/v2/partitions/three/export", json=request_body([study], settings))
    assert (r.status_code, r.text) == (400, "Specified PartitionName does not exist.")


NESTED_TOO_DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        # Found by the fuzz run (tests/fuzz): each was a 500 from urlsplit or the blob client.
        ({"blobContainerUri": "http://[::1"}, "The BlobContainerUri 'http://[::1' is not an absolute URI."),
        ({"blobContainerUri": "https://"}, "The BlobContainerUri 'https://' is not an absolute URI."),
        ({"blobContainerUri": "http:///c"}, "The BlobContainerUri 'http:///c' is not an absolute URI."),
        ({"blobContainerUri": "http://a:b/c"}, "The BlobContainerUri 'http://a:b/c' is not an absolute URI."),
        ({"blobContainerUri": "http://a:99999/c"}, "The BlobContainerUri 'http://a:99999/c' is not an absolute URI."),
        ({"blobContainerUri": "http://a b/c"}, "The BlobContainerUri 'http://a b/c' is not an absolute URI."),
        (
            {"blobContainerUri": "http://[::1", "useManagedIdentity": True},
            "The BlobContainerUri 'http://[::1' is not an absolute URI.",
        ),
        (
            {"blobContainerUri": "http://127.0.0.1:1/"},
            "The BlobContainerUri 'http://127.0.0.1:1/' does not name a container.",
        ),
    ],
)
async def test_export_malformed_destination_is_400(
    client: httpx.AsyncClient, destination: dict[str, Any], message: str
) -> None:
    r = await client.post("/v2/export", json=request_body([new_uid()], destination))
    assert (r.status_code, r.headers["content-type"], r.text) == (400, "text/plain; charset=utf-8", message)


async def test_export_body_nested_too_deep_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/export", content=NESTED_TOO_DEEP)
    assert (r.status_code, r.headers["content-type"], r.text) == (
        400,
        "text/plain; charset=utf-8",
        "The syntax of the request body is invalid.",
    )


async def test_export_validation(client: httpx.AsyncClient, azurite: Azurite, container: str) -> None:
    study = new_uid()
    good = {"connectionString": azurite.connection_string, "blobContainerName": container}
    cases: list[tuple[Any, str]] = [
        (
            request_body([study], {**good, "blobContainerUri": f"{azurite.blob_endpoint}/{container}"}),
            "ConnectionString and BlobContainerName cannot be specified along with BlobContainerUri.",
        ),
        (
            request_body([study], {"blobContainerName": container}),
            "Please specify both ConnectionString and BlobContainerName.",
        ),
        (request_body([study], {}), "Please specify both ConnectionString and BlobContainerName."),
        (
            request_body([study], {**good, "useManagedIdentity": True}),
            "Managed identity cannot be used with a ConnectionString.",
        ),
        (
            request_body(
                [study],
                {"blobContainerUri": "https://acct.blob.core.windows.net/c?sv=1&sig=abc", "useManagedIdentity": True},
            ),
            "UseManagedIdentity cannot be specified if the BlobContainerUri container query string parameters.",
        ),
        (
            request_body(
                [study],
                {
                    "connectionString": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;"
                    "EndpointSuffix=core.windows.net",
                    "blobContainerName": container,
                },
            ),
            "Account key authentication is not supported.",
        ),
        (
            request_body([study], {**good, "blobContainerName": "does-not-exist"}),
            f"Azure Blob Storage container 'does-not-exist' does not exist in account '{ACCOUNT_NAME}'.",
        ),
        (request_body([], good), "The field Values must be a string or array type with a minimum length of '1'."),
        (
            {**request_body([study], good), "source": {"type": "query", "settings": {}}},
            "The export source type 'query' is not supported; use 'identifiers'.",
        ),
        (
            {**request_body([study], good), "destination": {"type": "s3", "settings": {}}},
            "The export destination type 's3' is not supported; use 'azureblob'.",
        ),
        (
            request_body([f"{study}/1.2.x"], good),
            "Dicom element 'SeriesInstanceUid' failed validation for VR 'UI': DICOM Identifier is invalid. Value "
            "length should not exceed the maximum length of 64 characters. Value should contain characters in '0'-'9' "
            "and '.'. Each component must start with non-zero number.",
        ),
        (
            request_body(["1.2/3.4/5.6/7.8"], good),
            "The value '1.2/3.4/5.6/7.8' is not a valid DICOM identifier: expected 'study[/series[/instance]]'.",
        ),
    ]
    for body, message in cases:
        r = await client.post("/v2/export", json=body)
        assert (r.status_code, r.text) == (400, message), body
    r = await client.post("/v2/export", content=b"{not json")
    assert (r.status_code, r.text) == (400, "The syntax of the request body is invalid.")
    # Nothing was queued or written by the refused requests.
    assert [b.name for b in blob_service(azurite).get_container_client(container).list_blobs()] == []
