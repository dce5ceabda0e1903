"""Streaming multipart reader/writer (azure-behaviour §2.2, §3.3; azure-behaviour §11)."""

from __future__ import annotations

import random
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
from dicomweb_client.web import DICOMwebClient

from dicom_emulator.api.multipart import (
    SpooledPart,
    new_boundary,
    read_multipart,
    spool_body,
    write_multipart,
)
from dicom_emulator.api.negotiation import parse_stow_content_type
from dicom_emulator.errors import BadRequestError, PayloadTooLargeError
from dicom_emulator.spool_files import SpoolFiles

BOUNDARY = "0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"
LIMIT = 10 * 1024 * 1024

# Awkward payloads: CR/LF bytes at the edges, things that look like (but are not) delimiters.
AWKWARD = [
    b"",
    b"\r\n",
    b"\r",
    b"\n",
    b"\r\n\r\n",
    b"data ending in CRLF\r\n",
    b"data ending in CR\r",
    b"\r\nstarts with CRLF",
    b"--" + BOUNDARY.encode(),  # boundary without a preceding CRLF is data
    b"x\r\n--" + BOUNDARY[:-1].encode() + b"\r\n",  # delimiter prefix only
    b"x\n--" + BOUNDARY.encode() + b"\n",  # LF-only is not a delimiter
    b"\r\n-" + BOUNDARY.encode(),
    bytes(range(256)) * 3,
]


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def pieces(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def read_all(
    data: bytes | AsyncIterator[bytes],
    spool_dir: Path,
    *,
    boundary: str = BOUNDARY,
    chunk_size: int = 65536,
    max_part_size: int = LIMIT,
    default_type: str | None = "application/dicom",
) -> list[tuple[SpooledPart, bytes]]:
    chunks = chunked(data, chunk_size) if isinstance(data, bytes) else data
    result = []
    async with aclosing(
        read_multipart(
            chunks, boundary, spool=SpoolFiles(spool_dir), max_part_size=max_part_size, default_type=default_type
        )
    ) as parts:
        async for part in parts:
            result.append((part, part.path.read_bytes()))
    return result


async def encode(parts: list[tuple[str, list[bytes]]], boundary: str = BOUNDARY) -> bytes:
    async def source() -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
        for content_type, body in parts:
            yield content_type, pieces(body)

    return b"".join([chunk async for chunk in write_multipart(source(), boundary)])


def dicomweb_client_body(payloads: list[bytes]) -> tuple[str, bytes]:
    """Exactly what the Python dicomweb-client's store_instances sends (azure-behaviour §11)."""
    content_type = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'
    return content_type, DICOMwebClient._encode_multipart_message(payloads, content_type)


def files_in(directory: Path) -> list[Path]:
    # Not the empty files SpoolFiles keeps ready (named with a leading dot).
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


class TestRoundTrip:
    @pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 13, 64, 1000, 4096, 65536])
    async def test_awkward_parts_every_chunk_size(self, tmp_path: Path, chunk_size: int) -> None:
        body = await encode([("application/dicom", [payload]) for payload in AWKWARD])
        parts = await read_all(body, tmp_path, chunk_size=chunk_size)
        assert [data for _, data in parts] == AWKWARD
        assert [part.size for part, _ in parts] == [len(p) for p in AWKWARD]
        assert all(part.content_type == "application/dicom" for part, _ in parts)

    @pytest.mark.parametrize("seed", range(6))
    @pytest.mark.parametrize("chunk_size", [1, 17, 511, 8192, 65536])
    async def test_random_binary_parts(self, tmp_path: Path, seed: int, chunk_size: int) -> None:
        rng = random.Random(seed)
        size_cap = 3000 if chunk_size == 1 else 200_000
        payloads = []
        for _ in range(rng.randint(1, 5)):
            data = rng.randbytes(rng.randint(0, size_cap))
            payloads.append(data + rng.choice([b"", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\r\n--"]))
        body = await encode([("application/dicom", [p[:10], p[10:]]) for p in payloads])
        parts = await read_all(body, tmp_path, chunk_size=chunk_size)
        assert [data for _, data in parts] == payloads
        assert sorted(part.path for part, _ in parts) == files_in(tmp_path)

    async def test_every_split_point(self, tmp_path: Path) -> None:
        """Two chunks split at every byte position: delimiters and headers cut everywhere."""
        payloads = [b"first\r\n", b"", b"\rthird"]
        body = await encode([("application/dicom", [p]) for p in payloads])
        for split in range(len(body) + 1):
            parts = await read_all(pieces([body[:split], body[split:]]), tmp_path)
            assert [data for _, data in parts] == payloads, split
            for part, _ in parts:
                part.path.unlink()
        assert files_in(tmp_path) == []

    async def test_empty_chunks_ignored(self, tmp_path: Path) -> None:
        body = await encode([("application/dicom", [b"abc"])])
        stream = pieces(x for byte in body for x in (b"", bytes([byte])))
        assert [data for _, data in await read_all(stream, tmp_path)] == [b"abc"]


class TestClientLayouts:
    async def test_python_dicomweb_client_exact_bytes(self, tmp_path: Path) -> None:
        payloads = [b"DICM-one\r\n", b"\r\nDICM-two", b"three"]
        content_type, body = dicomweb_client_body(payloads)
        # Leading CRLF before the first delimiter, no CRLF after the closing one.
        assert body.startswith(b"\r\n--" + BOUNDARY.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n")
        assert body.endswith(b"three\r\n--" + BOUNDARY.encode() + b"--")
        stow = parse_stow_content_type(content_type)
        assert stow.boundary is not None
        for chunk_size in (1, 7, 1 << 20):
            parts = await read_all(body, tmp_path, boundary=stow.boundary, chunk_size=chunk_size)
            assert [data for _, data in parts] == payloads
            assert [part.content_type for part, _ in parts] == ["application/dicom"] * 3
            assert parts[0][0].headers == {"content-type": "application/dicom"}
            for part, _ in parts:
                part.path.unlink()

    async def test_npm_dicomweb_client_layout(self, tmp_path: Path) -> None:
        boundary = "DICOMwebBoundary"
        body = b"\r\n--DICOMwebBoundary\r\nContent-Type: application/dicom\r\n\r\nP1\r\n--DICOMwebBoundary--"
        parts = await read_all(body, tmp_path, boundary=boundary)
        assert [data for _, data in parts] == [b"P1"]

    async def test_csharp_style_body(self, tmp_path: Path) -> None:
        # .NET MultipartContent: no preamble, trailing CRLF after the closing delimiter.
        body = (
            f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + b"A"
            + f"\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + b"B"
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        assert [data for _, data in await read_all(body, tmp_path)] == [b"A", b"B"]

    async def test_write_multipart_decoded_by_python_dicomweb_client(self) -> None:
        payloads = [b"one\r\n", b"\r\ntwo", b"", b"four"]
        body = await encode([("application/dicom; transfer-syntax=*", [p]) for p in payloads], "b0undary")

        class FakeResponse:
            headers = {"content-type": "multipart/related; boundary=b0undary"}
            content = body

            def __enter__(self) -> FakeResponse:
                return self

            def __exit__(self, *args: Any) -> None:
                return None

        client = DICOMwebClient.__new__(DICOMwebClient)
        decoded = list(client._decode_multipart_message(FakeResponse(), stream=False))  # type: ignore[arg-type]
        assert decoded == payloads


class TestReaderShapes:
    async def test_zero_parts(self, tmp_path: Path) -> None:
        for body in (b"--b--", b"\r\n--b--", b"--b--\r\n", b"preamble\r\n--b--\r\nepilogue"):
            assert await read_all(body, tmp_path, boundary="b") == []
        assert files_in(tmp_path) == []

    async def test_preamble_and_epilogue_ignored(self, tmp_path: Path) -> None:
        body = b"This is a preamble --b not at line start\r\n--b\r\n\r\nX\r\n--b--\r\nepilogue \r\n--b\r\n junk"
        parts = await read_all(body, tmp_path, boundary="b", chunk_size=3)
        assert [data for _, data in parts] == [b"X"]

    async def test_transport_padding_after_delimiter(self, tmp_path: Path) -> None:
        body = b"--b \t \r\nContent-Type: application/dicom\r\n\r\nX\r\n--b  \r\n\r\nY\r\n--b--"
        assert [data for _, data in await read_all(body, tmp_path, boundary="b", chunk_size=1)] == [b"X", b"Y"]

    async def test_default_type_for_first_part_only(self, tmp_path: Path) -> None:
        body = b"--b\r\n\r\nfirst\r\n--b\r\n\r\nsecond\r\n--b\r\nContent-Type: image/png\r\n\r\nthird\r\n--b--"
        parts = await read_all(body, tmp_path, boundary="b", default_type="application/dicom")
        assert [part.content_type for part, _ in parts] == ["application/dicom", None, "image/png"]
        assert [part.headers for part, _ in parts] == [{}, {}, {"content-type": "image/png"}]

    async def test_no_default_type(self, tmp_path: Path) -> None:
        parts = await read_all(b"--b\r\n\r\nX\r\n--b--", tmp_path, boundary="b", default_type=None)
        assert parts[0][0].content_type is None

    async def test_explicit_part_type_beats_default(self, tmp_path: Path) -> None:
        body = b"--b\r\nContent-Type: application/dicom+json\r\n\r\n{}\r\n--b--"
        parts = await read_all(body, tmp_path, boundary="b", default_type="application/dicom")
        assert parts[0][0].content_type == "application/dicom+json"

    async def test_headers_case_insensitive(self, tmp_path: Path) -> None:
        body = (
            b"--b\r\nCONTENT-TYPE:application/dicom \r\nX-Extra:  v1\r\nx-extra: v2\r\n"
            b"Content-Location: http://x/y\r\n  folded\r\n\r\nX\r\n--b--"
        )
        ((part, _),) = await read_all(body, tmp_path, boundary="b")
        assert part.content_type == "application/dicom"
        assert part.headers == {
            "content-type": "application/dicom",
            "x-extra": "v1, v2",
            "content-location": "http://x/y folded",
        }

    async def test_header_block_at_limit_accepted(self, tmp_path: Path) -> None:
        header = b"X-Pad: " + b"a" * (16 * 1024 - 7)
        assert len(header) == 16 * 1024
        body = b"--b\r\n" + header + b"\r\n\r\nX\r\n--b--"
        assert [data for _, data in await read_all(body, tmp_path, boundary="b", chunk_size=100)] == [b"X"]

    async def test_part_exactly_at_size_limit(self, tmp_path: Path) -> None:
        body = await encode([("application/dicom", [b"x" * 100]), ("application/dicom", [b""])])
        parts = await read_all(body, tmp_path, max_part_size=100, chunk_size=9)
        assert [part.size for part, _ in parts] == [100, 0]

    async def test_quoted_looking_boundary_characters(self, tmp_path: Path) -> None:
        boundary = "a b:c,d'()+_-./=?"
        body = await encode([("application/dicom", [b"P"])], boundary)
        assert [data for _, data in await read_all(body, tmp_path, boundary=boundary, chunk_size=2)] == [b"P"]


class TestReaderErrors:
    async def assert_bad(self, body: bytes, tmp_path: Path, fragment: str, **kwargs: Any) -> None:
        for chunk_size in (1, 4, 65536):
            with pytest.raises(BadRequestError) as info:
                await read_all(body, tmp_path, chunk_size=chunk_size, **kwargs)
            assert fragment in info.value.message
            assert files_in(tmp_path) == [], "every spool file must be removed"

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"just a raw DICOM file",
            b"-" * 100,
            b"--" + BOUNDARY[:-1].encode() + b"\r\n",
            b"\r\n--" + BOUNDARY[:5].encode(),
        ],
    )
    async def test_no_delimiter(self, tmp_path: Path, body: bytes) -> None:
        await self.assert_bad(body, tmp_path, "does not contain the boundary delimiter")

    async def test_truncated_in_body(self, tmp_path: Path) -> None:
        body = await encode([("application/dicom", [b"one"]), ("application/dicom", [b"two" * 1000])])
        await self.assert_bad(body[:-100], tmp_path, "ended before the closing boundary delimiter")

    @pytest.mark.parametrize(
        "tail",
        [b"", b"\r", b"\r\n", b"\r\n-", b"\r\n--" + BOUNDARY.encode(), b"\r\n--" + BOUNDARY.encode() + b"-"],
    )
    async def test_missing_closing_delimiter(self, tmp_path: Path, tail: bytes) -> None:
        body = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\nDATA".encode() + tail
        await self.assert_bad(body, tmp_path, "ended before the closing boundary delimiter")

    async def test_truncated_after_delimiter_line(self, tmp_path: Path) -> None:
        body = f"--{BOUNDARY}\r\n\r\nA\r\n--{BOUNDARY}\r\n".encode()
        await self.assert_bad(body, tmp_path, "ended before the closing boundary delimiter")

    async def test_truncated_in_headers(self, tmp_path: Path) -> None:
        body = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n".encode()
        await self.assert_bad(body, tmp_path, "ended before the closing boundary delimiter")

    @pytest.mark.parametrize("after", [b"X\r\n", b"-x\r\n", b" x\r\n", b"\n", b"\rX"])
    async def test_garbage_after_delimiter(self, tmp_path: Path, after: bytes) -> None:
        body = f"--{BOUNDARY}".encode() + after + b"\r\nDATA\r\n--" + BOUNDARY.encode() + b"--"
        await self.assert_bad(body, tmp_path, "unexpected data after the boundary delimiter")

    @pytest.mark.parametrize("header_line", [b"not a header", b": no name", b"Bad Name: v"])
    async def test_garbage_headers(self, tmp_path: Path, header_line: bytes) -> None:
        body = b"--b\r\n" + header_line + b"\r\n\r\nDATA\r\n--b--"
        await self.assert_bad(body, tmp_path, "Invalid header line", boundary="b")

    async def test_garbage_instead_of_headers(self, tmp_path: Path) -> None:
        # A raw payload right after the delimiter line, with no blank line within 16 KiB.
        body = b"--b\r\n" + bytes(range(1, 256)) * 100 + b"\r\n--b--"
        await self.assert_bad(body, tmp_path, "Multipart headers length limit 16384 exceeded.", boundary="b")

    async def test_header_block_too_long(self, tmp_path: Path) -> None:
        body = b"--b\r\nX-Pad: " + b"a" * (16 * 1024) + b"\r\n\r\nX\r\n--b--"
        await self.assert_bad(body, tmp_path, "Multipart headers length limit 16384 exceeded.", boundary="b")

    async def test_too_many_headers(self, tmp_path: Path) -> None:
        headers = b"".join(b"X-H%d: v\r\n" % i for i in range(17))
        body = b"--b\r\n" + headers + b"\r\nX\r\n--b--"
        await self.assert_bad(body, tmp_path, "Multipart header count limit 16 exceeded.", boundary="b")

    async def test_error_in_later_part_removes_parts_already_handed_out(self, tmp_path: Path) -> None:
        good = await encode([("application/dicom", [b"first"]), ("application/dicom", [b"second"])])
        body = good[: -len(f"--{BOUNDARY}--")] + b"--" + BOUNDARY.encode() + b"junk"
        seen: list[Path] = []
        with pytest.raises(BadRequestError):
            async for part in read_multipart(
                chunked(body, 5), BOUNDARY, spool=SpoolFiles(tmp_path), max_part_size=LIMIT, default_type=None
            ):
                seen.append(part.path)
                assert part.path.exists()
        assert len(seen) == 2
        assert files_in(tmp_path) == []


class TestPartSizeLimit:
    @pytest.mark.parametrize("chunk_size", [1, 10, 65536])
    async def test_oversize_part(self, tmp_path: Path, chunk_size: int) -> None:
        body = await encode([("application/dicom", [b"ok"]), ("application/dicom", [b"x" * 101])])
        with pytest.raises(PayloadTooLargeError) as info:
            await read_all(body, tmp_path, max_part_size=100, chunk_size=chunk_size)
        assert info.value.message == "The request exceeded the allowed limit of 100 bytes."
        assert files_in(tmp_path) == []

    async def test_oversize_detected_while_streaming(self, tmp_path: Path) -> None:
        """The limit fires before the body ends: later chunks are never pulled."""
        pulled = 0

        async def endless() -> AsyncIterator[bytes]:
            nonlocal pulled
            yield b"--b\r\n\r\n"
            while True:
                pulled += 1
                yield b"z" * 1000

        with pytest.raises(PayloadTooLargeError):
            await read_all(endless(), tmp_path, boundary="b", max_part_size=10_000)
        assert pulled <= 12
        assert files_in(tmp_path) == []


class TestGeneratorLifecycle:
    async def test_early_close_keeps_handed_out_file_only(self, tmp_path: Path) -> None:
        body = await encode([("application/dicom", [b"one"]), ("application/dicom", [b"two"])])
        async with aclosing(
            read_multipart(
                chunked(body, 3), BOUNDARY, spool=SpoolFiles(tmp_path), max_part_size=LIMIT, default_type=None
            )
        ) as parts:
            first = await anext(parts)
        assert files_in(tmp_path) == [first.path]
        assert first.path.read_bytes() == b"one"

    async def test_close_while_part_pending_removes_it(self, tmp_path: Path) -> None:
        class Stop(Exception):
            pass

        async def failing() -> AsyncIterator[bytes]:
            yield b"--b\r\n\r\npartial data"
            raise Stop

        with pytest.raises(Stop):
            await read_all(failing(), tmp_path, boundary="b")
        assert files_in(tmp_path) == []

    async def test_consumer_exception_keeps_handed_out_files(self, tmp_path: Path) -> None:
        body = await encode([("application/dicom", [b"one"]), ("application/dicom", [b"two"])])
        handed: list[Path] = []
        with pytest.raises(RuntimeError):
            async with aclosing(
                read_multipart(
                    chunked(body, 3), BOUNDARY, spool=SpoolFiles(tmp_path), max_part_size=LIMIT, default_type=None
                )
            ) as parts:
                async for part in parts:
                    handed.append(part.path)
                    raise RuntimeError("consumer failed")
        assert files_in(tmp_path) == handed

    async def test_chunk_source_error_after_handing_out_removes_everything(self, tmp_path: Path) -> None:
        async def disconnecting() -> AsyncIterator[bytes]:
            yield b"--b\r\n\r\nfirst\r\n--b\r\n\r\nsec"
            raise ConnectionResetError("client went away")

        with pytest.raises(ConnectionResetError):
            await read_all(disconnecting(), tmp_path, boundary="b")
        assert files_in(tmp_path) == []

    async def test_empty_boundary_rejected(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError):
            await read_all(b"----", tmp_path, boundary="")


class TestSpoolBody:
    @pytest.mark.parametrize("chunk_size", [1, 1000, 65536])
    async def test_spools_exact_bytes(self, tmp_path: Path, chunk_size: int) -> None:
        data = random.Random(1).randbytes(100_000) + b"\r\n"
        part = await spool_body(chunked(data, chunk_size), spool=SpoolFiles(tmp_path), max_size=len(data))
        assert part.size == len(data)
        assert part.path.read_bytes() == data
        assert part.path.parent == tmp_path
        assert part.content_type is None and part.headers == {}

    async def test_content_type_passed_through(self, tmp_path: Path) -> None:
        part = await spool_body(
            pieces([b"x"]), spool=SpoolFiles(tmp_path), max_size=10, content_type="application/dicom"
        )
        assert part.content_type == "application/dicom"

    async def test_empty_body(self, tmp_path: Path) -> None:
        part = await spool_body(pieces([]), spool=SpoolFiles(tmp_path), max_size=10)
        assert part.size == 0 and part.path.read_bytes() == b""

    async def test_too_large(self, tmp_path: Path) -> None:
        with pytest.raises(PayloadTooLargeError) as info:
            await spool_body(chunked(b"x" * 11, 3), spool=SpoolFiles(tmp_path), max_size=10)
        assert info.value.message == "The request exceeded the allowed limit of 10 bytes."
        assert files_in(tmp_path) == []

    async def test_source_error_removes_file(self, tmp_path: Path) -> None:
        async def failing() -> AsyncIterator[bytes]:
            yield b"abc"
            raise ConnectionResetError

        with pytest.raises(ConnectionResetError):
            await spool_body(failing(), spool=SpoolFiles(tmp_path), max_size=10)
        assert files_in(tmp_path) == []


class TestWriter:
    async def test_exact_layout(self) -> None:
        body = await encode(
            [("application/dicom; transfer-syntax=1.2.840.10008.1.2.1", [b"AB", b"", b"C\r\n"]), ("x/y", [])], "bnd"
        )
        assert body == (
            b"--bnd\r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\n\r\nABC\r\n"
            b"\r\n--bnd\r\nContent-Type: x/y\r\n\r\n"
            b"\r\n--bnd--"
        )

    async def test_zero_parts(self) -> None:
        assert await encode([], "bnd") == b"--bnd--"

    async def test_npm_client_style_split(self) -> None:
        """npm dicomweb-client: boundary from the first line; part data ends 2 bytes before the next one."""
        payloads = [b"\r\nfirst\r\n", b"second"]
        body = await encode([("application/octet-stream", [p]) for p in payloads], "bnd")
        marker = body[: body.index(b"\r\n")]
        assert marker == b"--bnd"
        decoded = []
        position = 0
        while True:
            start = body.index(marker, position)
            if body[start + len(marker) : start + len(marker) + 2] == b"--":
                break
            header_end = body.index(b"\r\n\r\n", start) + 4
            following = body.index(marker, header_end)
            decoded.append(body[header_end : following - 2])
            position = following
        assert decoded == payloads

    async def test_streams_without_joining(self) -> None:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"x" * 10

        async def source() -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
            yield "application/dicom", body()

        chunks = [chunk async for chunk in write_multipart(source(), "b")]
        assert chunks[1:4] == [b"x" * 10] * 3

    def test_new_boundary_is_uuid4(self) -> None:
        first, second = new_boundary(), new_boundary()
        assert uuid.UUID(first).version == 4
        assert first != second and str(uuid.UUID(first)) == first


async def test_memory_bounded_300mb(tmp_path: Path) -> None:
    """~300 MB through read_multipart: spooled to disk, tracemalloc peak under 20 MB."""
    part_size = 100 * 1024 * 1024
    chunk = bytes(range(256)) * 256  # 64 KiB, reused: the source allocates nothing per chunk
    parts_count = 3

    async def source() -> AsyncIterator[bytes]:
        yield f"\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        for index in range(parts_count):
            for _ in range(part_size // len(chunk)):
                yield chunk
            closing = b"--" if index == parts_count - 1 else b"\r\nContent-Type: application/dicom\r\n\r\n"
            yield f"\r\n--{BOUNDARY}".encode() + closing

    tracemalloc.start()
    try:
        sizes = []
        async with aclosing(
            read_multipart(source(), BOUNDARY, spool=SpoolFiles(tmp_path), max_part_size=part_size, default_type=None)
        ) as parts:
            async for part in parts:
                sizes.append(part.size)
                part.path.unlink()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sizes == [part_size] * parts_count
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


async def test_single_huge_chunk_is_fed_in_slices(tmp_path: Path) -> None:
    """A whole body handed over as one chunk (e.g. an in-memory test client) must not be copied whole."""
    rng = random.Random(7)
    payloads = [rng.randbytes(12 * 1024 * 1024) + b"\r\n", b"", rng.randbytes(3 * 1024 * 1024 + 5)]
    body = await encode([("application/dicom", [p]) for p in payloads])
    tracemalloc.start()
    try:
        sizes = []
        async with aclosing(
            read_multipart(
                pieces([body]), BOUNDARY, spool=SpoolFiles(tmp_path), max_part_size=LIMIT * 2, default_type=None
            )
        ) as parts:
            async for part in parts:
                sizes.append(part.size)
                assert part.path.read_bytes() == payloads[len(sizes) - 1]
                part.path.unlink()
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                # Reading the part back for the assertion costs its size; the parser adds only a slice.
                assert peak < len(payloads[len(sizes) - 1]) + 4 * 1024 * 1024
    finally:
        tracemalloc.stop()
    assert sizes == [len(p) for p in payloads]
