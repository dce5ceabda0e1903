"""WADO-RS retrieve and metadata (azure-behaviour §3.1–azure-behaviour §3.5, §3.7)."""

from __future__ import annotations

import io

import httpx
import pytest
from pydicom import dcmread

from tests.factories import make_dataset, multipart, new_uid, to_bytes

ACCEPT_JSON = {"Accept": "application/dicom+json"}
ANY_TS = 'multipart/related; type="application/dicom"; transfer-syntax=*'


async def store(client: httpx.AsyncClient, *datasets: object, url: str = "/v2/studies") -> None:
    body, ctype = multipart([to_bytes(ds, implicit=getattr(ds, "_implicit", False)) for ds in datasets])  # type: ignore[arg-type]
    r = await client.post(url, content=body, headers={**ACCEPT_JSON, "Content-Type": ctype})
    assert r.status_code in (200, 202), r.text


def split_multipart(response: httpx.Response) -> list[tuple[str, bytes]]:
    ctype = response.headers["content-type"]
    assert ctype.startswith("multipart/related; boundary=")
    assert "type=" not in ctype  # Azure sends no type parameter on the outer header (azure-behaviour §3.3)
    boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
    parts = []
    for chunk in response.content.split(b"--" + boundary)[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        parts.append((head.decode().split(":", 1)[1].strip(), data.removesuffix(b"\r\n")))
    assert response.content.endswith(b"--" + boundary + b"--")
    return parts


@pytest.fixture
async def study(client: httpx.AsyncClient) -> dict[str, object]:
    study, series = new_uid(), new_uid()
    datasets = [make_dataset(study_uid=study, series_uid=series) for _ in range(2)]
    await store(client, *datasets)
    return {"study": study, "series": series, "sops": [ds.SOPInstanceUID for ds in datasets], "datasets": datasets}


async def test_retrieve_instance_single_part_default_ts(client: httpx.AsyncClient, study: dict) -> None:
    sop = study["sops"][0]
    url = f"/v2/studies/{study['study']}/series/{study['series']}/instances/{sop}"
    r = await client.get(url, headers={"Accept": "application/dicom"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    ds = dcmread(io.BytesIO(r.content))
    assert ds.SOPInstanceUID == sop
    assert r.content[:128] == b"\0" * 128  # preamble zeroed (azure-behaviour §1.4)


async def test_retrieve_instance_star_is_multipart(client: httpx.AsyncClient, study: dict) -> None:
    sop = study["sops"][0]
    url = f"/v2/studies/{study['study']}/series/{study['series']}/instances/{sop}"
    r = await client.get(url, headers={"Accept": "*/*"})
    assert r.status_code == 200
    parts = split_multipart(r)
    assert [p[0] for p in parts] == ["application/dicom; transfer-syntax=1.2.840.10008.1.2.1"]
    assert dcmread(io.BytesIO(parts[0][1])).SOPInstanceUID == sop


async def test_retrieve_study_with_star(client: httpx.AsyncClient, study: dict) -> None:
    r = await client.get(f"/v2/studies/{study['study']}", headers={"Accept": ANY_TS})
    assert r.status_code == 200
    got = sorted(dcmread(io.BytesIO(data)).SOPInstanceUID for _, data in split_multipart(r))
    assert got == sorted(study["sops"])


async def test_retrieve_series_with_star(client: httpx.AsyncClient, study: dict) -> None:
    r = await client.get(f"/v2/studies/{study['study']}/series/{study['series']}", headers={"Accept": ANY_TS})
    assert r.status_code == 200
    assert len(split_multipart(r)) == 2


async def test_multi_instance_with_concrete_ts_is_406(client: httpx.AsyncClient, study: dict) -> None:
    r = await client.get(
        f"/v2/studies/{study['study']}", headers={"Accept": 'multipart/related; type="application/dicom"'}
    )
    assert r.status_code == 406
    assert r.text == (
        "Accept transfer syntax '1.2.840.10008.1.2.1' is not supported when multiple instances are matched. "
        "Matching instances can be retrieved with their original transfer syntax by specifying "
        "'transfer-syntax=*' in the Accept header."
    )


@pytest.mark.parametrize("accept", [None, "*/*", "application/dicom", "image/png"])
async def test_study_accept_rules_406(client: httpx.AsyncClient, study: dict, accept: str | None) -> None:
    request = client.build_request("GET", f"/v2/studies/{study['study']}")
    del request.headers["accept"]
    if accept:
        request.headers["Accept"] = accept
    r = await client.send(request)
    assert r.status_code == 406


async def test_implicit_vr_is_transcoded_to_explicit(client: httpx.AsyncClient) -> None:
    ds = make_dataset()
    ds._implicit = True  # type: ignore[attr-defined]
    await store(client, ds)
    url = f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    r = await client.get(url, headers={"Accept": "application/dicom"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    out = dcmread(io.BytesIO(r.content))
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert out.PixelData == ds.PixelData
    r = await client.get(url, headers={"Accept": "application/dicom; transfer-syntax=*"})
    assert r.headers["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2"


async def test_not_found_messages(client: httpx.AsyncClient, study: dict) -> None:
    s, se = study["study"], study["series"]
    cases = {
        f"/v2/studies/{new_uid()}": "The specified study cannot be found.",
        f"/v2/studies/{s}/series/{new_uid()}": "The specified series cannot be found.",
        f"/v2/studies/{s}/series/{se}/instances/{new_uid()}": "The specified instance cannot be found.",
        f"/v2/studies/{new_uid()}/series/{se}/instances/{new_uid()}": "The specified study cannot be found.",
    }
    for url, message in cases.items():
        r = await client.get(url, headers={"Accept": ANY_TS})
        assert (r.status_code, r.text) == (404, message), url


async def test_invalid_uid_is_400_before_accept(client: httpx.AsyncClient) -> None:
    request = client.build_request("GET", "/v2/studies/1.2.abc")
    del request.headers["accept"]
    r = await client.send(request)
    assert r.status_code == 400


async def test_metadata_levels_and_etag(client: httpx.AsyncClient, study: dict) -> None:
    s, se, sops = study["study"], study["series"], study["sops"]
    r = await client.get(f"/v2/studies/{s}/metadata", headers=ACCEPT_JSON)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/dicom+json"
    items = r.json()
    assert sorted(i["00080018"]["Value"][0] for i in items) == sorted(sops)
    assert all("7FE00010" not in i for i in items)  # bulk data removed (azure-behaviour §3.5)
    etag = r.headers["etag"]
    assert not etag.startswith('"')
    watermark, count = etag.split("-")
    assert count == "2"
    r304 = await client.get(f"/v2/studies/{s}/metadata", headers={**ACCEPT_JSON, "If-None-Match": etag})
    assert r304.status_code == 304
    assert r304.content == b""
    assert "etag" not in r304.headers
    series_meta = await client.get(f"/v2/studies/{s}/series/{se}/metadata", headers=ACCEPT_JSON)
    assert len(series_meta.json()) == 2
    inst = await client.get(f"/v2/studies/{s}/series/{se}/instances/{sops[0]}/metadata", headers=ACCEPT_JSON)
    assert len(inst.json()) == 1
    assert inst.headers["etag"].isdigit()
    # A new instance in the study changes the study ETag.
    await store(client, make_dataset(study_uid=s, series_uid=se))
    again = await client.get(f"/v2/studies/{s}/metadata", headers={**ACCEPT_JSON, "If-None-Match": etag})
    assert again.status_code == 200
    assert again.headers["etag"].endswith("-3")


async def test_metadata_accept_rules(client: httpx.AsyncClient, study: dict) -> None:
    r = await client.get(f"/v2/studies/{study['study']}/metadata", headers={"Accept": "application/dicom"})
    assert r.status_code == 406
    r = await client.get(f"/v2/studies/{study['study']}/metadata", headers={"Accept": "application/json"})
    assert r.status_code == 200


async def test_versions_and_unknown_routes(client: httpx.AsyncClient, study: dict) -> None:
    for version in ("v1", "v1.0-prerelease", "v2", "v1.0", "v2.0"):
        r = await client.get(f"/{version}/studies/{study['study']}/metadata", headers=ACCEPT_JSON)
        assert r.status_code == 200, version
    r = await client.get(f"/v3/studies/{study['study']}/metadata", headers=ACCEPT_JSON)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "UnsupportedApiVersion"
    assert (await client.get(f"/studies/{study['study']}/metadata", headers=ACCEPT_JSON)).status_code == 404
