"""pynetdicom event handlers: parse the request, call a domain service, answer with a DIMSE status.

Handlers run on pynetdicom's association threads and reach the async services on the app's event loop through
:class:`~dicom_emulator.dimse.bridge.LoopBridge` (``asyncio.run_coroutine_threadsafe(...).result()``). Errors are
domain exceptions, turned into statuses in exactly one place, :data:`ERROR_STATUSES` (the DIMSE twin of
``api/errors.py``), in the spirit of pynetdicom's ``attempt``.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pydicom import Dataset, dcmread
from pydicom.uid import UID
from pynetdicom.dimse_primitives import N_CREATE, N_SET
from pynetdicom.events import Event
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # names generated at import time, unseen by mypy
    ModalityWorklistInformationFind,
)

from dicom_emulator.dicom import status as store_codes
from dicom_emulator.dicom import worklist
from dicom_emulator.dicom.mpps import (
    DuplicateInstanceError,
    InvalidAttributeValueError,
    InvalidObjectInstanceError,
    MissingAttributeError,
    MissingAttributeValueError,
    MppsError,
    MppsFinalError,
    NoSuchInstanceError,
)
from dicom_emulator.dimse import qr
from dicom_emulator.dimse.bridge import LoopBridge
from dicom_emulator.errors import (
    BadRequestError,
    ConflictError,
    EmulatorError,
    InstanceAlreadyExistsError,
    NotFoundError,
    ServiceUnavailableError,
)
from dicom_emulator.services.records import InstanceRecord
from dicom_emulator.services.store import StoreRequest
from dicom_emulator.services.store_outcome import StoreOutcome
from dicom_emulator.services.workitems import WorkitemFailure
from dicom_emulator.spool_files import SpoolFiles

if TYPE_CHECKING:  # pragma: no cover
    from dicom_emulator.runtime import Runtime

logger = logging.getLogger(__name__)

# PS3.7 C.4.1.1.3 / C.4.2.1.5 / C.4.3.1.4: Pending, Cancel; PS3.7 C.1: Success.
SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
# Error Comment (0000,0902) is LO: at most 64 characters.
_COMMENT_LENGTH = 64


class Service(enum.Enum):
    """The DIMSE services answered here; ``column`` is their column in :data:`ERROR_STATUSES`."""

    C_STORE = "C-STORE"
    C_FIND = "C-FIND"
    C_GET = "C-GET"
    N_CREATE = "N-CREATE"
    N_SET = "N-SET"

    @property
    def column(self) -> int:
        return _COLUMNS[self]


_COLUMNS = {Service.C_STORE: 1, Service.C_FIND: 2, Service.C_GET: 3, Service.N_CREATE: 4, Service.N_SET: 4}


# The one table from domain exceptions to DIMSE statuses, most specific first; ``None`` = use a later row.
#   C-STORE: PS3.4 B.2.3 (A7xx out of resources, A9xx data set does not match SOP class, Cxxx cannot understand;
#            C211 is pynetdicom's "unexpected error" in that range).
#   C-FIND:  PS3.4 C.4.1.1.4 (A700 out of resources, A900 identifier does not match SOP class, Cxxx unable to
#            process; pynetdicom uses C311).
#   C-GET:   PS3.4 C.4.3.1.4 (A701/A702 out of resources, A900, Cxxx; pynetdicom uses C411).
#   N-CREATE/N-SET of MPPS: PS3.4 F.7.2.1.2 / F.7.2.2.2 and PS3.7 C.4.5 / C.4.6 (0106 invalid attribute value,
#            0110 processing failure, 0111 duplicate SOP instance, 0112 no such object instance, 0117 invalid object
#            instance, 0120 missing attribute, 0121 missing attribute value, 0213 resource limitation).
ERROR_STATUSES: tuple[tuple[type[BaseException], int | None, int | None, int | None, int | None], ...] = (
    # exception                      C-STORE  C-FIND  C-GET   N-CREATE/N-SET
    (MissingAttributeError,          None,    None,   None,   0x0120),
    (MissingAttributeValueError,     None,    None,   None,   0x0121),
    (InvalidAttributeValueError,     None,    None,   None,   0x0106),
    (InvalidObjectInstanceError,     None,    None,   None,   0x0117),
    (DuplicateInstanceError,         None,    None,   None,   0x0111),
    (NoSuchInstanceError,            None,    None,   None,   0x0112),
    (MppsFinalError,                 None,    None,   None,   0x0110),
    (WorkitemFailure,                None,    None,   None,   0x0110),  # the workitem refused the transition
    (InstanceAlreadyExistsError,     SUCCESS, None,   None,   None),    # peers retry: a duplicate is stored
    (BadRequestError,                0xA900,  0xA900, 0xA900, 0x0106),
    (NotFoundError,                  None,    None,   None,   0x0112),
    (ConflictError,                  None,    None,   None,   0x0110),
    (ServiceUnavailableError,        0xA700,  0xA700, 0xA702, 0x0213),
    (TimeoutError,                   0xA700,  0xA700, 0xA702, 0x0213),  # a service call outlived the timeout
    (BaseException,                  0xC211,  0xC311, 0xC411, 0x0110),
)  # fmt: skip

# C-STORE results (StoreOutcome, shared with STOW) to statuses: failure reason → status.
STORE_FAILURE_STATUSES: dict[int, int] = {
    store_codes.VALIDATION_FAILURE: 0xA900,  # the instance failed validation (STOW 43264)
    store_codes.MISMATCH_STUDY_INSTANCE_UID: 0xA900,
    store_codes.SOP_INSTANCE_ALREADY_EXISTS: SUCCESS,  # already stored: success, no second copy (STOW 45070)
    store_codes.PENDING_SOP_INSTANCE: 0xA700,
    store_codes.PROCESSING_FAILURE: 0xA700,  # storage error: out of resources, the peer may retry (STOW 272)
}
# Stored with a warning (STOW v2's WarningReason): 0xB006 "Elements discarded" (PS3.4 B.2.3), since attributes
# that failed validation were left out of the index and metadata. 45063 (Azure's implicit-VR warning) is not a
# warning over DIMSE, where Implicit VR Little Endian is the default transfer syntax.
STORE_WARNING_STATUSES: dict[int, int] = {
    store_codes.DATASET_HAS_VALIDATION_WARNINGS: 0xB006,
    store_codes.DATASET_DOES_NOT_MATCH_SOP_CLASS: SUCCESS,
}


def status_code(exc: BaseException, service: Service) -> int:
    """The DIMSE status of ``exc`` for ``service``: the first row of :data:`ERROR_STATUSES` that applies."""
    for row in ERROR_STATUSES:
        code = cast("int | None", row[service.column])  # columns 1-4 are the status columns
        if code is not None and isinstance(exc, row[0]):
            return code
    return 0xC000  # pragma: no cover - the BaseException row always applies


def failure(exc: BaseException, service: Service) -> Dataset | int:
    """A status dataset for ``exc``: Status and Error Comment, plus the Attribute Identifier List of an MPPS
    N-SET error (PS3.7 10.1.3.1.9; an N-CREATE response has no such field: the comment names the attributes)."""
    code = status_code(exc, service)
    if code == SUCCESS:
        return SUCCESS
    if isinstance(exc, EmulatorError):
        logger.info("DIMSE %s failed with 0x%04X: %s", service.value, code, exc.message)
        comment = exc.message
        if isinstance(exc, WorkitemFailure) and exc.ups_status:
            comment = f"Workitem {exc.ups_status}: {comment}"  # the UPS status first: the comment is short
    else:
        logger.error("DIMSE %s failed with 0x%04X", service.value, code, exc_info=exc)
        comment = "Internal error" if not isinstance(exc, TimeoutError) else "The emulator did not answer in time"
    result = Dataset()
    result.Status = code
    result.ErrorComment = comment[:_COMMENT_LENGTH]
    if service is Service.N_SET and isinstance(exc, MppsError) and exc.tags:
        result.AttributeIdentifierList = list(exc.tags)
    return result


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What every handler needs; bound as the extra argument of each event handler."""

    runtime: Runtime
    bridge: LoopBridge
    ae_title: str


# --- Verification -----------------------------------------------------------------------------------------------


def handle_echo(event: Event, ctx: HandlerContext) -> int:
    """C-ECHO (PS3.4 A.4): always success."""
    return SUCCESS


# --- Storage ----------------------------------------------------------------------------------------------------


def _spool(event: Event, spool: SpoolFiles) -> Path:
    """The received data set as a Part 10 file (file meta + the bytes as sent, not re-encoded) in the spool.

    The gateway has pynetdicom write each received data set to a file as its P-DATA arrive
    (``STORE_RECV_CHUNKED_DATASET``), so a C-STORE is never held in memory, like a STOW part. That file is a
    spool file already (association_io.SpooledTemporaryFile); one elsewhere (pynetdicom configured by
    someone else) is renamed into the spool, or copied from another filesystem. The store consumes it, and
    pynetdicom's own best-effort unlink afterwards finds nothing.
    """
    try:
        received = event.dataset_path
    except ValueError:  # chunked receive is off (pynetdicom configured elsewhere): the data set is in memory
        path, fd = spool.new_file("dimse-", ".dcm")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(event.encoded_dataset(include_meta=True))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path
    if spool.holds(received):
        return received  # written into the spool already (association_io.SpooledTemporaryFile)
    # A name, not a file: the rename makes the entry, with no second inode (the spool directory is this
    # process's own, so a counter name is free).
    path = spool.new_name("dimse-", ".dcm")
    try:
        try:
            os.replace(received, path)
        except OSError:
            shutil.copyfile(received, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def store_status(outcome: StoreOutcome) -> Dataset | int:
    """The C-STORE status of a store result (the same StoreOutcome STOW renders)."""
    if outcome.failure_code is not None:
        code = STORE_FAILURE_STATUSES.get(outcome.failure_code, 0xC211)
        if code == SUCCESS:
            logger.info("C-STORE of %s: already stored, answered success", outcome.sop_uid)
            return SUCCESS
        result = Dataset()
        result.Status = code
        comment = "; ".join(outcome.comments) or f"Failure reason {outcome.failure_code}"
        result.ErrorComment = comment[:_COMMENT_LENGTH]
        logger.info("C-STORE of %s failed with 0x%04X: %s", outcome.sop_uid, code, comment)
        return result
    if outcome.warning_reason is not None:
        return STORE_WARNING_STATUSES.get(outcome.warning_reason, SUCCESS)
    return SUCCESS


def handle_store(event: Event, ctx: HandlerContext) -> Dataset | int:
    """C-STORE (PS3.4 B.2): the same StoreService as STOW v2 (validation, index, change feed)."""
    try:
        path = _spool(event, ctx.runtime.spool_files)
        store = ctx.runtime.store
        if store.stores_blocking:
            # Stored in this association thread: no hop through the event loop (services/store.py).
            outcome = store.store_blocking(path, StoreRequest(api_major=2), ctx.bridge.loop)
        else:
            outcome = ctx.bridge.run(store.store(path, StoreRequest(api_major=2)))
    except Exception as exc:
        return failure(exc, Service.C_STORE)
    return store_status(outcome)


# --- Query ------------------------------------------------------------------------------------------------------

FindResult = tuple[Dataset | int, Dataset | None]


def handle_find(event: Event, ctx: HandlerContext) -> Iterator[FindResult]:
    """C-FIND: Modality Worklist (PS3.4 K) or Study Root Query (PS3.4 C)."""
    try:
        # A missing Affected SOP Class UID (None) raises TypeError here, answered below as a failure status.
        if UID(event.request.AffectedSOPClassUID) == ModalityWorklistInformationFind:  # type: ignore[arg-type]
            yield from _find_worklist(event, ctx)
        else:
            yield from _find_studies(event, ctx)
    except Exception as exc:
        yield failure(exc, Service.C_FIND), None


def _find_studies(event: Event, ctx: HandlerContext) -> Iterator[FindResult]:
    identifier = event.identifier
    query = qr.parse_find(identifier)
    offset = 0
    while True:
        page = ctx.bridge.run(qr.find_page(ctx.runtime.search, query, offset))
        for hit in page:
            if event.is_cancelled:  # PS3.4 C.4.1.3.1: C-CANCEL
                yield CANCEL, None
                return
            answer = qr.answer(query, hit, ctx.ae_title)
            if answer is not None:
                yield PENDING, answer
        if len(page) < qr.PAGE_SIZE:
            return
        offset += qr.PAGE_SIZE


def _find_worklist(event: Event, ctx: HandlerContext) -> Iterator[FindResult]:
    identifier = event.identifier
    query = worklist.parse_query(identifier)
    # PatientID and PatientName sit at the top level of both a worklist item and a workitem: the workitem index
    # pre-filters on them; every key is then matched on the worklist item itself.
    records = ctx.bridge.run(
        ctx.runtime.workitems.find_scheduled(
            patient_id=worklist.identifier_text(identifier, "PatientID"),
            patient_name=worklist.identifier_text(identifier, "PatientName"),
        )
    )
    for record in records:
        if event.is_cancelled:
            yield CANCEL, None
            return
        answer = worklist.answer(query, identifier, worklist.worklist_item(record.to_dataset(), record.uid))
        if answer is not None:
            yield PENDING, answer


# --- Retrieve ---------------------------------------------------------------------------------------------------


def _load(record: InstanceRecord, ctx: HandlerContext) -> Dataset:
    """The stored file as a dataset (read on this association thread; memory blobs through the loop)."""
    path = ctx.runtime.retrieve.local_path(record)
    if path is not None:
        return dcmread(path)
    return dcmread(BytesIO(ctx.bridge.run(ctx.runtime.retrieve.read_bytes(record))))


def _sendable(ds: Dataset, event: Event) -> Dataset:
    """Decompress an instance whose compressed transfer syntax the peer did not accept for its SOP class but an
    uncompressed one it did (pynetdicom converts only between uncompressed syntaxes)."""
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if not syntax.is_compressed:
        return ds
    accepted = [
        UID(cx.transfer_syntax[0])
        for cx in event.assoc.accepted_contexts
        if cx.abstract_syntax == ds.get("SOPClassUID") and cx.as_scu
    ]
    if syntax in accepted or not any(not ts.is_compressed for ts in accepted):
        return ds
    ds.decompress()
    return ds


def handle_get(event: Event, ctx: HandlerContext) -> Iterator[int | FindResult]:
    """C-GET (PS3.4 C.4.3): the stored files, sent back as C-STORE sub-operations on the same association."""
    try:
        targets = qr.parse_get(event.identifier)
        records = ctx.bridge.run(qr.instances_for_get(ctx.runtime.retrieve, targets))
    except Exception as exc:
        # pynetdicom wants the number of sub-operations first; the failure then ends the C-GET.
        yield 1
        yield failure(exc, Service.C_GET), None
        return
    yield len(records)
    for record in records:
        if event.is_cancelled:
            yield CANCEL, None
            return
        try:
            ds = _sendable(_load(record, ctx), event)
        except Exception:
            logger.warning("C-GET: cannot send %s", record.sop_uid, exc_info=True)
            ds = qr.placeholder(record)
        yield PENDING, ds


# --- Modality Performed Procedure Step --------------------------------------------------------------------------


def handle_n_create(event: Event, ctx: HandlerContext) -> tuple[Dataset | int, Dataset | None]:
    """MPPS N-CREATE (PS3.4 F.7.2.1)."""
    try:
        requested = cast(N_CREATE, event.request).AffectedSOPInstanceUID
        record = ctx.bridge.run(ctx.runtime.mpps.create(str(requested) if requested else None, event.attribute_list))
    except Exception as exc:
        return failure(exc, Service.N_CREATE), None
    answer = Dataset()
    if not requested:
        # PS3.7 10.1.5.1.4: the SCP returns the UID it assigned (pynetdicom moves it to the response).
        answer.AffectedSOPInstanceUID = record.uid
    return SUCCESS, answer


def handle_n_set(event: Event, ctx: HandlerContext) -> tuple[Dataset | int, Dataset | None]:
    """MPPS N-SET (PS3.4 F.7.2.2)."""
    try:
        uid = str(cast(N_SET, event.request).RequestedSOPInstanceUID)
        ctx.bridge.run(ctx.runtime.mpps.update(uid, event.modification_list))
    except Exception as exc:
        return failure(exc, Service.N_SET), None
    return SUCCESS, Dataset()
