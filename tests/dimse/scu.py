"""Blocking pynetdicom SCUs for the DIMSE tests (run them off the event loop: ``await asyncio.to_thread(...)``).

Each call opens its own association to the emulator, does one thing, and releases it, as a modality does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from dicom_emulator.config import DEFAULT_AE_TITLE

CALLING_AE = "TEST_MODALITY"
UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def _associate(port: int, ae: AE, **kwargs: object) -> Association:
    assoc = ae.associate("127.0.0.1", port, ae_title=DEFAULT_AE_TITLE, **kwargs)  # type: ignore[arg-type]
    assert assoc.is_established, "association rejected or aborted"
    return assoc


def _ae() -> AE:
    ae = AE(ae_title=CALLING_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    return ae


def reactor_resumed(assoc: Association) -> None:
    """Wait until the association's reactor has left the pause of the last ``send_*`` before sending again.

    pynetdicom's reactor (association.py, ``_run_reactor``) clears its ``_is_paused`` flag only once it has woken
    from that pause; a ``send_*`` made before then sees the stale flag, sends at once, and the waking reactor may
    take the reply off the queue itself ("Received unexpected C-STORE service message"), so the send waits for its
    DIMSE timeout. The emulator answers fast enough for a loaded test machine to land in that window. (A client
    bug, not the server's: any SCP that answers quickly exposes it.)
    """
    deadline = time.monotonic() + 5
    while assoc._is_paused and assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.0005)


def echo(port: int) -> int:
    ae = _ae()
    ae.add_requested_context(Verification)
    assoc = _associate(port, ae)
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


def store(port: int, datasets: Sequence[Dataset], transfer_syntaxes: Sequence[str] = UNCOMPRESSED) -> list[Dataset]:
    """C-STORE every dataset (each encoded in its ``file_meta.TransferSyntaxUID``); the status datasets."""
    ae = _ae()
    for sop_class in dict.fromkeys(str(ds.SOPClassUID) for ds in datasets):
        ae.add_requested_context(sop_class, list(transfer_syntaxes))
    assoc = _associate(port, ae)
    try:
        statuses = []
        for ds in datasets:
            reactor_resumed(assoc)
            statuses.append(assoc.send_c_store(ds))
        return statuses
    finally:
        assoc.release()


def find(port: int, identifier: Dataset, *, worklist: bool = False) -> list[tuple[int, Dataset | None]]:
    """C-FIND (Study Root, or Modality Worklist): every (status, identifier) response, the final one last."""
    model = ModalityWorklistInformationFind if worklist else StudyRootQueryRetrieveInformationModelFind
    ae = _ae()
    ae.add_requested_context(model)
    assoc = _associate(port, ae)
    try:
        return [(int(status.Status), ident) for status, ident in assoc.send_c_find(identifier, model)]
    finally:
        assoc.release()


@dataclass
class GetResult:
    statuses: list[Dataset] = field(default_factory=list)
    identifiers: list[Dataset | None] = field(default_factory=list)
    received: list[Dataset] = field(default_factory=list)

    @property
    def final(self) -> Dataset:
        return self.statuses[-1]

    @property
    def failed_uids(self) -> list[str]:
        """Failed SOP Instance UID List (0008,0058) of the final response (PS3.4 C.4.3.1.3.2)."""
        last = self.identifiers[-1]
        return [] if last is None else list(last.get("FailedSOPInstanceUIDList", []))


def get(
    port: int, identifier: Dataset, sop_classes: Sequence[str], transfer_syntaxes: Sequence[str] = UNCOMPRESSED
) -> GetResult:
    """C-GET, accepting the C-STORE sub-operations for ``sop_classes`` in ``transfer_syntaxes`` (SCP role)."""
    result = GetResult()

    def on_store(event: object) -> int:
        ds = event.dataset  # type: ignore[attr-defined]
        ds.file_meta = event.file_meta  # type: ignore[attr-defined]
        result.received.append(ds)
        return 0x0000

    ae = _ae()
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    roles = []
    for sop_class in sop_classes:
        ae.add_requested_context(sop_class, list(transfer_syntaxes))
        roles.append(build_role(sop_class, scp_role=True))
    assoc = _associate(port, ae, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        for status, ident in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet):
            result.statuses.append(status)
            result.identifiers.append(ident)
    finally:
        assoc.release()
    return result


def mpps_create(port: int, uid: str | None, attributes: Dataset) -> tuple[Dataset, Dataset | None]:
    ae = _ae()
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = _associate(port, ae)
    try:
        return assoc.send_n_create(attributes, ModalityPerformedProcedureStep, uid)  # type: ignore[return-value]
    finally:
        assoc.release()


def mpps_create_without_uid(port: int, attributes: Dataset) -> tuple[Dataset, str | None]:
    """N-CREATE with no Affected SOP Instance UID: the status and the UID the SCP assigned in its response."""
    assigned: list[str] = []

    def on_receive(event: object) -> None:
        command = event.message.command_set  # type: ignore[attr-defined]
        if "AffectedSOPInstanceUID" in command:
            assigned.append(str(command.AffectedSOPInstanceUID))

    ae = _ae()
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = _associate(port, ae, evt_handlers=[(evt.EVT_DIMSE_RECV, on_receive)])
    try:
        status, _ = assoc.send_n_create(attributes, ModalityPerformedProcedureStep, None)
    finally:
        assoc.release()
    return status, assigned[-1] if assigned else None


def mpps_set(port: int, uid: str, modification: Dataset) -> tuple[Dataset, Dataset | None]:
    ae = _ae()
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = _associate(port, ae)
    try:
        return assoc.send_n_set(modification, ModalityPerformedProcedureStep, uid)  # type: ignore[return-value]
    finally:
        assoc.release()
