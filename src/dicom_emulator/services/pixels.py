"""Pixel use cases over the blob store: frames, transcoded instances, rendered images, thumbnails.

Frames come from the byte ranges computed at store time (``Instance.frames_json``, see
``dicom/frames.py``) and are streamed straight from the blob when no transcoding is asked for;
otherwise the header is read (never the whole pixel data) and frames are decoded one at a time.
CPU and file work runs in worker threads. Azure's order of checks is kept (azure-behaviour §3.1, §3.4,
azure-behaviour §3.6): instance existence (404) → file size when transcoding/rendering (406) → frame numbers (404)
→ transcoding or rendering (406).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from dicom_emulator.dicom.frames import FrameLayoutError, FrameLocation, frames_from_json, read_frame, realign_bits
from dicom_emulator.dicom.rendering import RenderingError, Viewport, Window, render_frame
from dicom_emulator.dicom.transcode import (
    OpenedInstance,
    TranscodingError,
    convert_frame,
    decode_frame,
    open_instance,
    transcode_instance,
)
from dicom_emulator.errors import NotAcceptableError, NotFoundError
from dicom_emulator.services.retrieve import RetrieveService
from dicom_emulator.storage.blobs import CHUNK_SIZE, BlobStore
from dicom_emulator.storage.index import InstanceRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")

# DicomCoreResource (archived microsoft/dicom-server): FrameNotFound, RetrieveServiceFileTooBig,
# RenderFileTooLarge, DicomImageConversionFailed (azure-behaviour §3.2, §3.4, §3.6).
FRAME_NOT_FOUND = "The specified frame cannot be found."
SIZE_LIMIT_MESSAGE = (
    "Requested DICOM instance size is above the supported limit of {limit}. The entire instance can be "
    "retrieved with the original transfer syntax by specifying 'transfer-syntax=*' in the Accept header."
)
RENDER_SIZE_LIMIT_MESSAGE = (
    "Requested DICOM instance size is above the supported limit of {limit} for rendering. Please retrieve the "
    "whole file in the original transfer syntax instead of rendering to image media type."
)
RENDER_FAILED = "An error was encountered when attempting to convert the dicom file into an image"
# Emulator-only (thumbnails are not an Azure resource).
NO_IMAGE_MESSAGE = "The specified resource has no instance with pixel data."

ORIGINAL = "*"


@dataclass(frozen=True, slots=True)
class FrameParts:
    """Negotiated frames ready to send: the transfer syntax reported and one byte stream per frame."""

    transfer_syntax: str
    parts: list[AsyncIterator[bytes]]


class ThumbnailCache:
    """A small in-process LRU of rendered thumbnails, bounded in bytes.

    Keys include the instance watermark, so a replaced instance never serves its old thumbnail and a
    deleted one is never looked up (the index answers 404 first).
    """

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._size = 0

    def get(self, key: tuple[object, ...]) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple[object, ...], value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(old)
        self._items[key] = value
        self._size += len(value)
        while self._size > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self._size -= len(evicted)

    def __len__(self) -> int:
        return len(self._items)


class PixelService:
    """Frames, rendered images, thumbnails and transcoding of stored instances."""

    def __init__(
        self,
        retrieve: RetrieveService,
        blobs: BlobStore,
        *,
        spool_dir: Path,
        max_transcode_size: int,
        thumbnails: ThumbnailCache | None = None,
    ) -> None:
        self.retrieve = retrieve
        self.blobs = blobs
        self.spool_dir = spool_dir
        self.max_transcode_size = max_transcode_size
        self.thumbnails = thumbnails if thumbnails is not None else ThumbnailCache()

    # --- blob access ------------------------------------------------------------------------------

    @contextmanager
    def _open_blob(self, record: InstanceRecord, data: bytes | None) -> Iterator[BinaryIO]:
        """The stored file as a seekable binary file (a real file, or memory blob bytes)."""
        if data is not None:
            yield io.BytesIO(data)
            return
        path = self.blobs.local_path(record.blob_key)
        assert path is not None
        with open(path, "rb") as fh:
            yield fh

    async def _in_thread(self, record: InstanceRecord, work: Callable[[BinaryIO], T]) -> T:
        """Run ``work(file)`` in a worker thread over the stored file of ``record``."""
        data = None
        if self.blobs.local_path(record.blob_key) is None:
            data = await self.blobs.read_bytes(record.blob_key)  # memory store: the bytes are in memory anyway

        def run() -> T:
            with self._open_blob(record, data) as fp:
                return work(fp)

        return await asyncio.to_thread(run)

    @staticmethod
    def _stored_locations(record: InstanceRecord) -> list[FrameLocation] | None:
        frames_json = record.frames_json
        if frames_json is None:
            return None
        try:
            return frames_from_json(frames_json)
        except (ValueError, TypeError, json.JSONDecodeError):
            logger.warning("ignoring unreadable frame ranges of %s", record.sop_uid)
            return None

    @staticmethod
    def _open(fp: BinaryIO, record: InstanceRecord, locations: list[FrameLocation] | None) -> OpenedInstance:
        try:
            return open_instance(fp, file_size=record.size, frames=locations)
        except FrameLayoutError as exc:
            # Pixel data whose frames cannot be delimited has no retrievable frame.
            logger.info("frames of %s cannot be located: %s", record.sop_uid, exc)
            raise NotFoundError(FRAME_NOT_FOUND) from exc

    # --- frames (azure-behaviour §3.4) ------------------------------------------------------------------

    async def frames(
        self,
        partition_key: int,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        numbers: list[int],
        transfer_syntax: str,
    ) -> FrameParts:
        """The 1-based ``numbers`` of one instance, in the requested order, in ``transfer_syntax``."""
        record = (await self.retrieve.instances(partition_key, study_uid, series_uid, sop_uid))[0]
        stored_ts = record.transfer_syntax or ""
        transcode = transfer_syntax not in (ORIGINAL, stored_ts)
        reported = transfer_syntax if transfer_syntax != ORIGINAL else stored_ts
        locations = self._stored_locations(record)
        if transcode:
            # Azure's slow path: the whole file is limited to 100 MiB before frames are checked.
            if record.size > self.max_transcode_size:
                raise NotAcceptableError(SIZE_LIMIT_MESSAGE.format(limit=self.max_transcode_size))
            return FrameParts(reported, await self._transcoded_frames(record, locations, numbers, transfer_syntax))
        if locations is None:
            # Ranges unknown (stored before they were computed, or deflated data): locate them now.
            opened = await self._in_thread(record, lambda fp: self._open(fp, record, None))
            self._check_numbers(opened.frames, numbers)
            if opened.inflated is not None:
                # Deflated: the ranges point into the inflated dataset, not into the blob.
                inflated = opened.inflated
                return FrameParts(reported, [_once(read_frame(inflated, opened.frames[n - 1])) for n in numbers])
            locations = opened.frames
        self._check_numbers(locations, numbers)
        return FrameParts(reported, [self._stream_frame(record, locations[n - 1]) for n in numbers])

    @staticmethod
    def _check_numbers(locations: list[FrameLocation], numbers: list[int]) -> None:
        if any(n < 1 or n > len(locations) for n in numbers):
            raise NotFoundError(FRAME_NOT_FOUND)

    async def _stream_frame(self, record: InstanceRecord, location: FrameLocation) -> AsyncIterator[bytes]:
        """The stored bytes of one frame, streamed from the blob segment by segment."""
        if location.bit_count is not None:
            (offset, length), *_ = location.segments
            data = await self.blobs.read_bytes(record.blob_key, offset, length)
            yield realign_bits(data, location.bit_offset, location.bit_count)
            return
        for offset, length in location.segments:
            async for chunk in self.blobs.read(record.blob_key, offset, length):
                yield chunk

    async def _transcoded_frames(
        self, record: InstanceRecord, locations: list[FrameLocation] | None, numbers: list[int], target: str
    ) -> list[AsyncIterator[bytes]]:
        """Frames converted to ``target``. The first is converted before anything is sent, so that a
        codec failure is still a clean 406; the others are converted one at a time while streaming."""

        def first(fp: BinaryIO) -> tuple[OpenedInstance, bytes]:
            opened = self._open(fp, record, locations)
            self._check_numbers(opened.frames, numbers)
            data = read_frame(opened.inflated or fp, opened.frames[numbers[0] - 1])
            return opened, convert_frame(data, opened.source(), target)

        opened, first_bytes = await self._in_thread(record, first)

        async def one(number: int) -> AsyncIterator[bytes]:
            def work(fp: BinaryIO) -> bytes:
                data = read_frame(opened.inflated or fp, opened.frames[number - 1])
                return convert_frame(data, opened.source(), target)

            yield await self._in_thread(record, work)

        return [_once(first_bytes), *(one(n) for n in numbers[1:])]

    # --- whole-instance transcoding (azure-behaviour §3.2) ----------------------------------------------

    async def transcoded_instance(self, record: InstanceRecord, target: str) -> AsyncIterator[bytes]:
        """The Part 10 file of ``record`` in ``target``; written to a spool file first (bounded memory),
        so a failure is raised here (406) before any byte is sent."""
        if record.size > self.max_transcode_size:
            raise NotAcceptableError(SIZE_LIMIT_MESSAGE.format(limit=self.max_transcode_size))
        locations = self._stored_locations(record)

        def work(fp: BinaryIO) -> BinaryIO:
            fd, name = tempfile.mkstemp(prefix="transcode-", suffix=".dcm", dir=self.spool_dir)
            out = os.fdopen(fd, "w+b")
            # Unlinked at once: the open handle keeps the data, nothing is left behind on any path.
            Path(name).unlink(missing_ok=True)
            try:
                transcode_instance(fp, target, out, file_size=record.size, frames=locations)
                out.seek(0)
            except BaseException:
                out.close()
                raise
            return out

        out = await self._in_thread(record, work)
        return self._stream_spooled(out)

    @staticmethod
    async def _stream_spooled(out: BinaryIO) -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(out.read, CHUNK_SIZE):
                yield chunk
        finally:
            out.close()

    # --- rendered (azure-behaviour §3.6) and thumbnails -------------------------------------------------

    async def rendered(
        self,
        partition_key: int,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frame_number: int,
        media_type: str,
        *,
        quality: int = 100,
        window: Window | None = None,
    ) -> bytes:
        """Frame ``frame_number`` (1-based) of one instance as ``image/jpeg`` or ``image/png``."""
        record = (await self.retrieve.instances(partition_key, study_uid, series_uid, sop_uid))[0]
        return await self._render(record, frame_number, media_type, quality=quality, window=window)

    async def _render(
        self,
        record: InstanceRecord,
        frame_number: int,
        media_type: str,
        *,
        quality: int,
        window: Window | None = None,
        viewport: Viewport | None = None,
    ) -> bytes:
        if record.size > self.max_transcode_size:
            raise NotAcceptableError(RENDER_SIZE_LIMIT_MESSAGE.format(limit=self.max_transcode_size))
        locations = self._stored_locations(record)

        def work(fp: BinaryIO) -> bytes:
            opened = self._open(fp, record, locations)
            self._check_numbers(opened.frames, [frame_number])
            data = read_frame(opened.inflated or fp, opened.frames[frame_number - 1])
            try:
                array, meta = decode_frame(data, opened.source())
                header_photometric = opened.header.get("PhotometricInterpretation")
                photometric = str(meta.get("photometric_interpretation") or header_photometric)
                return render_frame(
                    array,
                    opened.header,
                    photometric,
                    media_type,
                    quality=quality,
                    frame_index=frame_number - 1,
                    window=window,
                    viewport=viewport,
                )
            except (TranscodingError, RenderingError) as exc:
                logger.info("rendering %s failed: %s", record.sop_uid, exc)
                raise NotAcceptableError(RENDER_FAILED) from exc
            except Exception as exc:  # Azure maps any rendering failure to DicomImageException (406)
                logger.warning("rendering %s failed", record.sop_uid, exc_info=True)
                raise NotAcceptableError(RENDER_FAILED) from exc

        return await self._in_thread(record, work)

    async def thumbnail(
        self,
        partition_key: int,
        study_uid: str,
        series_uid: str | None,
        sop_uid: str | None,
        media_type: str,
        *,
        viewport: Viewport,
        quality: int,
        window: Window | None = None,
    ) -> bytes:
        """Emulator-only DICOMweb thumbnail (PS3.18 §9.5.1): an instance, or a representative instance of a
        series or study (the lowest Instance Number among instances with frames), frame 1, in ``viewport``."""
        records = await self.retrieve.instances(partition_key, study_uid, series_uid, sop_uid)
        record = records[0] if sop_uid is not None else self._representative(records)
        key = (record.watermark, media_type, viewport, quality, window)
        cached = self.thumbnails.get(key)
        if cached is not None:
            return cached
        image = await self._render(record, 1, media_type, quality=quality, window=window, viewport=viewport)
        self.thumbnails.put(key, image)
        return image

    @staticmethod
    def _representative(records: list[InstanceRecord]) -> InstanceRecord:
        candidates: list[tuple[float, int, InstanceRecord]] = []
        for record in records:
            if record.frames_json == "[]" or record.number_of_frames is None:
                continue  # known to have no pixel data
            number = float("inf")
            try:
                value = json.loads(record.metadata_json).get("00200013", {}).get("Value", [None])[0]
                number = float(value) if value is not None else number
            except (ValueError, TypeError, AttributeError):
                pass
            candidates.append((number, record.watermark, record))
        if not candidates:
            raise NotFoundError(NO_IMAGE_MESSAGE)
        return min(candidates, key=lambda item: (item[0], item[1]))[2]


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
