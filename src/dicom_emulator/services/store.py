"""Store one instance: parse, validate, write the blob, then index it with its feed entry.

Shared by STOW-RS and (later) DIMSE C-STORE, so both give the same validation, index and change feed.
The order follows DESIGN.md invariant 1: the spooled part is parsed and validated first; the blob is
moved into place under a fresh key; then one transaction makes the instance visible. A failure
after the blob write deletes the blob, so nothing is ever half-stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydicom import Dataset

from dicom_emulator.dicom import status
from dicom_emulator.dicom.frames import frames_json_for
from dicom_emulator.dicom.identifiers import is_valid_uid
from dicom_emulator.dicom.indexing import number_of_frames, series_index_values, study_index_values
from dicom_emulator.dicom.json_model import dataset_to_json
from dicom_emulator.dicom.reading import InvalidDicomInstanceError, ParsedInstance, read_instance
from dicom_emulator.dicom.tags import CORE_QUERY_TAGS
from dicom_emulator.dicom.validation import validate_for_store
from dicom_emulator.errors import InstanceAlreadyExistsError
from dicom_emulator.services.store_outcome import StoreOutcome
from dicom_emulator.storage.blobs import BlobStore
from dicom_emulator.storage.index import NewInstance, SqlIndex
from dicom_emulator.storage.tags_store import SqlTagStore

logger = logging.getLogger(__name__)

_CORE_TAGS = frozenset(t.tag for t in CORE_QUERY_TAGS)


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """Per-request options of a store (STOW route, PUT upsert, C-STORE)."""

    api_major: int = 2
    route_study_uid: str | None = None
    replace: bool = False
    expires_at: datetime | None = None
    partition_key: int = 1
    # Extended query tags in force, loaded once per request; None = load them for this instance.
    extended_tags: frozenset[int] | None = None


@dataclass(slots=True)
class _Prepared:
    parsed: ParsedInstance
    outcome: StoreOutcome
    metadata_json: str = ""
    metadata: dict[str, Any] | None = None
    frames_json: str | None = None


def _text(ds: Dataset, keyword: str) -> str | None:
    elem = ds.data_element(keyword) if keyword in ds else None
    if elem is None or elem.value in (None, ""):
        return None
    return str(elem.value).rstrip(" \0")


def _zero_preamble(path: Path) -> None:
    """Azure replaces the 128-byte preamble of stored files with zeros (reference §1.4).

    A file sent without preamble but with its file meta group (0002) gets one, as Azure's writer
    always produces a Part 10 file; clients such as pydicom's dcmread expect it on retrieve.
    """
    with open(path, "r+b") as fh:
        head = fh.read(132)
        if len(head) == 132 and head[128:132] == b"DICM":
            fh.seek(0)
            fh.write(b"\0" * 128)
            return
    if head[:2] == b"\x02\x00":
        tmp = path.with_suffix(".preamble")
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(b"\0" * 128 + b"DICM")
            shutil.copyfileobj(src, dst, 1024 * 1024)
        os.replace(tmp, path)


def _prepare(path: Path, request: StoreRequest, extended_tags: Collection[int]) -> _Prepared:
    """CPU-bound part, run in a worker thread: parse the header, validate, build metadata JSON."""
    # First, so every offset read below (pixel data, frames) is an offset in the stored file.
    _zero_preamble(path)
    parsed = read_instance(path)
    ds = parsed.dataset
    outcome = StoreOutcome(
        sop_class_uid=_text(ds, "SOPClassUID"),
        sop_uid=_text(ds, "SOPInstanceUID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
    )
    result = validate_for_store(
        ds,
        api_major=request.api_major,
        is_implicit_vr=parsed.is_implicit_vr,
        route_study_uid=request.route_study_uid,
        indexed_tags=_CORE_TAGS | frozenset(extended_tags),
    )
    outcome.multiple_values_warning = result.multiple_values_in_indexed_tag
    if result.failed:
        outcome.failure_code = result.failure_code or status.VALIDATION_FAILURE
        outcome.comments = list(result.failure_comments)
        outcome.validation_failure = True
        return _Prepared(parsed, outcome)
    # Validation should have caught these; never build a blob path from an unchecked UID.
    if not all(is_valid_uid(u) for u in (outcome.study_uid, outcome.series_uid, outcome.sop_uid)):
        outcome.failure_code = status.VALIDATION_FAILURE
        return _Prepared(parsed, outcome)
    outcome.warning_reason = result.warning_reason
    outcome.comments = list(result.warning_comments)
    exclude = result.invalid_paths if request.api_major >= 2 else ()
    metadata = dataset_to_json(ds, exclude=exclude)
    # Frame byte ranges, so frame retrieval never parses the file (DESIGN.md invariant 4, reference §3.4).
    with open(path, "rb") as fh:
        frames_json = frames_json_for(fh, parsed)
    return _Prepared(parsed, outcome, json.dumps(metadata, separators=(",", ":")), metadata, frames_json)


class StoreService:
    """Stores spooled instance files into the blob store and the index."""

    def __init__(self, index: SqlIndex, blobs: BlobStore, tags: SqlTagStore) -> None:
        self.index = index
        self.blobs = blobs
        self.tags = tags

    async def extended_tags(self) -> frozenset[int]:
        """The extended query tags new instances are validated against (v1 fails invalid values).

        A multi-instance request loads them once (StoreRequest.extended_tags); indexing reads them
        again inside each store transaction, so a tag added meanwhile is never missed by the index.
        """
        return frozenset(t.definition.tag for t in await self.tags.active())

    async def store(self, path: Path, request: StoreRequest) -> StoreOutcome:
        """Store the DICOM file at ``path`` (consumed: moved into the blob store or deleted)."""
        try:
            try:
                # Extended query tags in force now: v1 fails instances whose values are invalid (§7.5).
                extended = request.extended_tags
                if extended is None:
                    extended = await self.extended_tags()
                prepared = await asyncio.to_thread(_prepare, path, request, extended)
            except InvalidDicomInstanceError as exc:
                logger.info("rejected unreadable part: %s", exc.message)
                # Unreadable part: 43264 with no UIDs and no FailedAttributesSequence (§2.3 step 1).
                return StoreOutcome(failure_code=status.VALIDATION_FAILURE)
            except Exception:
                # Bad input must never become a 5xx: a part pydicom chokes on is an unreadable part.
                logger.warning("rejected a part that failed to parse", exc_info=True)
                return StoreOutcome(failure_code=status.VALIDATION_FAILURE)
            outcome = prepared.outcome
            if not outcome.stored:
                return outcome
            return await self._persist(path, prepared, request)
        finally:
            path.unlink(missing_ok=True)

    async def _persist(self, path: Path, prepared: _Prepared, request: StoreRequest) -> StoreOutcome:
        outcome = prepared.outcome
        ds = prepared.parsed.dataset
        assert outcome.study_uid and outcome.series_uid and outcome.sop_uid
        # A fresh suffix per version: an upsert never overwrites the file the current version uses.
        suffix = uuid.uuid4().hex[:12]
        blob_key = f"{request.partition_key}/{outcome.study_uid}/{outcome.series_uid}/{outcome.sop_uid}.{suffix}.dcm"
        new = NewInstance(
            partition_key=request.partition_key,
            study_uid=outcome.study_uid,
            series_uid=outcome.series_uid,
            sop_uid=outcome.sop_uid,
            sop_class_uid=outcome.sop_class_uid,
            transfer_syntax=prepared.parsed.transfer_syntax,
            blob_key=blob_key,
            size=prepared.parsed.file_size,
            number_of_frames=number_of_frames(ds),
            metadata_json=prepared.metadata_json,
            study_values=study_index_values(ds),
            series_values=series_index_values(ds),
            expires_at=request.expires_at,
            metadata=prepared.metadata,
            frames_json=prepared.frames_json,
        )
        await self.blobs.put_file(blob_key, path)
        try:
            _, old_blob = await self.index.add_instance(new, replace=request.replace)
        except InstanceAlreadyExistsError:
            await self.blobs.delete(blob_key)
            outcome.failure_code = status.SOP_INSTANCE_ALREADY_EXISTS
            outcome.warning_reason = None
            outcome.comments = []
            return outcome
        except Exception:
            # Any other storage error fails this instance with 272 (reference §2.3 step 7).
            logger.exception("storing %s failed", outcome.sop_uid)
            await self.blobs.delete(blob_key)
            outcome.failure_code = status.PROCESSING_FAILURE
            outcome.warning_reason = None
            outcome.comments = []
            return outcome
        except BaseException:
            await self.blobs.delete(blob_key)
            raise
        if old_blob is not None:
            await self.blobs.delete(old_blob)
        return outcome
