"""Raw HTTP against the real emulator process: startup, routing, headers, negotiation (azure-behaviour
§1–azure-behaviour §3)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import Emulator
from tests.factories import make_instance, multipart, new_uid

pytestmark = pytest.mark.e2e

DICOM_JSON = {"Accept": "application/dicom+json"}
ANY_TS_MULTIPART = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
SUPPORTED_VERSIONS = "1.0-prerelease, 1, 2"
NOT_ACCEPTABLE = "The request headers are not acceptable"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def stow(http: httpx.Client, parts: list[bytes], url: str = "/v2/studies") -> httpx.Response:
    body, content_type = multipart(parts)
    return http.post(url, content=body, headers={**DICOM_JSON, "Content-Type": content_type})


def test_startup_time(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\n[e2e] dicom-emulator ready {emulator.startup_seconds:.2f} s after spawn (pid {emulator.pid})")  # noqa: T201
    assert 0 < emulator.startup_seconds < 15
    assert "Application startup complete" in emulator.output()


@pytest.mark.parametrize("path", ["/health", "/health/check"])
def test_health(http: httpx.Client, path: str) -> None:
    r = http.get(path)
    assert r.status_code == 200
    assert r.json()["status"] == "healthy"


def test_unsupported_version_is_400_json(http: httpx.Client) -> None:
    r = http.get("/v3/studies", headers=DICOM_JSON)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == "UnsupportedApiVersion"
    assert "3" in error["message"]
    assert error["innerError"] is None


@pytest.mark.parametrize("path", ["/studies", "/series", "/instances", "/studies/1.2.3/metadata"])
def test_unversioned_routes_are_404(http: httpx.Client, path: str) -> None:
    r = http.get(path, headers=DICOM_JSON)
    assert r.status_code == 404
    assert "api-supported-versions" not in r.headers


@pytest.mark.parametrize("version", ["v1", "v1.0", "v1.0-prerelease", "v2", "v2.0"])
def test_api_supported_versions_header(http: httpx.Client, version: str) -> None:
    r = http.get(f"/{version}/studies", headers=DICOM_JSON)
    assert r.status_code in (200, 204)
    assert r.headers["api-supported-versions"] == SUPPORTED_VERSIONS
    # Error answers of versioned routes carry it too.
    missing = http.get(f"/{version}/studies/{new_uid()}/metadata", headers=DICOM_JSON)
    assert missing.status_code == 404
    assert missing.headers["api-supported-versions"] == SUPPORTED_VERSIONS


@pytest.mark.parametrize(
    "query", ["PatientID=%3Cscript%3E", "PatientID=%3cscript%3e", "foo=%3C", "includefield=%3Cb%3E&limit=1"]
)
def test_query_string_guard(http: httpx.Client, query: str) -> None:
    r = http.get(f"/v2/studies?{query}", headers=DICOM_JSON)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "The query string included invalid characters."


def test_single_part_stow(http: httpx.Client, emulator: Emulator) -> None:
    study, series, sop = new_uid(), new_uid(), new_uid()
    data = make_instance(study_uid=study, series_uid=series, sop_uid=sop)
    r = http.post("/v2/studies", content=data, headers={**DICOM_JSON, "Content-Type": "application/dicom"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/dicom+json"
    assert r.json() == {
        "00081199": {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
                    "00081155": {"vr": "UI", "Value": [sop]},
                    "00081190": {
                        "vr": "UR",
                        "Value": [f"{emulator.base_url}/v2/studies/{study}/series/{series}/instances/{sop}"],
                    },
                    "00741048": {"vr": "SQ"},
                }
            ],
        }
    }
    # The stored file is byte-identical (pydicom already writes a zero preamble).
    got = http.get(
        f"/v2/studies/{study}/series/{series}/instances/{sop}",
        headers={"Accept": "application/dicom; transfer-syntax=*"},
    )
    assert got.status_code == 200
    assert got.headers["content-type"] == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    assert got.content == data


def test_chunked_multipart_stow(http: httpx.Client) -> None:
    parts = [make_instance(rows=64, columns=64) for _ in range(3)]
    body, content_type = multipart(parts)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    r = http.post("/v2/studies", content=chunks(), headers={**DICOM_JSON, "Content-Type": content_type})
    assert r.status_code == 200
    assert len(r.json()["00081199"]["Value"]) == 3


def test_retrieve_urls_are_absolute_with_host_and_port(http: httpx.Client, emulator: Emulator) -> None:
    study, series = new_uid(), new_uid()
    sops = [new_uid(), new_uid()]
    r = stow(http, [make_instance(study_uid=study, series_uid=series, sop_uid=s) for s in sops], f"/v2/studies/{study}")
    assert r.status_code == 200
    body = r.json()
    study_url = f"http://127.0.0.1:{emulator.port}/v2/studies/{study}"
    assert body["00081190"] == {"vr": "UR", "Value": [study_url]}
    instance_urls = [item["00081190"]["Value"][0] for item in body["00081199"]["Value"]]
    assert instance_urls == [f"{study_url}/series/{series}/instances/{s}" for s in sops]
    # The URLs work as they are.
    for url in instance_urls:
        assert http.get(url, headers={"Accept": "application/dicom"}).status_code == 200
    whole = http.get(study_url, headers=ANY_TS_MULTIPART)
    assert whole.status_code == 200
    # v1 URLs name the version segment the request used.
    v1 = stow(http, [make_instance(study_uid=study)], f"/v1.0-prerelease/studies/{study}")
    assert v1.json()["00081190"]["Value"] == [f"http://127.0.0.1:{emulator.port}/v1.0-prerelease/studies/{study}"]


def test_host_without_port_gets_the_listening_port(http: httpx.Client, emulator: Emulator) -> None:
    # dicomweb-client (requests) sends "Host: 127.0.0.1" without the port: the RetrieveURLs must still work.
    study = new_uid()
    body, content_type = multipart([make_instance(study_uid=study)])
    headers = {**DICOM_JSON, "Content-Type": content_type, "Host": "127.0.0.1"}
    r = http.post(f"/v2/studies/{study}", content=body, headers=headers)
    assert r.status_code == 200
    assert r.json()["00081190"]["Value"] == [f"http://127.0.0.1:{emulator.port}/v2/studies/{study}"]
    # A Host with a port is used as sent (the client knows how it reached us, e.g. through a mapped port).
    body, content_type = multipart([make_instance(study_uid=study)])
    headers = {**headers, "Content-Type": content_type, "Host": "viewer.example:9999"}
    r = http.post(f"/v2/studies/{study}", content=body, headers=headers)
    assert r.json()["00081190"]["Value"] == [f"http://viewer.example:9999/v2/studies/{study}"]


def test_multipart_retrieve_shape(http: httpx.Client) -> None:
    study, series = new_uid(), new_uid()
    parts = [make_instance(study_uid=study, series_uid=series) for _ in range(2)]
    assert stow(http, parts).status_code == 200
    r = http.get(f"/v2/studies/{study}", headers=ANY_TS_MULTIPART)
    assert r.status_code == 200
    match = re.fullmatch(r"multipart/related; boundary=([0-9a-f-]{36})", r.headers["content-type"])
    assert match, r.headers["content-type"]
    boundary = match.group(1).encode()
    header = b"Content-Type: application/dicom; transfer-syntax=" + EXPLICIT_LE.encode() + b"\r\n\r\n"
    assert r.content.startswith(b"--" + boundary + b"\r\n" + header)
    assert r.content.endswith(b"\r\n--" + boundary + b"--")
    chunks = r.content[: -len(b"\r\n--" + boundary + b"--")].split(b"\r\n--" + boundary + b"\r\n")
    received = sorted(
        chunk.split(header, 1)[1] for chunk in [chunks[0][len(b"--" + boundary + b"\r\n") :], *chunks[1:]]
    )
    assert received == sorted(parts)


def test_etag_and_if_none_match(http: httpx.Client) -> None:
    study, series, sop = new_uid(), new_uid(), new_uid()
    assert stow(http, [make_instance(study_uid=study, series_uid=series, sop_uid=sop)]).status_code == 200
    urls = [
        f"/v2/studies/{study}/metadata",
        f"/v2/studies/{study}/series/{series}/metadata",
        f"/v2/studies/{study}/series/{series}/instances/{sop}/metadata",
    ]
    etags = {}
    for url in urls:
        r = http.get(url, headers=DICOM_JSON)
        assert r.status_code == 200
        etag = r.headers["etag"]
        assert not etag.startswith('"')  # unquoted (azure-behaviour §3.5)
        etags[url] = etag
        cached = http.get(url, headers={**DICOM_JSON, "If-None-Match": etag})
        assert cached.status_code == 304
        assert cached.content == b""
        assert "etag" not in cached.headers
        assert http.get(url, headers={**DICOM_JSON, "If-None-Match": f'"{etag}"'}).status_code == 200
        assert http.get(url, headers={**DICOM_JSON, "If-None-Match": "0-0"}).status_code == 200
    assert re.fullmatch(r"\d+-1", etags[urls[0]])
    assert re.fullmatch(r"\d+", etags[urls[2]])
    # A new instance in the study changes the study and series ETags, not the instance's.
    assert stow(http, [make_instance(study_uid=study, series_uid=series)]).status_code == 200
    for url in urls[:2]:
        r = http.get(url, headers={**DICOM_JSON, "If-None-Match": etags[url]})
        assert r.status_code == 200
        assert r.headers["etag"] != etags[url]
        assert r.headers["etag"].endswith("-2")
        assert len(r.json()) == 2
    assert http.get(urls[2], headers={**DICOM_JSON, "If-None-Match": etags[urls[2]]}).status_code == 304


def test_no_accept_header_is_406(http: httpx.Client) -> None:
    study, series, sop = new_uid(), new_uid(), new_uid()
    assert stow(http, [make_instance(study_uid=study, series_uid=series, sop_uid=sop)]).status_code == 200
    for method, url in [
        ("GET", f"/v2/studies/{study}"),
        ("GET", f"/v2/studies/{study}/series/{series}"),
        ("GET", f"/v2/studies/{study}/series/{series}/instances/{sop}"),
        ("GET", f"/v2/studies/{study}/metadata"),
        ("GET", "/v2/studies"),
        ("GET", f"/v2/studies/{study}/instances"),
    ]:
        request = http.build_request(method, url)
        del request.headers["accept"]  # httpx adds "Accept: */*" by default
        r = http.send(request)
        assert r.status_code == 406, url
        # Retrieve negotiation throws NotAcceptable (message body); the Accept filter of
        # metadata/QIDO/STOW answers a bare 406.
        assert r.text == ("" if "metadata" in url or url.endswith(("/studies", "/instances")) else NOT_ACCEPTABLE)
        assert r.headers["api-supported-versions"] == SUPPORTED_VERSIONS
    # With an acceptable header the same instance is there.
    ok = http.get(f"/v2/studies/{study}/series/{series}/instances/{sop}", headers={"Accept": "application/dicom"})
    assert ok.status_code == 200


def test_bare_wildcard_accept_on_study_is_406_but_fine_on_instance(http: httpx.Client) -> None:
    study, series, sop = new_uid(), new_uid(), new_uid()
    assert stow(http, [make_instance(study_uid=study, series_uid=series, sop_uid=sop)]).status_code == 200
    assert http.get(f"/v2/studies/{study}").status_code == 406  # httpx's default Accept: */*
    r = http.get(f"/v2/studies/{study}/series/{series}/instances/{sop}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("multipart/related; boundary=")
