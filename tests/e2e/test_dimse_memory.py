"""Memory: a ~200 MB C-STORE must not grow the server's RSS by 100 MB or more (the data set goes to a file as
its P-DATA arrive, as a STOW part does), and the instance is stored whole.

The client is pynetdicom sending the file in chunks (``STORE_SEND_CHUNKED_DATASET``), so neither side holds
the instance in memory; the file is written in chunks too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom import _config as pynetdicom_config
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from tests.e2e.server import Emulator, free_port, running_emulator
from tests.e2e.test_streaming_memory import MAX_GROWTH_KIB, RssSampler, header_bytes, pixel_chunks
from tests.factories import new_uid

pytestmark = pytest.mark.e2e

ROWS, COLUMNS = 10_000, 10_000  # 16-bit pixels: 200 000 000 bytes of Pixel Data
ACCEPT = {"Accept": "application/dicom+json"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, int]]:
    """One worker with a DIMSE port: the RSS measured is that of the process doing the work."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("dimse-memory") / "data"
    with running_emulator(data_dir, "--workers", "1", "--dimse-port", str(port)) as running:
        yield running, port


def test_200mb_c_store_is_streamed_to_disk(
    gateway: tuple[Emulator, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, port = gateway
    study, series, sop = new_uid(), new_uid(), new_uid()
    path = tmp_path / "big.dcm"
    with path.open("wb") as fh:
        fh.write(header_bytes(study, series, sop, patient_id="BIG-DIMSE", rows=ROWS, columns=COLUMNS))
        for chunk in pixel_chunks(ROWS * COLUMNS * 2):
            fh.write(chunk)
    size = path.stat().st_size

    monkeypatch.setattr(pynetdicom_config, "STORE_SEND_CHUNKED_DATASET", True)
    ae = AE(ae_title="MEMTEST")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    with httpx.Client(base_url=emulator.base_url, timeout=60) as http:
        assert http.get("/v2/studies", params={"PatientID": "warm-up"}, headers=ACCEPT).status_code == 204
        before_kib = emulator.status_kib("VmRSS")
        hwm_reset = emulator.reset_peak_rss()
        with RssSampler(emulator) as sampler:
            assoc = ae.associate("127.0.0.1", port, ae_title="DICOM_EMULATOR")
            assert assoc.is_established
            try:
                status = assoc.send_c_store(path)
            finally:
                assoc.release()
        peak_kib = max(sampler.peak_kib, emulator.status_kib("VmHWM") if hwm_reset else 0)
        assert status.Status == 0x0000
        growth = peak_kib - before_kib
        assert growth < MAX_GROWTH_KIB, f"RSS grew by {growth / 1024:.0f} MiB"

        # Stored whole: the blob is the file meta the gateway wrote (pynetdicom's, a few bytes longer than the
        # test's) and every byte of the data set as sent; the spool is empty, the index knows the instance.
        (blob,) = emulator.blob_files()
        assert abs(blob.stat().st_size - size) < 256
        tail = 1024 * 1024
        with blob.open("rb") as stored, path.open("rb") as sent:
            stored.seek(-tail, 2)
            sent.seek(-tail, 2)
            assert stored.read() == sent.read()
        assert emulator.spool_files() == set()
        found = http.get("/v2/instances", params={"PatientID": "BIG-DIMSE"}, headers=ACCEPT)
        assert [i["00080018"]["Value"][0] for i in found.json()] == [sop]
