"""WADO-RS frames (azure-behaviour §3.2 negotiation, §3.3 shapes, §3.4 frames) on
SQLite and PostgreSQL."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_decoder
from pydicom.uid import JPEG2000Lossless
from sqlalchemy import update

from dicom_emulator.storage.models import Instance
from tests.factories import make_dataset, new_uid, to_bytes

ACCEPT_JSON = {"Accept": "application/dicom+json"}
EVRLE = "1.2.840.10008.1.2.1"
OCTET_ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
OCTET_MULTI = 'multipart/related; type="application/octet-stream"'
FRAME_NOT_FOUND = "The specified frame cannot be found."
INVALID_FRAMES = (
    "The specified frames value is not valid. At least one frame must be present, and all requested frames must "
    "have value greater than 0."
)
SINGLE_PART = "The accept header is supported for single frame retrieval, use multi-part accept header instead."
NOT_ACCEPTABLE = "The request headers are not acceptable"
TRANSCODING_FAILED = "The specified transcoding is not supported."


@dataclass
class Stored:
    study: str
    series: str
    sop: str
    dataset: Dataset  # as pydicom reads the original file (pixel data included)

    def url(self, suffix: str = "") -> str:
        return f"/v2/studies/{self.study}/series/{self.series}/instances/{self.sop}{suffix}"


def sample_path(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is not installed"
    return Path(path)


def with_new_uids(name: str) -> tuple[bytes, Dataset]:
    """A pydicom test file with fresh UIDs and a PatientID, written in its own transfer syntax."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(sample_path(name))
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = new_uid(), new_uid(), new_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if not ds.get("PatientID"):
            ds.PatientID = "PID-PX"
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    return data, dcmread(io.BytesIO(data))


async def store_bytes(client: httpx.AsyncClient, data: bytes) -> None:
    r = await client.post("/v2/studies", content=data, headers={**ACCEPT_JSON, "Content-Type": "application/dicom"})
    assert r.status_code in (200, 202), r.text


async def store_sample(client: httpx.AsyncClient, name: str) -> Stored:
    data, ds = with_new_uids(name)
    await store_bytes(client, data)
    return Stored(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds)


async def store_dataset(client: httpx.AsyncClient, ds: Dataset, *, implicit: bool = False) -> Stored:
    await store_bytes(client, to_bytes(ds, implicit=implicit))
    return Stored(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds)


def split_multipart(response: httpx.Response) -> list[tuple[str, bytes]]:
    ctype = response.headers["content-type"]
    assert ctype.startswith("multipart/related; boundary=")
    assert "type=" not in ctype  # no type parameter on the outer header (azure-behaviour §3.3)
    boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
    assert response.content.startswith(b"--" + boundary + b"\r\n")
    assert response.content.endswith(b"\r\n--" + boundary + b"--")
    parts = []
    for chunk in response.content.split(b"\r\n--" + boundary)[:-1]:
        chunk = chunk.removeprefix(b"--" + boundary)
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        parts.append((head.decode().split(":", 1)[1].strip(), data))
    return parts


def native_frame(ds: Dataset, index: int) -> bytes:
    size = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1) * ds.BitsAllocated // 8
    return ds.PixelData[index * size : (index + 1) * size]


def frames_of(array: np.ndarray, ds: Dataset) -> np.ndarray:
    return array if int(ds.get("NumberOfFrames", 1) or 1) > 1 else array[np.newaxis]


# --- native ---------------------------------------------------------------------------------------


async def test_single_frame_octet_stream(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    r = await client.get(stored.url("/frames/1"), headers={"Accept": "application/octet-stream"})
    assert r.status_code == 200
    assert r.headers["content-type"] == f"application/octet-stream; transfer-syntax={EVRLE}"
    assert r.content == stored.dataset.PixelData


async def test_multiframe_in_requested_order_with_encoded_comma(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "rtdose.dcm")  # implicit VR, 15 frames of 32 bits
    order = [3, 1, 15, 3]
    for path in ("/frames/3,1,15,3", "/frames/3%2C1%2C15%2C3"):
        r = await client.get(stored.url(path), headers={"Accept": OCTET_ANY})
        assert r.status_code == 200, r.text
        parts = split_multipart(r)
        assert [ctype for ctype, _ in parts] == ["application/octet-stream; transfer-syntax=1.2.840.10008.1.2"] * 4
        assert [data for _, data in parts] == [native_frame(stored.dataset, n - 1) for n in order]
    # Default transfer syntax of octet-stream is explicit VR little endian: the same bytes, relabelled.
    r = await client.get(stored.url("/frames/2"), headers={"Accept": OCTET_MULTI})
    assert split_multipart(r) == [
        (f"application/octet-stream; transfer-syntax={EVRLE}", native_frame(stored.dataset, 1))
    ]


async def test_star_accept_is_multipart_with_stored_syntax(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    r = await client.get(stored.url("/frames/1"), headers={"Accept": "*/*"})
    assert split_multipart(r) == [(f"application/octet-stream; transfer-syntax={EVRLE}", stored.dataset.PixelData)]


async def test_big_endian_frames_are_transcoded(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "MR_small_bigendian.dcm")
    r = await client.get(stored.url("/frames/1"), headers={"Accept": "application/octet-stream"})
    assert r.status_code == 200
    assert r.content == stored.dataset.pixel_array.astype("<i2").tobytes()
    r = await client.get(stored.url("/frames/1"), headers={"Accept": "application/octet-stream; transfer-syntax=*"})
    assert r.headers["content-type"] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.2"
    assert r.content == stored.dataset.PixelData


async def test_deflated_frames(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "image_dfl.dcm")
    for accept in ("application/octet-stream", "application/octet-stream; transfer-syntax=*"):
        r = await client.get(stored.url("/frames/1"), headers={"Accept": accept})
        assert r.status_code == 200, r.text
        assert r.content == stored.dataset.PixelData


async def test_frames_of_rows_stored_without_ranges(client: httpx.AsyncClient, app: object) -> None:
    """Instances indexed before frame ranges existed (frames_json NULL) are located on demand."""
    stored = await store_sample(client, "rtdose_rle.dcm")
    index = app.state.index  # type: ignore[attr-defined]
    async with index.sessions.begin() as session:
        await session.execute(update(Instance).where(Instance.sop_uid == stored.sop).values(frames_json=None))
    r = await client.get(stored.url("/frames/7,2"), headers={"Accept": OCTET_ANY})
    expected = list(generate_frames(stored.dataset.PixelData, number_of_frames=15))
    assert [data for _, data in split_multipart(r)] == [expected[6], expected[1]]


# --- encapsulated ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "SC_rgb_rle_2frame.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "JPGExtended.dcm",
        "examples_ybr_color.dcm",
    ],
)
async def test_encapsulated_frames_unchanged_and_decoded(client: httpx.AsyncClient, name: str) -> None:
    stored = await store_sample(client, name)
    ds = stored.dataset
    count = int(ds.get("NumberOfFrames", 1) or 1)
    numbers = list(range(count, 0, -1))[:4]  # in reverse order
    url = stored.url("/frames/" + ",".join(map(str, numbers)))
    ts = ds.file_meta.TransferSyntaxUID
    # transfer-syntax=*: the stored frame bytes, unchanged.
    r = await client.get(url, headers={"Accept": OCTET_ANY})
    assert r.status_code == 200, r.text
    expected = list(generate_frames(ds.PixelData, number_of_frames=count))
    parts = split_multipart(r)
    assert [ctype for ctype, _ in parts] == [f"application/octet-stream; transfer-syntax={ts}"] * len(numbers)
    assert [data for _, data in parts] == [expected[n - 1] for n in numbers]
    # Default: decoded to explicit VR little endian, equal to pydicom's decoding of the same frames.
    r = await client.get(url, headers={"Accept": OCTET_MULTI})
    assert r.status_code == 200, r.text
    reference = frames_of(ds.pixel_array, ds)
    for (ctype, data), number in zip(split_multipart(r), numbers, strict=True):
        assert ctype == f"application/octet-stream; transfer-syntax={EVRLE}"
        frame = reference[number - 1]
        assert data == frame.astype(frame.dtype.newbyteorder("<")).tobytes()


async def test_jp2_of_images_under_32_pixels(client: httpx.AsyncClient) -> None:
    # Frames and whole instances of a 4 x 6 image: OpenJPEG's default 6 resolution levels need 32 px a side
    # (it answered 406); the levels now follow the image size.
    ds = make_dataset(rows=4, columns=6, frames=2)
    stored = await store_dataset(client, ds)
    r = await client.get(stored.url("/frames/2"), headers={"Accept": 'multipart/related; type="image/jp2"'})
    assert r.status_code == 200, r.text
    [(ctype, data)] = split_multipart(r)
    assert ctype == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"
    decoded, _ = get_decoder(JPEG2000Lossless).as_array(
        encapsulate([data]),
        rows=4,
        columns=6,
        samples_per_pixel=1,
        bits_allocated=16,
        bits_stored=ds.BitsStored,
        pixel_representation=0,
        photometric_interpretation="MONOCHROME2",
        number_of_frames=1,
    )
    np.testing.assert_array_equal(decoded, ds.pixel_array[1])
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90'
    whole = await client.get(stored.url(""), headers={"Accept": accept})
    assert whole.status_code == 200, whole.text
    [(_, instance)] = split_multipart(whole)
    np.testing.assert_array_equal(dcmread(io.BytesIO(instance)).pixel_array, ds.pixel_array)


async def test_jp2_frames(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "MR_small_RLE.dcm")
    r = await client.get(stored.url("/frames/1"), headers={"Accept": 'multipart/related; type="image/jp2"'})
    assert r.status_code == 200, r.text
    [(ctype, data)] = split_multipart(r)
    assert ctype == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"
    ds = stored.dataset
    decoded, _ = get_decoder(JPEG2000Lossless).as_array(
        encapsulate([data]),
        rows=ds.Rows,
        columns=ds.Columns,
        samples_per_pixel=1,
        bits_allocated=16,
        bits_stored=ds.BitsStored,
        pixel_representation=ds.PixelRepresentation,
        photometric_interpretation="MONOCHROME2",
        number_of_frames=1,
    )
    np.testing.assert_array_equal(decoded, ds.pixel_array)
    # Already JPEG 2000 lossless: served as stored.
    j2k = await store_sample(client, "MR_small_jp2klossless.dcm")
    r = await client.get(j2k.url("/frames/1"), headers={"Accept": 'multipart/related; type="image/jp2"'})
    assert split_multipart(r)[0][1] == next(iter(generate_frames(j2k.dataset.PixelData, number_of_frames=1)))


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ("a", "The query parameter 'frames' is invalid. Unable to parse value 'a' as Int32."),
        ("1,x", "The query parameter 'frames' is invalid. Unable to parse value 'x' as Int32."),
        ("1,,2", "The query parameter 'frames' is invalid. Unable to parse value '' as Int32."),
        ("1.5", "The query parameter 'frames' is invalid. Unable to parse value '1.5' as Int32."),
        ("99999999999", "The query parameter 'frames' is invalid. Unable to parse value '99999999999' as Int32."),
        ("0", INVALID_FRAMES),
        ("2,-1", INVALID_FRAMES),
    ],
)
async def test_frame_list_400(client: httpx.AsyncClient, frames: str, message: str) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    r = await client.get(stored.url(f"/frames/{frames}"), headers={"Accept": OCTET_ANY})
    assert r.status_code == 400
    assert r.text == message
    assert r.headers["content-type"].startswith("text/plain")


async def test_net_number_styles_are_accepted(client: httpx.AsyncClient) -> None:
    """IntArrayModelBinder parses with NumberStyles.Any: ' 1', '+1', '1.0' and '1e0' are frame 1."""
    stored = await store_sample(client, "CT_small.dcm")
    r = await client.get(stored.url("/frames/ 1,+1,1.0,1e0"), headers={"Accept": OCTET_ANY})
    assert r.status_code == 200
    assert len(split_multipart(r)) == 4


async def test_uid_validation_comes_before_frame_values(client: httpx.AsyncClient) -> None:
    r = await client.get(
        f"/v2/studies/abc/series/{new_uid()}/instances/{new_uid()}/frames/0", headers={"Accept": "*/*"}
    )
    assert r.status_code == 400
    assert r.text.startswith("Dicom element 'StudyInstanceUid' failed validation")


async def test_single_part_with_several_frames_is_400(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "rtdose.dcm")
    r = await client.get(stored.url("/frames/1,2"), headers={"Accept": "application/octet-stream"})
    assert r.status_code == 400
    assert r.text == SINGLE_PART


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/dicom",
        "image/jp2",  # single part jp2 is not offered (azure-behaviour §3.2)
        'multipart/related; type="image/jp2"; transfer-syntax=1.2.840.10008.1.2.1',
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50",
        "image/png",
    ],
)
async def test_accept_406(client: httpx.AsyncClient, accept: str | None) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    request = client.build_request("GET", stored.url("/frames/1"))
    del request.headers["accept"]
    if accept is not None:
        request.headers["Accept"] = accept
    r = await client.send(request)
    assert r.status_code == 406
    assert r.text == NOT_ACCEPTABLE


async def test_accept_is_checked_before_existence(client: httpx.AsyncClient) -> None:
    url = f"/v2/studies/{new_uid()}/series/{new_uid()}/instances/{new_uid()}/frames/1"
    r = await client.get(url, headers={"Accept": "application/dicom"})
    assert r.status_code == 406
    r = await client.get(url, headers={"Accept": "application/octet-stream"})
    assert r.status_code == 404 and r.text == "The specified study cannot be found."


async def test_frame_not_found(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "rtdose.dcm")
    for frames, accept in (("16", OCTET_ANY), ("1,16", OCTET_ANY), ("16", OCTET_MULTI)):
        r = await client.get(stored.url(f"/frames/{frames}"), headers={"Accept": accept})
        assert r.status_code == 404
        assert r.text == FRAME_NOT_FOUND


async def test_instance_without_pixel_data_has_no_frames(client: httpx.AsyncClient) -> None:
    ds = make_dataset()
    del ds.PixelData
    stored = await store_dataset(client, ds)
    for accept in (OCTET_ANY, "application/octet-stream"):
        r = await client.get(stored.url("/frames/1"), headers={"Accept": accept})
        assert r.status_code == 404
        assert r.text == FRAME_NOT_FOUND


async def test_missing_series_and_instance(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    r = await client.get(
        f"/v2/studies/{stored.study}/series/{stored.series}/instances/{new_uid()}/frames/1", headers={"Accept": "*/*"}
    )
    assert r.status_code == 404 and r.text == "The specified instance cannot be found."


async def test_transcoding_failure_is_406(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "rtdose.dcm")  # 32-bit: no JPEG 2000 encoding
    r = await client.get(stored.url("/frames/1"), headers={"Accept": 'multipart/related; type="image/jp2"'})
    assert r.status_code == 406
    assert r.text == TRANSCODING_FAILED


async def test_frames_under_every_version(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    for version in ("v1", "v1.0-prerelease", "v2"):
        url = stored.url("/frames/1").replace("/v2/", f"/{version}/")
        r = await client.get(url, headers={"Accept": "application/octet-stream"})
        assert r.status_code == 200 and r.content == stored.dataset.PixelData


class TestSizeLimit:
    """A small ``max_transcode_size`` makes the 100 MiB rule observable (azure-behaviour §3.2)."""

    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        settings.max_transcode_size = 1000
        return settings

    async def test_transcoding_a_large_file_is_406(self, client: httpx.AsyncClient) -> None:
        stored = await store_sample(client, "MR_small_RLE.dcm")
        r = await client.get(stored.url("/frames/1"), headers={"Accept": "application/octet-stream"})
        assert r.status_code == 406
        assert r.text == (
            "Requested DICOM instance size is above the supported limit of 1000. The entire instance can be "
            "retrieved with the original transfer syntax by specifying 'transfer-syntax=*' in the Accept header."
        )
        # The size check comes before frame numbers are checked, as in Azure's slow path.
        r = await client.get(stored.url("/frames/5"), headers={"Accept": "application/octet-stream"})
        assert r.status_code == 406
        # The stored bytes are not limited.
        r = await client.get(stored.url("/frames/1"), headers={"Accept": "application/octet-stream; transfer-syntax=*"})
        assert r.status_code == 200

    async def test_instance_retrieve_size_limit(self, client: httpx.AsyncClient) -> None:
        stored = await store_sample(client, "MR_small_RLE.dcm")
        r = await client.get(stored.url(), headers={"Accept": "application/dicom"})
        assert r.status_code == 406
        assert r.text.startswith("Requested DICOM instance size is above the supported limit of 1000.")


# --- whole-instance transcoding through WADO (azure-behaviour §3.2) ---------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "JPGExtended.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "SC_rgb_rle_2frame.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
    ],
)
async def test_instance_round_trip_to_explicit_vr_little_endian(client: httpx.AsyncClient, name: str) -> None:
    stored = await store_sample(client, name)
    r = await client.get(stored.url(), headers={"Accept": "application/dicom"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == f"application/dicom; transfer-syntax={EVRLE}"
    result = dcmread(io.BytesIO(r.content))
    assert result.file_meta.TransferSyntaxUID == EVRLE
    # Exact for lossless sources; for lossy ones, equal to pydicom's decoding of what was stored.
    np.testing.assert_array_equal(result.pixel_array, stored.dataset.pixel_array)


async def test_instance_to_jpeg_2000(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "MR_small_RLE.dcm")
    r = await client.get(stored.url(), headers={"Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90"
    result = dcmread(io.BytesIO(r.content))
    np.testing.assert_array_equal(result.pixel_array, stored.dataset.pixel_array)


async def test_instance_transcoding_failure_is_406(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "rtdose.dcm")
    r = await client.get(stored.url(), headers={"Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90"})
    assert r.status_code == 406
    assert r.text == TRANSCODING_FAILED


class TestMemoryBlobs:
    """``--in-memory``: blobs have no file path; frames, transcoding and rendering read the bytes."""

    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        settings.in_memory = True
        return settings

    async def test_frames_transcoding_and_rendering(self, client: httpx.AsyncClient) -> None:
        stored = await store_sample(client, "SC_rgb_rle_2frame.dcm")
        r = await client.get(stored.url("/frames/2,1"), headers={"Accept": OCTET_ANY})
        expected = list(generate_frames(stored.dataset.PixelData, number_of_frames=2))
        assert [data for _, data in split_multipart(r)] == [expected[1], expected[0]]
        r = await client.get(stored.url("/frames/2"), headers={"Accept": "application/octet-stream"})
        assert r.content == stored.dataset.pixel_array[1].tobytes()
        r = await client.get(stored.url(), headers={"Accept": "application/dicom"})
        np.testing.assert_array_equal(dcmread(io.BytesIO(r.content)).pixel_array, stored.dataset.pixel_array)
        r = await client.get(stored.url("/frames/2/rendered"), headers={"Accept": "image/png"})
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
