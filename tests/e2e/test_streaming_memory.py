"""Memory: a ~300 MB STOW body, streamed in chunks, must not grow the server's RSS by 100 MB or more.

The body is generated on the fly (never held in memory by the test either): the DICOM header bytes of
one big instance, then its Pixel Data value streamed as a 12-bit ramp with the right declared length.
RSS is read from ``/proc/<pid>/status``: ``VmRSS`` before, and the peak (``VmHWM``, reset just before the
upload through ``clear_refs``; plus our own sampling of ``VmRSS`` while the request runs).
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.server import Emulator, running_emulator
from tests.factories import make_dataset, new_uid, to_bytes

pytestmark = pytest.mark.e2e

ROWS, COLUMNS = 10_000, 15_000  # 16-bit pixels: 300 000 000 bytes of Pixel Data
PIXEL_BYTES = ROWS * COLUMNS * 2
CHUNK = 1024 * 1024
# One chunk of the ramp; uint16 values < 4096 (BitsStored 12), little endian.
RAMP = (np.arange(CHUNK // 2, dtype=np.uint16) % 4096).astype("<u2").tobytes()
MAX_GROWTH_KIB = 100 * 1024
ACCEPT = {"Accept": "application/dicom+json"}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One worker process: the RSS measured is then that of the process doing the work (with several
    workers ``Emulator.pid`` is the supervisor, which only forks and waits)."""
    with running_emulator(tmp_path_factory.mktemp("streaming") / "data", "--workers", "1") as running:
        yield running


def header_bytes(
    study: str, series: str, sop: str, *, patient_id: str, rows: int = ROWS, columns: int = COLUMNS
) -> bytes:
    """A Part 10 file up to and including the Pixel Data element header (OW, 32-bit length)."""
    ds = make_dataset(study_uid=study, series_uid=series, sop_uid=sop, rows=1, columns=1, patient_id=patient_id)
    del ds.PixelData
    ds.Rows = rows
    ds.Columns = columns
    return to_bytes(ds) + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, rows * columns * 2)


def pixel_chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = RAMP[: min(CHUNK, total - sent)]
        sent += len(piece)
        yield piece


@dataclass
class RssSampler:
    """Samples the process's VmRSS in a thread until stopped; keeps the maximum seen."""

    emulator: Emulator
    interval: float = 0.02
    peak_kib: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.emulator.status_kib("VmRSS"))
            self.samples += 1
            time.sleep(self.interval)


@dataclass
class Upload:
    response: httpx.Response
    before_kib: int
    peak_kib: int
    seconds: float

    @property
    def growth_kib(self) -> int:
        return self.peak_kib - self.before_kib


def upload(emulator: Emulator, http: httpx.Client, body: Iterator[bytes], boundary: str) -> Upload:
    """POST ``body`` chunked (httpx sends an iterator with Transfer-Encoding: chunked) and watch the RSS."""
    # Warm up the code paths once (imports, pools) so that one-time allocations do not count as growth.
    assert http.get("/v2/studies", params={"PatientID": "warm-up"}, headers=ACCEPT).status_code == 204
    before_kib = emulator.status_kib("VmRSS")
    hwm_reset = emulator.reset_peak_rss()
    started = time.monotonic()
    with RssSampler(emulator) as sampler:
        r = http.post(
            "/v2/studies",
            content=body,
            headers={**ACCEPT, "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'},
            timeout=120,
        )
    seconds = time.monotonic() - started
    peak_kib = max(sampler.peak_kib, emulator.status_kib("VmHWM") if hwm_reset else 0)
    return Upload(r, before_kib, peak_kib, seconds)


def report(capsys: pytest.CaptureFixture[str], what: str, up: Upload) -> None:
    with capsys.disabled():
        print(  # noqa: T201
            f"\n[e2e] {what} in {up.seconds:.1f} s: server RSS before {up.before_kib / 1024:.0f} MiB, "
            f"peak {up.peak_kib / 1024:.0f} MiB (+{up.growth_kib / 1024:.0f} MiB)"
        )


@dataclass(frozen=True)
class BigInstance:
    study: str
    series: str
    sop: str
    size: int
    upload: Upload
    new_blobs: frozenset[Path]


@pytest.fixture(scope="module")
def big_instance(emulator: Emulator, http: httpx.Client) -> BigInstance:
    """One ~300 MB instance POSTed as a chunked multipart body, with the server's RSS watched meanwhile."""
    study, series, sop = new_uid(), new_uid(), new_uid()
    header = header_bytes(study, series, sop, patient_id="BIG-1")
    boundary = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        yield f"\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + header
        yield from pixel_chunks(PIXEL_BYTES)
        yield f"\r\n--{boundary}--".encode()

    blobs_before = emulator.blob_files()
    up = upload(emulator, http, body(), boundary)
    new_blobs = frozenset(emulator.blob_files() - blobs_before)
    return BigInstance(study, series, sop, len(header) + PIXEL_BYTES, up, new_blobs)


def test_300mb_single_instance_stow_is_streamed(
    emulator: Emulator, http: httpx.Client, big_instance: BigInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    up = big_instance.upload
    report(capsys, f"STOW of one {big_instance.size / 1e6:.0f} MB instance", up)
    assert up.response.status_code == 200, up.response.text
    item = up.response.json()["00081199"]["Value"][0]
    assert item["00081155"] == {"vr": "UI", "Value": [big_instance.sop]}
    assert up.growth_kib < MAX_GROWTH_KIB, f"RSS grew by {up.growth_kib / 1024:.0f} MiB"

    # Stored completely: the blob has every byte, the spool is empty, the index knows the instance.
    assert [p.stat().st_size for p in big_instance.new_blobs] == [big_instance.size]
    assert emulator.spool_files() == set()
    study, series, sop = big_instance.study, big_instance.series, big_instance.sop
    meta = http.get(f"/v2/studies/{study}/series/{series}/instances/{sop}/metadata", headers=ACCEPT)
    assert meta.status_code == 200
    (dataset,) = meta.json()
    assert "7FE00010" not in dataset
    assert dataset["00280010"] == {"vr": "US", "Value": [ROWS]}
    assert dataset["00280011"] == {"vr": "US", "Value": [COLUMNS]}
    found = http.get("/v2/instances", params={"PatientID": "BIG-1"}, headers=ACCEPT)
    assert [i["00080018"]["Value"][0] for i in found.json()] == [sop]


def test_300mb_of_medium_instances_stow_is_streamed(
    emulator: Emulator, http: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    count, rows, columns = 60, 1_600, 1_600  # 60 instances of ~5 MB
    study, series = new_uid(), new_uid()
    sops = [new_uid() for _ in range(count)]
    boundary = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        for sop in sops:
            header = header_bytes(study, series, sop, patient_id="MEDIUM-1", rows=rows, columns=columns)
            yield f"\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + header
            yield from pixel_chunks(rows * columns * 2)
        yield f"\r\n--{boundary}--".encode()

    up = upload(emulator, http, body(), boundary)
    report(capsys, f"STOW of {count} instances ({count * rows * columns * 2 / 1e6:.0f} MB)", up)
    assert up.response.status_code == 200, up.response.text
    stored = [item["00081155"]["Value"][0] for item in up.response.json()["00081199"]["Value"]]
    assert stored == sops
    assert up.growth_kib < MAX_GROWTH_KIB, f"RSS grew by {up.growth_kib / 1024:.0f} MiB"
    assert emulator.spool_files() == set()
    found = http.get("/v2/instances", params={"PatientID": "MEDIUM-1", "limit": 200}, headers=ACCEPT)
    assert sorted(i["00080018"]["Value"][0] for i in found.json()) == sorted(sops)


def test_300mb_instance_retrieve_is_streamed(emulator: Emulator, http: httpx.Client, big_instance: BigInstance) -> None:
    """WADO of the big instance streams it back (same bytes) without buffering it in the server."""
    assert big_instance.upload.response.status_code == 200
    study, series, sop = big_instance.study, big_instance.series, big_instance.sop
    (blob,) = big_instance.new_blobs
    expected_size = blob.stat().st_size
    assert expected_size == big_instance.size
    with blob.open("rb") as fh:
        head = fh.read(4096)
    before_kib = emulator.status_kib("VmRSS")
    hwm_reset = emulator.reset_peak_rss()
    received = 0
    first = b""
    with RssSampler(emulator) as sampler:
        with http.stream(
            "GET",
            f"/v2/studies/{study}/series/{series}/instances/{sop}",
            headers={"Accept": "application/dicom; transfer-syntax=*"},
            timeout=120,
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
            for chunk in r.iter_bytes():
                if len(first) < 4096:
                    first += chunk[: 4096 - len(first)]
                received += len(chunk)
    peak_kib = max(sampler.peak_kib, emulator.status_kib("VmHWM") if hwm_reset else 0)
    assert received == expected_size
    assert first == head
    assert peak_kib - before_kib < MAX_GROWTH_KIB, f"RSS grew by {(peak_kib - before_kib) / 1024:.0f} MiB"
