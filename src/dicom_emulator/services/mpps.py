"""Modality Performed Procedure Step (PS3.4 Annex F) driving UPS workitems: the service behind MPPS N-CREATE/N-SET.

N-CREATE (status IN PROGRESS) records the procedure step in the database and claims the workitems its Scheduled
Step Attributes refer to (SCHEDULED → IN PROGRESS); N-SET to COMPLETED or DISCONTINUED completes or cancels them
(UPS state table and checks of ``services.workitems``). A step that refers to no known SCHEDULED workitem is an
*unscheduled* procedure step (PS3.4 F.7.2.1.1): it is recorded and drives nothing. The attribute checks and
mappings are pure DICOM logic in ``dicom.mpps``; the rows are kept by ``storage.mpps_store``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydicom import Dataset
from pydicom.uid import generate_uid

from dicom_emulator.clock import utcnow
from dicom_emulator.dicom import worklist
from dicom_emulator.dicom.identifiers import is_valid_uid
from dicom_emulator.dicom.json_model import dataset_to_json, json_to_dataset
from dicom_emulator.dicom.mpps import (
    COMPLETED,
    DISCONTINUED,
    IN_PROGRESS,
    DuplicateInstanceError,
    InvalidObjectInstanceError,
    MppsFinalError,
    NoSuchInstanceError,
    check_create,
    check_set,
    discontinuation_reason,
    merge_set,
    named_workitems,
    performed_procedure,
)
from dicom_emulator.dicom.ups import ProcedureStepState
from dicom_emulator.errors import ConflictError
from dicom_emulator.services.workitems import WorkitemService
from dicom_emulator.storage.mpps_store import MppsExistsError, MppsRow, SqlMppsStore, StaleMppsError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MppsRecord:
    """A stored MPPS instance."""

    uid: str
    status: str
    workitem_uids: tuple[str, ...]
    dataset: Dataset


def _record(row: MppsRow) -> MppsRecord:
    return MppsRecord(row.sop_uid, row.status, row.workitem_uids, json_to_dataset(json.loads(row.dataset_json)))


class MppsService:
    """MPPS N-CREATE / N-SET over the MPPS table and the workitem service."""

    def __init__(
        self,
        store: SqlMppsStore,
        workitems: WorkitemService,
        *,
        ae_title: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.workitems = workitems
        self.ae_title = ae_title
        self.clock = clock

    async def get(self, uid: str) -> MppsRecord:
        row = await self.store.get(uid)
        if row is None:
            raise NoSuchInstanceError(f"No Performed Procedure Step {uid}")
        return _record(row)

    async def create(self, uid: str | None, dataset: Dataset) -> MppsRecord:
        """N-CREATE: validate, record, claim the referenced workitems (PS3.4 F.7.2.1)."""
        if uid is None or not uid.strip():
            uid = generate_uid()  # PS3.7 10.1.5.1.4: the SCP assigns the UID when the request has none
        if not is_valid_uid(uid):
            raise InvalidObjectInstanceError(f"Invalid SOP Instance UID '{uid}'")
        check_create(dataset)
        if await self.store.get(uid) is not None:
            raise DuplicateInstanceError(f"Performed Procedure Step {uid} already exists")
        referenced = await self.referenced_workitems(dataset)
        try:
            row = await self.store.add(
                sop_uid=uid,
                status=IN_PROGRESS,
                dataset_json=json.dumps(dataset_to_json(dataset)),
                workitem_uids=tuple(referenced),
            )
        except MppsExistsError as exc:
            raise DuplicateInstanceError(f"Performed Procedure Step {uid} already exists") from exc
        try:
            for workitem_uid in referenced:
                await self.workitems.set_state(workitem_uid, ProcedureStepState.IN_PROGRESS)
        except BaseException:
            await self.store.remove(row.key)
            raise
        if not referenced:
            logger.info("MPPS %s refers to no scheduled workitem: recorded as unscheduled", uid)
        return _record(row)

    async def update(self, uid: str, modification: Dataset) -> MppsRecord:
        """N-SET: update attributes; COMPLETED / DISCONTINUED complete / cancel the workitems (PS3.4 F.7.2.2)."""
        row = await self.store.get(uid)
        if row is None:
            raise NoSuchInstanceError(f"No Performed Procedure Step {uid}")
        if row.status != IN_PROGRESS:
            raise MppsFinalError(f"Performed Procedure Step Object may no longer be updated: it is {row.status}")
        status = check_set(modification) or row.status
        merged = merge_set(json_to_dataset(json.loads(row.dataset_json)), modification)
        if status == COMPLETED:
            update, has_outputs = performed_procedure(merged, self.clock(), self.ae_title)
            for workitem_uid in row.workitem_uids:
                await self.workitems.set_state(
                    workitem_uid, ProcedureStepState.COMPLETED, updates=update, check_final_state=has_outputs
                )
        elif status == DISCONTINUED:
            reason = discontinuation_reason(merged)
            for workitem_uid in row.workitem_uids:
                await self.workitems.set_state(workitem_uid, ProcedureStepState.CANCELED, reason=reason)
        try:
            new = await self.store.replace(row, status=status, dataset_json=json.dumps(dataset_to_json(merged)))
        except StaleMppsError as exc:
            raise ConflictError(f"Performed Procedure Step {uid} was updated concurrently") from exc
        return _record(new)

    async def referenced_workitems(self, dataset: Dataset) -> list[str]:
        """The SCHEDULED workitems the Scheduled Step Attributes name: by step ID, else accession + study UID."""
        scheduled = await self.workitems.find_scheduled()
        candidates = [(r.uid, worklist.worklist_item(r.to_dataset(), r.uid)) for r in scheduled]
        return named_workitems(dataset, candidates)
