"""UPS-RS workitems (azure-behaviour §9; PS3.4 Annex CC): the one domain core for the HTTP routes and the DIMSE gateway.

HTTP routes call :meth:`WorkitemService.create`, :meth:`~WorkitemService.get`, :meth:`~WorkitemService.update`,
:meth:`~WorkitemService.change_state`, :meth:`~WorkitemService.cancel` and :meth:`~WorkitemService.search`, which
behave exactly like Azure's ``WorkitemService`` (order of checks, status codes, messages). The DIMSE gateway uses
:meth:`~WorkitemService.find_scheduled` (Modality Worklist C-FIND) and :meth:`~WorkitemService.set_state`
(MPPS N-CREATE / N-SET driving the workitem), which run the same state table and requirement checks server-side.

Failures raise a :class:`WorkitemFailure` subclass (also a ``BadRequestError``/``NotFoundError``/``ConflictError``,
so ``api.errors.status_for`` gives the HTTP status). Azure answers these with a JSON string body (and sometimes a
``Warning`` header, decided by the route); ``ups_status`` carries the PS3.4 / Azure failure code (``"C301"``…) for
the DIMSE side. Other errors (invalid UIDs, malformed DICOM JSON, query syntax, the create UID mismatch) are
ordinary domain errors that Azure answers with a plain-text body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicom_emulator.clock import utcnow
from dicom_emulator.dicom.json_model import dataset_to_json, json_to_dataset
from dicom_emulator.dicom.query import Condition, Wildcard, dimse_datetime_range, normalize_string, parse_value
from dicom_emulator.dicom.tags import tag_text
from dicom_emulator.dicom.ups import requirements
from dicom_emulator.dicom.ups.attributes import (
    PROCEDURE_STEP_STATE,
    REASON_FOR_CANCELLATION,
    SOP_INSTANCE_UID,
    TRANSACTION_UID,
    get_text,
)
from dicom_emulator.dicom.ups.edits import (
    apply_cancel_request,
    merge_update,
    prepare_create,
    prepare_update,
    set_element,
    with_state,
)
from dicom_emulator.dicom.ups.messages import (
    MSG_ALREADY_CANCELED,
    MSG_ALREADY_COMPLETED,
    MSG_ALREADY_EXISTS,
    MSG_BEING_UPDATED,
    MSG_CANCEL_SUCCESS,
    MSG_FINAL_STATE,
    MSG_INVALID_TRANSACTION_UID,
    MSG_INVALID_TRANSITION,
    MSG_NOT_CLAIMED,
    MSG_NOT_FOUND,
    MSG_UNEXPECTED_VALUE,
    MSG_UPDATE_CONFLICT,
)
from dicom_emulator.dicom.ups.search import (
    SEARCH_KEYS_BY_COLUMN,
    SearchKey,
    WorkitemQuery,
    index_values,
    parse_workitem_query,
    search_result,
)
from dicom_emulator.dicom.ups.states import (
    CHANGE_STATE_TARGETS,
    ProcedureStepState,
    UpsAction,
    action_for_target,
    transaction_matches,
    transition,
)
from dicom_emulator.errors import BadRequestError, ConflictError, EmulatorError, NotFoundError
from dicom_emulator.storage.models import DEFAULT_PARTITION_KEY
from dicom_emulator.storage.workitem_store import SqlWorkitemStore, StaleWorkitemError, WorkitemExistsError, WorkitemRow

_TRANSACTION_UID_KEY = f"{TRANSACTION_UID:08X}"


class WorkitemFailure(EmulatorError):
    """A workitem request Azure rejects from inside its workitem service: JSON string body on the wire.

    ``ups_status`` is the status code Azure records for it (PS3.4 Annex CC codes such as ``C301``, or Azure's own
    failure reason codes), for the DIMSE gateway to map to DIMSE statuses.
    """

    def __init__(self, message: str, ups_status: str | None = None) -> None:
        super().__init__(message)
        self.ups_status = ups_status


class WorkitemBadRequestError(WorkitemFailure, BadRequestError):
    """400: validation, a refused transition, a wrong Transaction UID."""


class WorkitemNotFoundError(WorkitemFailure, NotFoundError):
    """404: no workitem with that UID."""


class WorkitemConflictError(WorkitemFailure, ConflictError):
    """409: already exists, already canceled, or a concurrent update won."""


@dataclass(frozen=True, slots=True)
class WorkitemRecord:
    """A stored workitem. ``metadata`` is its DICOM JSON as stored (it includes the Transaction UID element)."""

    uid: str
    state: ProcedureStepState
    transaction_uid: str | None
    metadata: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The DICOM JSON a client sees: the Transaction UID (0008,1195) is never returned (azure-behaviour §9.1)."""
        return {k: v for k, v in self.metadata.items() if k != _TRANSACTION_UID_KEY}

    def to_dataset(self) -> Dataset:
        """The workitem as a pydicom dataset, without the Transaction UID (e.g. for a C-FIND response)."""
        return json_to_dataset(self.to_json())


@dataclass(frozen=True, slots=True)
class StateChange:
    """The result of a Change State: the workitem after it, and Azure's warning when nothing changed.

    ``warning`` is set for the B304/B306 cells (already CANCELED/COMPLETED): the answer is 200 with the message
    and a ``Warning`` header, and nothing is stored.
    """

    record: WorkitemRecord
    warning: str | None = None
    ups_status: str | None = None


@dataclass(frozen=True, slots=True)
class CancelResult:
    record: WorkitemRecord
    message: str


def _record(row: WorkitemRow) -> WorkitemRecord:
    return WorkitemRecord(
        uid=row.sop_uid,
        state=ProcedureStepState.parse(row.state),
        transaction_uid=row.transaction_uid,
        metadata=json.loads(row.dataset_json),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


class WorkitemService:
    """UPS-RS over the workitem store. ``clock`` gives the UTC time written into DT attributes."""

    def __init__(
        self,
        store: SqlWorkitemStore,
        *,
        partition_key: int = DEFAULT_PARTITION_KEY,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.partition_key = partition_key
        self.clock = clock

    def in_partition(self, partition_key: int) -> WorkitemService:
        """The same service working in another data partition (azure-behaviour §14); cheap, built per request."""
        if partition_key == self.partition_key:
            return self
        return WorkitemService(self.store, partition_key=partition_key, clock=self.clock)

    # --- HTTP: Azure's UPS-RS ----------------------------------------------------------------------------------

    async def create(self, dataset: Dataset, workitem_uid: str | None = None) -> WorkitemRecord:
        """Create Workitem (PS3.18 11.4, N-CREATE): azure-behaviour §9.2.

        ``workitem_uid`` is the (validated) UID from the query string, or ``None``. The service sets SOP Class UID,
        SOP Instance UID, the modification date-time, Worklist Label and state SCHEDULED, then checks the N-CREATE
        requirements. Raises ``BadRequestError`` (UID mismatch, plain text), :class:`WorkitemBadRequestError`
        (requirements) or :class:`WorkitemConflictError` (UID taken).
        """
        prepared = prepare_create(dataset, workitem_uid, self.clock())
        message = requirements.check_create(prepared)
        if message is not None:
            raise WorkitemBadRequestError(message)
        uid = get_text(prepared, SOP_INSTANCE_UID) or ""
        try:
            row = await self.store.add(
                partition_key=self.partition_key,
                sop_uid=uid,
                state=ProcedureStepState.SCHEDULED.value,
                dataset_json=json.dumps(dataset_to_json(prepared)),
                values=index_values(prepared),
            )
        except WorkitemExistsError as exc:
            # Azure's failure reason 45070 (SopInstanceAlreadyExists); PS3.4 N-CREATE 0111 Duplicate SOP Instance.
            raise WorkitemConflictError(MSG_ALREADY_EXISTS, "0111") from exc
        return _record(row)

    async def get(self, uid: str) -> WorkitemRecord:
        """Retrieve Workitem (N-GET): the stored workitem, or :class:`WorkitemNotFoundError`."""
        return _record(await self._row(uid))

    async def update(self, uid: str, dataset: Dataset, transaction_uid: str | None) -> WorkitemRecord:
        """Update Workitem (N-SET): azure-behaviour §9.5, Azure's ``ProcessUpdateAsync``.

        A SCHEDULED workitem is updated without a Transaction UID; an IN PROGRESS one only with the one that claimed
        it. The request must follow the N-SET requirements (no SOP UIDs, patient attributes or state). Attributes
        are merged into the stored dataset and the search columns recomputed.
        """
        row = await self.store.get(self.partition_key, uid)
        if row is None:
            # Azure's update response builder has no not-found mapping: 400 with this message (azure-behaviour §9.5).
            raise WorkitemBadRequestError(MSG_NOT_CLAIMED, "C307")
        request = prepare_update(dataset, self.clock())
        state = ProcedureStepState.parse(row.state)
        if state is ProcedureStepState.SCHEDULED and not _blank(transaction_uid):
            raise WorkitemBadRequestError(MSG_INVALID_TRANSACTION_UID, "C301")
        if state is ProcedureStepState.IN_PROGRESS:
            if _blank(transaction_uid):
                raise WorkitemBadRequestError(MSG_NOT_CLAIMED, "C302")
            if transaction_uid != row.transaction_uid:
                raise WorkitemBadRequestError(MSG_NOT_CLAIMED, "C301")
        if state is ProcedureStepState.COMPLETED:
            raise WorkitemBadRequestError(f"{MSG_UPDATE_CONFLICT} {MSG_ALREADY_COMPLETED}", "C306")
        if state is ProcedureStepState.CANCELED:
            # Azure's failure code here (0xC304) is also its "update conflict" code, hence 409 (azure-behaviour §9.5).
            raise WorkitemConflictError(f"{MSG_UPDATE_CONFLICT} {MSG_ALREADY_CANCELED}", "C304")
        message = requirements.check_update(request)
        if message is not None:
            raise WorkitemBadRequestError(message)
        merged = merge_update(self._dataset(row), request)
        try:
            new = await self.store.replace(
                row,
                state=row.state,
                transaction_uid=row.transaction_uid,
                dataset_json=json.dumps(dataset_to_json(merged)),
                values=index_values(merged),
            )
        except StaleWorkitemError as exc:
            raise WorkitemConflictError(MSG_UPDATE_CONFLICT, "C304") from exc
        return _record(new)

    async def change_state(self, uid: str, dataset: Dataset) -> StateChange:
        """Change Workitem State (N-ACTION Change UPS State): azure-behaviour §9.3.

        The request carries Transaction UID and the target (IN PROGRESS, COMPLETED or CANCELED). The transition
        follows :data:`dicom_emulator.dicom.ups.states.TRANSITIONS`; a final target also needs the final-state
        attributes.
        """
        message = requirements.check_change_state_request(dataset)
        if message is not None:
            raise WorkitemBadRequestError(message)
        row = await self._row(uid)
        target = ProcedureStepState.parse(get_text(dataset, PROCEDURE_STEP_STATE))
        transaction_uid = get_text(dataset, TRANSACTION_UID)
        return await self._transition(row, target, transaction_uid, prepare=None, check_final=True)

    async def cancel(self, uid: str, dataset: Dataset) -> CancelResult:
        """Request Cancellation (N-ACTION Request UPS Cancel): azure-behaviour §9.4.

        Only a SCHEDULED workitem is canceled (202); IN PROGRESS and COMPLETED give 400 (C312, C311), an already
        CANCELED one 409. The cancellation date-time, reason and contact are recorded as Azure does.
        """
        row = await self._row(uid)
        current = ProcedureStepState.parse(row.state)
        outcome = transition(UpsAction.REQUEST_CANCEL, current)
        prepared = apply_cancel_request(
            self._dataset(row), dataset, outcome.state or ProcedureStepState.NONE, self.clock()
        )
        if outcome.error:
            # Azure prints the C# enum name here: "… to 'Canceled' state: C312."
            message = MSG_INVALID_TRANSITION.format(ProcedureStepState.CANCELED.enum_name, outcome.code)
            raise WorkitemBadRequestError(message, outcome.code)
        if current is ProcedureStepState.CANCELED:
            raise WorkitemConflictError(MSG_ALREADY_CANCELED, "C304")
        final_message = requirements.check_final_state(prepared)
        if final_message is not None:
            raise WorkitemBadRequestError(final_message)
        new = await self._replace(row, ProcedureStepState.CANCELED, row.transaction_uid, prepared)
        return CancelResult(_record(new), MSG_CANCEL_SUCCESS)

    def parse_search(self, params: Sequence[tuple[str, str]]) -> WorkitemQuery:
        """Validate a search query string (azure-behaviour §9.6); ``QueryValidationError`` with Azure's message."""
        return parse_workitem_query(params)

    async def search(self, query: WorkitemQuery) -> list[dict[str, Any]]:
        """Search Workitems (C-FIND): one page of DICOM JSON results, newest first; ``[]`` when none (204)."""
        rows = await self.store.search(self.partition_key, query.conditions, limit=query.limit, offset=query.offset)
        return [search_result(json.loads(row.dataset_json), query) for row in rows]

    # --- DIMSE gateway ------------------------------------------------------------------------------------------

    async def find_scheduled(
        self,
        *,
        patient_name: str | None = None,
        patient_id: str | None = None,
        accession_number: str | None = None,
        requested_procedure_id: str | None = None,
        study_instance_uid: str | None = None,
        station_name: str | None = None,
        station_class: str | None = None,
        station_location: str | None = None,
        start: str | None = None,
        states: Collection[ProcedureStepState] | None = (ProcedureStepState.SCHEDULED,),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[WorkitemRecord]:
        """Workitems for a Modality Worklist C-FIND (PS3.4 K.6), newest first.

        Every key is optional; ``None``, ``""`` and ``"*"`` mean universal matching (PS3.4 C.2.2.2.3). Values
        follow PS3.4 C.2.2.2 as C-FIND identifiers do:

        - ``patient_name``, ``patient_id``, ``accession_number``, ``requested_procedure_id``, ``station_name``,
          ``station_class``, ``station_location``: single value matching, case-insensitive (PN also
          accent-insensitive), or wild card matching when the value contains ``*`` or ``?`` (C.2.2.2.4).
          ``accession_number`` and ``requested_procedure_id`` match any item of ReferencedRequestSequence
          (0040,A370); the station keys match the Code Value of any item of ScheduledStationName/Class/
          GeographicLocationCodeSequence (0040,4025/4026/4027). A worklist's ScheduledStationAETitle has no UPS
          counterpart: a gateway may map its AE titles to station name codes.
        - ``study_instance_uid``: single UID, or a list separated by ``\\`` (C.2.2.2.2).
        - ``start``: ScheduledProcedureStepStartDateTime (0040,4005) as a DT or DA value or range
          (``"20240101"``, ``"20240101-20240102"``, ``"202401010800-202401011200"``); a worklist's separate
          ScheduledProcedureStepStartDate and Time combine into such a range.
        - ``states``: Procedure Step States to include (default SCHEDULED only; ``None`` = any state).

        Raises ``QueryValidationError`` for a malformed ``start``. Returns full records; build C-FIND responses
        from :meth:`WorkitemRecord.to_dataset`.
        """
        keys = SEARCH_KEYS_BY_COLUMN
        wanted = {
            "patient_name": patient_name,
            "patient_id": patient_id,
            "accession_numbers": accession_number,
            "requested_procedure_ids": requested_procedure_id,
            "study_uid": study_instance_uid,
            "station_name_codes": station_name,
            "station_class_codes": station_class,
            "station_location_codes": station_location,
            "scheduled_start": start,
        }
        conditions: list[tuple[SearchKey, Condition]] = []
        for column, value in wanted.items():
            if value is None or not value.strip() or set(value.strip()) == {"*"}:
                continue
            key = keys[column]
            conditions.append((key, _dimse_condition(key, value.strip())))
        rows = await self.store.search(
            self.partition_key,
            conditions,
            limit=limit,
            offset=offset,
            states=None if states is None else [ProcedureStepState(s).value for s in states],
        )
        return [_record(row) for row in rows]

    async def set_state(
        self,
        uid: str,
        target: ProcedureStepState | str,
        transaction_uid: str | None = None,
        *,
        updates: Dataset | None = None,
        reason: str | None = None,
        check_final_state: bool = True,
    ) -> StateChange:
        """Move a workitem server-side, e.g. from MPPS: the same state table and checks as Change State.

        - ``IN PROGRESS`` (MPPS N-CREATE): claims the workitem. Without ``transaction_uid`` a new one is generated
          and stored; read it back from ``result.record.transaction_uid``. Claiming an IN PROGRESS workitem fails
          (C301 with another UID, C302 with the same).
        - ``COMPLETED`` / ``CANCELED`` (MPPS N-SET COMPLETED / DISCONTINUED): without ``transaction_uid`` the stored
          one is used. For CANCELED the cancellation date-time and ``reason`` are recorded as a Request Cancel does
          (which also satisfies the CANCELED final-state requirements).
        - ``updates``: attributes merged into the workitem before the checks (N-SET merge rules), e.g. a
          UnifiedProcedureStepPerformedProcedureSequence (0074,1216) built from the MPPS. PS3.4 CC.2.5.1.1 requires
          one, with performed station, start/end date-time, workitem code and output information, before COMPLETED;
          pass ``check_final_state=False`` to skip that check when the MPPS does not provide them.

        Returns the :class:`StateChange` (``warning`` set and nothing stored for COMPLETED→COMPLETED and
        CANCELED→CANCELED). Raises :class:`WorkitemNotFoundError`, :class:`WorkitemBadRequestError` (refused
        transition: ``ups_status`` is the PS3.4 code, e.g. ``C310``; or a missing final-state attribute) or
        :class:`WorkitemConflictError` (a concurrent change won).
        """
        state = ProcedureStepState.parse(str(target))
        if state not in CHANGE_STATE_TARGETS:
            raise WorkitemBadRequestError(
                MSG_UNEXPECTED_VALUE.format(
                    tag_text(PROCEDURE_STEP_STATE), ",".join(t.value for t in CHANGE_STATE_TARGETS)
                )
            )
        row = await self._row(uid)
        if transaction_uid is None:
            current = ProcedureStepState.parse(row.state)
            if state is ProcedureStepState.IN_PROGRESS and current is ProcedureStepState.SCHEDULED:
                transaction_uid = generate_uid()
            else:
                transaction_uid = row.transaction_uid
        now = self.clock()

        def prepare(ds: Dataset) -> Dataset:
            if updates is not None:
                ds = merge_update(ds, updates)
            if state is ProcedureStepState.CANCELED:
                request = Dataset()
                if reason is not None:
                    set_element(request, REASON_FOR_CANCELLATION, reason)
                ds = apply_cancel_request(ds, request, state, now)
            return ds

        return await self._transition(row, state, transaction_uid, prepare=prepare, check_final=check_final_state)

    # --- internals ----------------------------------------------------------------------------------------------

    async def _row(self, uid: str) -> WorkitemRow:
        row = await self.store.get(self.partition_key, uid)
        if row is None:
            raise WorkitemNotFoundError(MSG_NOT_FOUND, "C307")
        return row

    @staticmethod
    def _dataset(row: WorkitemRow) -> Dataset:
        return json_to_dataset(json.loads(row.dataset_json))

    async def _replace(
        self, row: WorkitemRow, state: ProcedureStepState, transaction_uid: str | None, ds: Dataset
    ) -> WorkitemRow:
        try:
            return await self.store.replace(
                row,
                state=state.value,
                transaction_uid=transaction_uid,
                dataset_json=json.dumps(dataset_to_json(ds)),
                values=index_values(ds),
            )
        except StaleWorkitemError as exc:
            raise WorkitemConflictError(MSG_BEING_UPDATED) from exc

    async def _transition(
        self,
        row: WorkitemRow,
        target: ProcedureStepState,
        transaction_uid: str | None,
        *,
        prepare: Callable[[Dataset], Dataset] | None,
        check_final: bool,
    ) -> StateChange:
        """Azure's ``ProcessChangeStateAsync`` after the request validation: transition, final state, store."""
        current = ProcedureStepState.parse(row.state)
        matching = transaction_matches(row.transaction_uid, transaction_uid, target)
        outcome = transition(action_for_target(target), current, matching=matching)
        if outcome.error:
            raise WorkitemBadRequestError(MSG_INVALID_TRANSITION.format(target.value, outcome.code), outcome.code)
        ds = self._dataset(row)
        if prepare is not None:
            ds = prepare(ds)
        prepared = with_state(ds, target, transaction_uid)
        if check_final:
            message = requirements.check_final_state(prepared)
            if message is not None:
                raise WorkitemBadRequestError(message)
        if outcome.warning:
            warning = MSG_FINAL_STATE.format(row.state, outcome.code)
            return StateChange(_record(row), warning, outcome.code)
        new = await self._replace(row, target, transaction_uid, prepared)
        return StateChange(_record(new))


def _dimse_condition(key: SearchKey, value: str) -> Condition:
    """A C-FIND identifier value as a condition: wild cards for text keys, else Azure's value parsers."""
    if key.vr in ("PN", "LO", "SH", "CS") and ("*" in value or "?" in value):
        return Wildcard(key.query_tag, normalize_string(value, key.vr))
    if key.vr == "DT":
        # DIMSE range matching covers each value's whole unit (a date is the whole day).
        return dimse_datetime_range(key.query_tag, value)
    if key.vr == "UI" and "\\" in value:
        condition = parse_value(key.query_tag, value, False, True)
    else:
        condition = parse_value(key.query_tag, value, False, False)
    if condition is None:  # pragma: no cover - every search key has a value parser
        raise BadRequestError(f"Unsupported matching key {key.keyword}.")
    return condition
