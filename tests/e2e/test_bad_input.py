"""Hostile and malformed requests against the real emulator: a clear 4xx, never a 5xx, nothing stored.

After every test (autouse ``nothing_stored``): ``/health`` is 200, the only instance QIDO finds is the
baseline one stored at module start, the blob folder holds exactly the baseline files, the spool folder
(``tmp/``) is empty and the data dir contains nothing new.
"""

from __future__ import annotations

import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Emulator
from tests.factories import make_dataset, make_instance, multipart, new_uid, to_bytes

pytestmark = pytest.mark.e2e

ACCEPT = {"Accept": "application/dicom+json"}
UID_MESSAGE = (
    "Dicom element '{0}' failed validation for VR 'UI': DICOM Identifier is invalid. "
    "Value length should not exceed the maximum length of 64 characters. "
    "Value should contain characters in '0'-'9' and '.'. Each component must start with non-zero number."
)
UNREADABLE = {"00081198": {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [43264]}}]}}


@dataclass(frozen=True)
class Baseline:
    sop_uid: str
    blob_files: frozenset[Path]
    data_entries: frozenset[Path]


def data_entries(emulator: Emulator) -> frozenset[Path]:
    """Everything under the data dir except the live SQLite files and the blob/spool folders' contents."""
    skip = (emulator.blob_dir, emulator.spool_dir)
    return frozenset(
        p
        for p in emulator.data_dir.rglob("*")
        if not any(p.is_relative_to(s) and p != s for s in skip) and not p.name.startswith("index.sqlite")
    )


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def baseline(emulator: Emulator, http: httpx.Client) -> Baseline:
    sop = new_uid()
    body, content_type = multipart([make_instance(sop_uid=sop)])
    r = http.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": content_type})
    assert r.status_code == 200, r.text
    blobs = emulator.blob_files()
    assert len(blobs) == 1
    return Baseline(sop_uid=sop, blob_files=frozenset(blobs), data_entries=data_entries(emulator))


@pytest.fixture(autouse=True)
def nothing_stored(emulator: Emulator, http: httpx.Client, baseline: Baseline) -> Iterator[None]:
    yield
    assert http.get("/health").status_code == 200
    r = http.get("/v2/instances", headers=ACCEPT)
    assert r.status_code == 200
    assert [item["00080018"]["Value"][0] for item in r.json()] == [baseline.sop_uid]
    assert wait_until(lambda: not emulator.spool_files()), f"spool not empty: {emulator.spool_files()}"
    assert emulator.blob_files() == baseline.blob_files
    assert data_entries(emulator) == baseline.data_entries
    assert emulator.process.poll() is None


def post_parts(http: httpx.Client, parts: list[bytes], **kw: str) -> httpx.Response:
    body, content_type = multipart(parts, **kw)
    return http.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": content_type})


def quietly(**kwargs: object) -> bytes:
    """An instance with deliberately invalid values (pydicom warns when they are assigned)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_bytes(make_dataset(**kwargs))  # type: ignore[arg-type]


# --- bodies ------------------------------------------------------------------------------------------

INSTANCE = make_instance(rows=64, columns=64)  # 8 KiB of pixel data at the end


@pytest.mark.parametrize(
    "part",
    [
        pytest.param(b"this is not dicom at all " * 40, id="garbage"),
        pytest.param(bytes(range(256)) * 16, id="binary-garbage"),
        pytest.param(b"\0" * 128 + b"DICM", id="preamble-only"),
        pytest.param(b"\0" * 128 + b"DICM" + b"\xff" * 500, id="preamble-then-garbage"),
        pytest.param(INSTANCE[:200], id="truncated-in-file-meta"),
        pytest.param(INSTANCE[:420], id="truncated-in-dataset-header"),
        pytest.param(INSTANCE[:-100], id="truncated-in-pixel-data"),
        pytest.param(INSTANCE[:-1], id="truncated-last-byte"),
        pytest.param(b"", id="empty-part"),
    ],
)
def test_unreadable_part_is_409_43264(http: httpx.Client, part: bytes) -> None:
    r = post_parts(http, [part])
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/dicom+json"
    assert r.json() == UNREADABLE


@pytest.mark.parametrize("data", [INSTANCE[:300], INSTANCE[:-100], b""], ids=["header", "pixels", "empty"])
def test_unreadable_single_part_is_409(http: httpx.Client, data: bytes) -> None:
    r = http.post("/v2/studies", content=data, headers={**ACCEPT, "Content-Type": "application/dicom"})
    assert r.status_code == 409
    assert r.json() == UNREADABLE


def test_several_bad_parts_are_each_reported(http: httpx.Client) -> None:
    r = post_parts(http, [b"garbage", INSTANCE[:-10], b""])
    assert r.status_code == 409
    assert r.json()["00081198"]["Value"] == [{"00081197": {"vr": "US", "Value": [43264]}}] * 3


def test_multipart_without_boundary_is_415(http: httpx.Client) -> None:
    body, _ = multipart([INSTANCE])
    content_type = 'multipart/related; type="application/dicom"'
    r = http.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": content_type})
    assert r.status_code == 415
    assert r.text == f"The content type '{content_type}' is either not multipart or is missing boundary."


def test_boundary_never_in_body_is_400(http: httpx.Client) -> None:
    body, _ = multipart([INSTANCE])
    r = http.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": "multipart/related; boundary=nope"})
    assert r.status_code == 400
    assert r.text == "The multipart request body does not contain the boundary delimiter '--nope'."


@pytest.mark.parametrize("cut", [10, 2, len(INSTANCE) // 2], ids=["before-close", "in-close", "in-part"])
def test_body_cut_before_closing_delimiter_is_400(http: httpx.Client, cut: int) -> None:
    body, content_type = multipart([make_instance(), INSTANCE])
    boundary = content_type.split('boundary="')[1].rstrip('"')
    r = http.post("/v2/studies", content=body[:-cut], headers={**ACCEPT, "Content-Type": content_type})
    assert r.status_code == 400
    assert r.text == f"The multipart request body ended before the closing boundary delimiter '--{boundary}--'."


@pytest.mark.parametrize("part_type", ["application/octet-stream", "application/dicom+json", "text/plain"])
def test_part_with_other_content_type_is_415(http: httpx.Client, part_type: str) -> None:
    r = post_parts(http, [INSTANCE], part_type=part_type)
    assert r.status_code == 415
    assert r.text == f"The specified content type '{part_type}' is not supported."


def test_bad_part_type_after_good_parts_stores_nothing(http: httpx.Client) -> None:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + make_instance()
        + f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        + INSTANCE
        + f"\r\n--{boundary}--".encode()
    )
    content_type = f"multipart/related; boundary={boundary}"
    r = http.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": content_type})
    assert r.status_code == 415


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("multipart/form-data; boundary=x", 415),
        ("application/dicom; transfer-syntax=1.2.840.10008.1.2.1", 415),
        ("text/plain", 415),
        ('multipart/related; type="application/dicom"; start="<a>"; boundary=x', 400),
    ],
)
def test_bad_request_content_type(http: httpx.Client, content_type: str, status: int) -> None:
    body = b"--x\r\nContent-Type: application/dicom\r\n\r\n" + INSTANCE + b"\r\n--x--"
    r = http.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": content_type})
    assert r.status_code == status


def test_oversized_part_headers_are_400(http: httpx.Client) -> None:
    body = b"--x\r\nContent-Type: application/dicom\r\nX-Junk: " + b"a" * 20000 + b"\r\n\r\n" + INSTANCE + b"\r\n--x--"
    r = http.post("/v2/studies", content=body, headers={**ACCEPT, "Content-Type": "multipart/related; boundary=x"})
    assert r.status_code == 400
    many = b"--x\r\n" + b"".join(f"X-H{i}: v\r\n".encode() for i in range(40)) + b"\r\n" + INSTANCE + b"\r\n--x--"
    r = http.post("/v2/studies", content=many, headers={**ACCEPT, "Content-Type": "multipart/related; boundary=x"})
    assert r.status_code == 400


# --- hostile UIDs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "uid_name"),
    [
        ("/v2/studies/1.2.abc", "StudyInstanceUid"),
        ("/v2/studies/" + "1" * 65, "StudyInstanceUid"),
        ("/v2/studies/1.2.3/series/x/instances/y", "SeriesInstanceUid"),
        ("/v2/studies/1.2.3/series/1.2.4/instances/y", "SopInstanceUid"),
        ("/v2/studies/..%2F..%2Fetc", "StudyInstanceUid"),
        ("/v2/studies/%2e%2e", "StudyInstanceUid"),
        ("/v2/studies/1.2.3/series/..%5C..%5Cwindows", "SeriesInstanceUid"),
    ],
)
@pytest.mark.parametrize("suffix", ["", "/metadata"])
def test_hostile_uid_in_url_is_400(http: httpx.Client, path: str, uid_name: str, suffix: str) -> None:
    for method, headers in [("GET", ACCEPT if suffix else {"Accept": "application/dicom"}), ("DELETE", {})]:
        if method == "DELETE" and suffix:
            continue
        r = http.request(method, path + suffix, headers=headers)
        assert r.status_code == 400, (method, path + suffix, r.status_code, r.text)
        assert r.text == UID_MESSAGE.format(uid_name)


@pytest.mark.parametrize("path", ["/v2/studies/1.2.abc", "/v2/studies/" + "1" * 65, "/v2/studies/..%2F..%2Fetc"])
def test_hostile_uid_in_stow_url_is_400(http: httpx.Client, path: str) -> None:
    body, content_type = multipart([INSTANCE])
    r = http.post(path, content=body, headers={**ACCEPT, "Content-Type": content_type})
    assert r.status_code == 400, (path, r.status_code, r.text)
    assert r.text == UID_MESSAGE.format("StudyInstanceUid")


@pytest.mark.parametrize(
    ("kwargs", "tag", "keyword"),
    [
        ({"sop_uid": "../../etc/passwd"}, "(0008,0018)", "SOPInstanceUID"),
        ({"study_uid": "1.2.abc"}, "(0020,000d)", "StudyInstanceUID"),
        ({"series_uid": "1.2.3/../../x"}, "(0020,000e)", "SeriesInstanceUID"),
        ({"sop_uid": "1." + "2" * 70}, "(0008,0018)", "SOPInstanceUID"),
    ],
)
def test_hostile_uid_in_payload_is_rejected(http: httpx.Client, kwargs: dict[str, str], tag: str, keyword: str) -> None:
    r = post_parts(http, [quietly(**kwargs)])
    assert r.status_code == 409
    failed = r.json()["00081198"]["Value"]
    assert len(failed) == 1
    assert failed[0]["00081197"] == {"vr": "US", "Value": [43264]}
    comments = [c["00000902"]["Value"][0] for c in failed[0]["00741048"]["Value"]]
    assert comments == [f"DICOM100: {tag} - {UID_MESSAGE.format(keyword)}"]


# --- absurd QIDO parameters --------------------------------------------------------------------------

LIMIT_RANGE = "The query parameter 'Limit' is invalid. The field Limit must be between 1 and 200."


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", LIMIT_RANGE),
        ("limit=201", LIMIT_RANGE),
        ("limit=abc", "The query parameter 'Limit' is invalid. The value 'abc' is not valid for Limit."),
        ("offset=-1", "The query parameter 'Offset' is invalid. The field Offset must be between 0 and "),
        ("offset=99999999999999999999999", "The query parameter 'Offset' is invalid. The value '9999"),
        ("StudyDate=2020-13-45", "Invalid query: specified Date value '2020-13-45' is invalid for attribute"),
        ("StudyDate=-", "Invalid query: specified range is invalid."),
        ("StudyDate=20200101-20190101", "Invalid query: "),
        ("fuzzymatching=maybe", "The query parameter 'FuzzyMatching' is invalid. The value 'maybe' is not valid"),
        ("includefield=all&includefield=PatientID", "Invalid query: cannot specify included fields in addition"),
        ("includefield=NoSuchKeyword", "Invalid query: IncludeField has unknown attribute 'NoSuchKeyword'."),
        ("foo=bar", "Invalid query: unknown query parameter 'foo'."),
        ("patientname=x", "Invalid query: unknown query parameter 'patientname'."),
        ("PatientID=a&PatientID=b", "Invalid QIDO-RS query. Duplicate AttributeId 'PatientID'."),
        ("PatientID=", "Invalid query: AttributeId 'PatientID' has empty string value that is not supported."),
        ("SOPInstanceUID=1.2.3", "Invalid query: AttributeId SOPInstanceUID is not queryable."),
        (
            "ReferencedSOPSequence.ReferencedSOPInstanceUID=1",
            "Dicom element 'ReferencedSOPSequence.ReferencedSOPInstanceUID' failed validation for VR 'SQ': "
            "Sequential dicom tags are currently not supported.",
        ),
    ],
)
def test_absurd_query_is_400(http: httpx.Client, query: str, message: str) -> None:
    r = http.get(f"/v2/studies?{query}", headers=ACCEPT)
    assert r.status_code == 400, (query, r.status_code, r.text)
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith(message), r.text


@pytest.mark.parametrize("fuzzy", ["false", "true"])
@pytest.mark.parametrize("name", ["x" * 10_000, "x " * 5_000, "x^" * 5_000], ids=["one-word", "spaces", "carets"])
def test_huge_patient_name_value_is_no_match(http: httpx.Client, name: str, fuzzy: str) -> None:
    """A 10 000-character PatientName (one word, or 5 000 words): no match (204), fuzzy or not."""
    # Connection: close, so that a failure here cannot leave a broken pooled connection to later tests.
    headers = {**ACCEPT, "Connection": "close"}
    r = http.get("/v2/studies", params={"PatientName": name, "fuzzymatching": fuzzy}, headers=headers)
    assert r.status_code == 204, r.text


def test_many_repeated_includefield_params(http: httpx.Client, baseline: Baseline) -> None:
    query = "&".join(["includefield=PatientID"] * 500)
    r = http.get(f"/v2/instances?{query}", headers=ACCEPT)
    assert r.status_code == 200
    assert [item["00080018"]["Value"][0] for item in r.json()] == [baseline.sop_uid]
    mixed = "&".join(f"includefield={k}" for k in ["PatientID", "00100010", "Modality", "StudyDate"] * 125)
    assert http.get(f"/v2/instances?{mixed}", headers=ACCEPT).status_code == 200


def test_very_long_query_string(http: httpx.Client) -> None:
    # ~50 KB of parameters: no 5xx (a 4xx from the parser or the HTTP layer is fine).
    r = http.get("/v2/studies?" + "&".join(f"foo{i}=bar" for i in range(5000)), headers=ACCEPT)
    assert 400 <= r.status_code < 500, r.status_code


# --- broken connections ------------------------------------------------------------------------------


def _raw_request(port: int, content_type: str, body: bytes, declared_length: int, *, chunked: bool = False) -> bytes:
    head = [
        "POST /v2/studies HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Accept: application/dicom+json",
        f"Content-Type: {content_type}",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {declared_length}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _multipart_body() -> tuple[bytes, str]:
    return multipart([make_instance(), make_instance(rows=128, columns=128)])


@pytest.mark.parametrize("variant", ["multipart-half", "multipart-no-close", "single-part-half", "chunked-cut"])
def test_client_disconnect_mid_body(emulator: Emulator, http: httpx.Client, variant: str) -> None:
    body, content_type = _multipart_body()
    if variant == "multipart-half":
        request = _raw_request(emulator.port, content_type, body[: len(body) // 2], len(body))
    elif variant == "multipart-no-close":
        # Every part complete, only the closing delimiter is missing.
        without_close = body[: body.rindex(b"\r\n--")]
        request = _raw_request(emulator.port, content_type, without_close, len(body) + 100_000)
    elif variant == "single-part-half":
        data = make_instance(rows=128, columns=128)
        request = _raw_request(emulator.port, "application/dicom", data[: len(data) // 2], len(data))
    else:
        chunk = body[: len(body) // 2]
        request = _raw_request(emulator.port, content_type, f"{len(body):x}\r\n".encode() + chunk, 0, chunked=True)
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as sock:
        sock.sendall(request)
        # While the request hangs waiting for the rest of its body, the server keeps serving others.
        assert http.get("/health").status_code == 200
        assert http.get("/v2/studies", headers=ACCEPT).status_code == 200
    # Socket closed: the half-received parts must be discarded (checked by ``nothing_stored``).
    assert wait_until(lambda: not emulator.spool_files())


def test_garbage_http_is_rejected(emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-not-http\r\n\r\n")
        reply = sock.recv(1024)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400")
