"""WADO-RS rendered (azure-behaviour §3.6) and the emulator-only thumbnails (``--loose``), on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.api.test_frames import Stored, store_dataset, store_sample
from tests.factories import make_dataset, new_uid

NOT_ACCEPTABLE = "The request headers are not acceptable"
MULTIPLE_ACCEPT = "The request contains multiple accept headers, which is not supported."
INVALID_QUALITY = "Image quality must be between 1 and 100 inclusive"
INVALID_FRAMES = (
    "The specified frames value is not valid. At least one frame must be present, and all requested frames must "
    "have value greater than 0."
)
FRAME_NOT_FOUND = "The specified frame cannot be found."


def image_of(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def linear(x: float, center: float, width: float) -> int:
    """PS3.3 §C.11.2.1.2.1 LINEAR window to 0..255."""
    if x <= center - 0.5 - (width - 1) / 2:
        return 0
    if x > center - 0.5 + (width - 1) / 2:
        return 255
    return round(((x - (center - 0.5)) / (width - 1) + 0.5) * 255)


# Hounsfield units at four known pixels of a 4x4 CT: air, window bottom, water, bone.
KNOWN_HU = {(0, 0): -1000, (1, 1): -160, (2, 2): 0, (3, 3): 1000}


def windowed_ct(**extra: object) -> object:
    ds = make_dataset(rows=4, columns=4, **extra)
    stored = np.full((4, 4), 1024 + 40, dtype=np.uint16)  # HU 40 elsewhere (window center)
    for (row, col), hu in KNOWN_HU.items():
        stored[row, col] = hu + 1024
    ds.PixelData = stored.tobytes()
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    return ds


async def test_instance_rendered_defaults_to_jpeg(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    request = client.build_request("GET", stored.url("/rendered"))
    del request.headers["accept"]  # no Accept header → image/jpeg (azure-behaviour §3.6)
    r = await client.send(request)
    assert r.headers["content-type"] == "image/jpeg"
    image = image_of(r)
    assert image.format == "JPEG" and image.size == (128, 128) and image.mode == "L"


async def test_windowed_ct_grey_levels(client: httpx.AsyncClient) -> None:
    stored = await store_dataset(client, windowed_ct())
    png = image_of(await client.get(stored.url("/rendered"), headers={"Accept": "image/png"}))
    assert png.format == "PNG" and png.mode == "L" and png.size == (4, 4)
    for (row, col), hu in KNOWN_HU.items():
        assert png.getpixel((col, row)) == linear(hu, 40, 400)
    assert png.getpixel((0, 1)) == linear(40, 40, 400) == 128
    jpeg = image_of(await client.get(stored.url("/rendered"), headers={"Accept": "image/jpeg"}))
    for (row, col), hu in KNOWN_HU.items():
        assert abs(jpeg.getpixel((col, row)) - linear(hu, 40, 400)) <= 12  # lossy


async def test_monochrome1_is_inverted(client: httpx.AsyncClient) -> None:
    stored = await store_dataset(client, windowed_ct(PhotometricInterpretation="MONOCHROME1"))
    png = image_of(await client.get(stored.url("/rendered"), headers={"Accept": "image/png"}))
    for (row, col), hu in KNOWN_HU.items():
        assert png.getpixel((col, row)) == 255 - linear(hu, 40, 400)


async def test_png_of_16_bit_data_keeps_the_windowed_values(client: httpx.AsyncClient) -> None:
    ds = make_dataset(rows=1, columns=5)
    ds.BitsStored, ds.HighBit = 16, 15
    values = np.array([[0, 10000, 30000, 50000, 65535]], dtype=np.uint16)
    ds.PixelData = values.tobytes()
    ds.WindowCenter, ds.WindowWidth = 30000, 40001
    stored = await store_dataset(client, ds)
    png = image_of(await client.get(stored.url("/rendered"), headers={"Accept": "image/png"}))
    assert [png.getpixel((x, 0)) for x in range(5)] == [linear(v, 30000, 40001) for v in values[0]]


async def test_rgb_png_is_exact(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "SC_rgb_rle.dcm")
    png = image_of(await client.get(stored.url("/rendered"), headers={"Accept": "image/png"}))
    assert png.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(png), stored.dataset.pixel_array)


async def test_ybr_jpeg_is_rendered_as_rgb(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "SC_rgb_jpeg_dcmtk.dcm")  # YBR_FULL JPEG baseline
    png = image_of(await client.get(stored.url("/rendered"), headers={"Accept": "image/png"}))
    assert png.mode == "RGB" and png.size == (100, 100)
    np.testing.assert_array_equal(np.asarray(png), stored.dataset.pixel_array)  # pydicom's RGB conversion


async def test_multiframe_frame_rendering(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "examples_ybr_color.dcm")  # 30 frames, YBR_FULL_422 JPEG
    frames = stored.dataset.pixel_array
    for number in (1, 17, 30):
        png = image_of(await client.get(stored.url(f"/frames/{number}/rendered"), headers={"Accept": "image/png"}))
        np.testing.assert_array_equal(np.asarray(png), frames[number - 1])
    first = image_of(await client.get(stored.url("/rendered"), headers={"Accept": "image/png"}))
    np.testing.assert_array_equal(np.asarray(first), frames[0])


async def test_16_bit_multiframe_without_window_uses_min_max(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "rtdose.dcm")  # 32-bit dose grid, no window
    png = image_of(await client.get(stored.url("/frames/5/rendered"), headers={"Accept": "image/png"}))
    values = np.asarray(png)
    frame = stored.dataset.pixel_array[4].astype(float) * float(stored.dataset.DoseGridScaling or 1)
    assert values[np.unravel_index(frame.argmin(), frame.shape)] == 0
    assert values[np.unravel_index(frame.argmax(), frame.shape)] == 255


async def test_quality_changes_jpeg_size(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    low = await client.get(stored.url("/rendered?quality=5"), headers={"Accept": "image/jpeg"})
    high = await client.get(stored.url("/rendered?Quality=100"), headers={"Accept": "image/jpeg"})
    assert low.status_code == high.status_code == 200
    assert len(low.content) < len(high.content)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("quality=0", INVALID_QUALITY),
        ("quality=101", INVALID_QUALITY),
        ("quality=abc", "The query parameter 'quality' is invalid. The value 'abc' is not valid for quality."),
        ("quality=", "The query parameter 'quality' is invalid. The value '' is invalid."),
    ],
)
async def test_quality_400(client: httpx.AsyncClient, query: str, message: str) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    r = await client.get(stored.url(f"/rendered?{query}"))
    assert r.status_code == 400
    assert r.text == message


async def test_frame_number_errors(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "rtdose.dcm")
    r = await client.get(stored.url("/frames/0/rendered"))
    assert r.status_code == 400 and r.text == INVALID_FRAMES
    r = await client.get(stored.url("/frames/x/rendered"))
    assert r.status_code == 400
    assert r.text == "The query parameter 'frame' is invalid. The value 'x' is not valid for frame."
    r = await client.get(stored.url("/frames/16/rendered"), headers={"Accept": "image/jpeg"})
    assert r.status_code == 404 and r.text == FRAME_NOT_FOUND


@pytest.mark.parametrize(
    ("accept", "message"),
    [
        ("*/*", NOT_ACCEPTABLE),
        ("image/*", NOT_ACCEPTABLE),
        ("image/gif", NOT_ACCEPTABLE),
        ("image/jpeg, image/png", MULTIPLE_ACCEPT),
    ],
)
async def test_rendered_accept_406(client: httpx.AsyncClient, accept: str, message: str) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    r = await client.get(stored.url("/rendered"), headers={"Accept": accept})
    assert r.status_code == 406
    assert r.text == message


async def test_rendered_without_pixel_data_and_missing_instance(client: httpx.AsyncClient) -> None:
    ds = make_dataset()
    del ds.PixelData
    stored = await store_dataset(client, ds)
    r = await client.get(stored.url("/rendered"), headers={"Accept": "image/png"})
    assert r.status_code == 404 and r.text == FRAME_NOT_FOUND
    url = f"/v2/studies/{stored.study}/series/{stored.series}/instances/{new_uid()}/rendered"
    r = await client.get(url, headers={"Accept": "image/png"})
    assert r.status_code == 404 and r.text == "The specified instance cannot be found."
    r = await client.get(f"/v2/studies/{stored.study}/series/{stored.series}/instances/1.2.x/rendered")
    assert r.status_code == 400


async def test_window_parameter_is_ignored_without_loose(client: httpx.AsyncClient) -> None:
    stored = await store_dataset(client, windowed_ct())
    png = image_of(await client.get(stored.url("/rendered?window=0,4000"), headers={"Accept": "image/png"}))
    assert png.getpixel((2, 2)) == linear(0, 40, 400)  # the dataset's window, as Azure ignores `window`


async def test_thumbnails_are_not_azure_routes(client: httpx.AsyncClient) -> None:
    stored = await store_sample(client, "CT_small.dcm")
    for url in (
        f"/v2/studies/{stored.study}/thumbnail",
        f"/v2/studies/{stored.study}/series/{stored.series}/thumbnail",
        stored.url("/thumbnail"),
    ):
        r = await client.get(url, headers={"Accept": "image/jpeg"})
        assert r.status_code == 404 and r.content == b""


class TestLoose:
    """Emulator extensions behind ``--loose``: the ``window`` parameter and DICOMweb thumbnails."""

    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        settings.loose = True
        return settings

    async def test_window_parameter(self, client: httpx.AsyncClient) -> None:
        stored = await store_dataset(client, windowed_ct())
        png = image_of(await client.get(stored.url("/rendered?window=0,4000"), headers={"Accept": "image/png"}))
        for (row, col), hu in KNOWN_HU.items():
            assert png.getpixel((col, row)) == linear(hu, 0, 4000)
        r = await client.get(stored.url("/rendered?window=0,0"), headers={"Accept": "image/png"})
        assert r.status_code == 400

    async def test_instance_series_and_study_thumbnails(self, client: httpx.AsyncClient, app: object) -> None:
        study, series = new_uid(), new_uid()
        big = make_dataset(study_uid=study, series_uid=series, rows=300, columns=200, InstanceNumber=2)
        first = make_dataset(study_uid=study, series_uid=series, rows=100, columns=400, InstanceNumber=1)
        no_pixels = make_dataset(study_uid=study, series_uid=new_uid(), InstanceNumber=0)
        del no_pixels.PixelData
        stored_big: Stored = await store_dataset(client, big)
        await store_dataset(client, first)
        await store_dataset(client, no_pixels)

        image = image_of(await client.get(stored_big.url("/thumbnail")))
        assert image.format == "JPEG" and image.size == (85, 128)  # default 128x128 viewport, aspect kept
        image = image_of(await client.get(stored_big.url("/thumbnail?viewport=,188")))
        assert image.size == (125, 188)  # the breast-screening gateway's 188 px high thumbnails
        # Series and study: the instance with the lowest Instance Number that has pixel data.
        image = image_of(await client.get(f"/v2/studies/{study}/series/{series}/thumbnail?viewport=64,64"))
        assert image.size == (64, 16)
        png = await client.get(f"/v2/studies/{study}/thumbnail", headers={"Accept": "image/png"})
        assert png.headers["content-type"] == "image/png" and image_of(png).size == (128, 32)
        # Served from the cache the second time.
        cache = app.state.runtime.pixels.thumbnails  # type: ignore[attr-defined]
        before = len(cache)
        again = await client.get(f"/v2/studies/{study}/thumbnail", headers={"Accept": "image/png"})
        assert again.content == png.content and len(cache) == before

    async def test_thumbnail_errors(self, client: httpx.AsyncClient) -> None:
        stored = await store_sample(client, "CT_small.dcm")
        r = await client.get(stored.url("/thumbnail?viewport=0,10"))
        assert r.status_code == 400
        r = await client.get(stored.url("/thumbnail"), headers={"Accept": "application/json"})
        assert r.status_code == 406
        r = await client.get(f"/v2/studies/{new_uid()}/thumbnail")
        assert r.status_code == 404 and r.text == "The specified study cannot be found."
        ds = make_dataset()
        del ds.PixelData
        empty = await store_dataset(client, ds)
        r = await client.get(f"/v2/studies/{empty.study}/thumbnail")
        assert r.status_code == 404
