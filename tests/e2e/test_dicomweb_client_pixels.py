"""The Python ``dicomweb-client`` frames and rendered calls against the real emulator (azure-behaviour §11)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from dicomweb_client import DICOMwebClient
from PIL import Image
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from tests.e2e.server import Emulator
from tests.factories import new_uid

pytestmark = pytest.mark.e2e


def load_sample(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is not installed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = new_uid(), new_uid(), new_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if not ds.get("PatientID"):
        ds.PatientID = "PID-PX"
    return ds


@pytest.fixture(scope="module")
def client(emulator: Emulator) -> Iterator[DICOMwebClient]:
    session = requests.Session()
    yield DICOMwebClient(f"{emulator.base_url}/v2", session=session)
    session.close()


@pytest.fixture(scope="module")
def stored(client: DICOMwebClient) -> dict[str, Dataset]:
    datasets = {name: load_sample(name) for name in ("CT_small.dcm", "rtdose.dcm", "examples_ybr_color.dcm")}
    # Re-read from bytes so the test compares with exactly what was sent.
    sent = {}
    for name, ds in datasets.items():
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        sent[name] = dcmread(io.BytesIO(buffer.getvalue()))
        client.store_instances([sent[name]])
    return sent


def uids(ds: Dataset) -> tuple[str, str, str]:
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def test_retrieve_instance_frames_default_media_type(client: DICOMwebClient, stored: dict[str, Dataset]) -> None:
    ds = stored["rtdose.dcm"]
    size = ds.Rows * ds.Columns * ds.BitsAllocated // 8
    frames = client.retrieve_instance_frames(*uids(ds), frame_numbers=[4, 2])
    assert frames == [ds.PixelData[3 * size : 4 * size], ds.PixelData[size : 2 * size]]


def test_retrieve_instance_frames_octet_stream_any_syntax(client: DICOMwebClient, stored: dict[str, Dataset]) -> None:
    ds = stored["examples_ybr_color.dcm"]  # JPEG baseline, 30 frames
    frames = client.retrieve_instance_frames(
        *uids(ds), frame_numbers=[30, 1], media_types=(("application/octet-stream", "*"),)
    )
    expected = list(generate_frames(ds.PixelData, number_of_frames=30))
    assert frames == [expected[29], expected[0]]


def test_retrieve_instance_frames_decoded(client: DICOMwebClient, stored: dict[str, Dataset]) -> None:
    ds = stored["examples_ybr_color.dcm"]
    [frame] = client.retrieve_instance_frames(
        *uids(ds), frame_numbers=[2], media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),)
    )
    np.testing.assert_array_equal(np.frombuffer(frame, np.uint8).reshape(ds.Rows, ds.Columns, 3), ds.pixel_array[1])


def test_retrieve_instance_rendered(client: DICOMwebClient, stored: dict[str, Dataset]) -> None:
    ds = stored["CT_small.dcm"]
    jpeg = Image.open(io.BytesIO(client.retrieve_instance_rendered(*uids(ds), media_types=("image/jpeg",))))
    assert jpeg.format == "JPEG" and jpeg.size == (128, 128)
    png = Image.open(
        io.BytesIO(client.retrieve_instance_rendered(*uids(ds), media_types=("image/png",), params={"quality": 90}))
    )
    assert png.format == "PNG" and png.mode == "L"


def test_retrieve_instance_frames_rendered(client: DICOMwebClient, stored: dict[str, Dataset]) -> None:
    ds = stored["examples_ybr_color.dcm"]
    data = client.retrieve_instance_frames_rendered(*uids(ds), frame_numbers=[7], media_types=("image/png",))
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), ds.pixel_array[6])
