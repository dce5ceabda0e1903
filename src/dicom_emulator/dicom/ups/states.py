"""Procedure Step States and the UPS state machine (PS3.4 CC.1.1, Table CC.1.1-2) with Azure's status codes.

Azure's ``ProcedureStepStateExtensions`` (``GetProcedureStepState``, ``CheckProcedureStepStateTransitionTable``)
is the model; where it differs from the standard is said at :data:`TRANSITIONS`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ProcedureStepState(enum.StrEnum):
    """Procedure Step State (0074,1000), PS3.4 CC.1.1. ``NONE`` is Azure's "no/unknown state"."""

    NONE = ""
    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"

    @classmethod
    def parse(cls, text: str | None) -> ProcedureStepState:
        """Azure's ``GetProcedureStepState``: blank → NONE, display names compared case-insensitively,
        anything else → NONE."""
        if text is None or not text.strip():
            return cls.NONE
        folded = text.rstrip(" \0").upper()
        return next((state for state in cls if state.value == folded), cls.NONE)

    @property
    def enum_name(self) -> str:
        """The C# enum member name, which Azure prints in a few messages (``'Canceled'``)."""
        return _ENUM_NAMES[self]

    @property
    def is_final(self) -> bool:
        return self in (ProcedureStepState.COMPLETED, ProcedureStepState.CANCELED)


_ENUM_NAMES = {
    ProcedureStepState.NONE: "None",
    ProcedureStepState.SCHEDULED: "Scheduled",
    ProcedureStepState.IN_PROGRESS: "InProgress",
    ProcedureStepState.COMPLETED: "Completed",
    ProcedureStepState.CANCELED: "Canceled",
}

# Targets a Change State request may ask for (ChangeWorkitemStateDatasetValidator). Azure keeps them in an
# ImmutableHashSet<string>, whose order (and so the order printed in MSG_UNEXPECTED_VALUE) follows .NET's
# per-process randomized string hashes; the emulator prints them in declaration order.
CHANGE_STATE_TARGETS: tuple[ProcedureStepState, ...] = (
    ProcedureStepState.IN_PROGRESS,
    ProcedureStepState.CANCELED,
    ProcedureStepState.COMPLETED,
)


class UpsAction(enum.StrEnum):
    """The events of PS3.4 Table CC.1.1-2 (Azure's ``WorkitemActionEvent``)."""

    N_CREATE = "N-CREATE"
    TO_SCHEDULED = "N-ACTION to SCHEDULED"
    TO_IN_PROGRESS = "N-ACTION to IN PROGRESS"
    TO_COMPLETED = "N-ACTION to COMPLETED"
    TO_CANCELED = "N-ACTION to CANCELED"
    REQUEST_CANCEL = "N-ACTION Request Cancel"


# PS3.4 Table CC.2.1-2 / CC.2.4-2 status codes that the table uses, with their standard meanings.
UPS_STATUS_MEANINGS: dict[str, str] = {
    "0111": "Failed: Duplicate SOP Instance",
    "B304": "Warning: The UPS is already in the requested state of CANCELED",
    "B306": "Warning: The UPS is already in the requested state of COMPLETED",
    "C300": "Failed: The UPS may no longer be updated",
    "C301": "Failed: The correct Transaction UID was not provided",
    "C302": "Failed: The UPS is already IN PROGRESS",
    "C303": "Failed: The UPS may only become SCHEDULED via N-CREATE, not N-SET or N-ACTION",
    "C307": "Failed: Specified SOP Instance UID does not exist or is not a UPS Instance managed by this SCP",
    "C310": "Failed: The UPS is not in the IN PROGRESS state",
    "C311": "Failed: The UPS is already COMPLETED",
    "C312": "Failed: Performer chooses not to cancel",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One cell of the table: the state after the action (``None`` = unchanged) and the status code, if any."""

    state: ProcedureStepState | None
    code: str | None = None
    error: bool = False

    @property
    def warning(self) -> bool:
        return not self.error and self.code is not None


@dataclass(frozen=True, slots=True)
class Transition:
    """A cell whose outcome depends on whether the request's Transaction UID matches the stored one.

    "Matching" (Azure): the request Transaction UID equals the stored one (ordinal), or the stored one is empty and
    the target is IN PROGRESS (the claim). Cells that do not look at the Transaction UID have equal outcomes.
    """

    matching: Outcome
    mismatched: Outcome


def _always(outcome: Outcome) -> Transition:
    return Transition(outcome, outcome)


def _ok(state: ProcedureStepState) -> Outcome:
    return Outcome(state)


def _err(code: str) -> Outcome:
    return Outcome(None, code, error=True)


def _warn(code: str) -> Outcome:
    return Outcome(None, code)


_S = ProcedureStepState
_C301 = _err("C301")

# PS3.4 Table CC.1.1-2 as Azure implements it. Azure differs from the standard where it
# - answers Request Cancel of an IN PROGRESS workitem with C312 (the standard notifies the performer instead;
#   Azure cannot, so it refuses), and
# - checks the Transaction UID *before* the state for every N-ACTION to a target (C301 wins over C310/C302/C300
#   and over the B306/B304 warnings).
TRANSITIONS: dict[tuple[UpsAction, ProcedureStepState], Transition] = {
    (UpsAction.N_CREATE, _S.NONE): _always(_ok(_S.SCHEDULED)),
    (UpsAction.N_CREATE, _S.SCHEDULED): _always(_err("0111")),
    (UpsAction.N_CREATE, _S.IN_PROGRESS): _always(_err("0111")),
    (UpsAction.N_CREATE, _S.COMPLETED): _always(_err("0111")),
    (UpsAction.N_CREATE, _S.CANCELED): _always(_err("0111")),
    (UpsAction.TO_SCHEDULED, _S.NONE): _always(_err("C307")),
    (UpsAction.TO_SCHEDULED, _S.SCHEDULED): _always(_err("C303")),
    (UpsAction.TO_SCHEDULED, _S.IN_PROGRESS): _always(_err("C303")),
    (UpsAction.TO_SCHEDULED, _S.COMPLETED): _always(_err("C303")),
    (UpsAction.TO_SCHEDULED, _S.CANCELED): _always(_err("C303")),
    (UpsAction.TO_IN_PROGRESS, _S.NONE): _always(_err("C307")),
    (UpsAction.TO_IN_PROGRESS, _S.SCHEDULED): Transition(_ok(_S.IN_PROGRESS), _C301),
    (UpsAction.TO_IN_PROGRESS, _S.IN_PROGRESS): Transition(_err("C302"), _C301),
    (UpsAction.TO_IN_PROGRESS, _S.COMPLETED): Transition(_err("C300"), _C301),
    (UpsAction.TO_IN_PROGRESS, _S.CANCELED): Transition(_err("C300"), _C301),
    (UpsAction.TO_COMPLETED, _S.NONE): _always(_err("C307")),
    (UpsAction.TO_COMPLETED, _S.SCHEDULED): Transition(_err("C310"), _C301),
    (UpsAction.TO_COMPLETED, _S.IN_PROGRESS): Transition(_ok(_S.COMPLETED), _C301),
    (UpsAction.TO_COMPLETED, _S.COMPLETED): Transition(_warn("B306"), _C301),
    (UpsAction.TO_COMPLETED, _S.CANCELED): Transition(_err("C300"), _C301),
    (UpsAction.TO_CANCELED, _S.NONE): _always(_err("C307")),
    (UpsAction.TO_CANCELED, _S.SCHEDULED): Transition(_err("C310"), _C301),
    (UpsAction.TO_CANCELED, _S.IN_PROGRESS): Transition(_ok(_S.CANCELED), _C301),
    (UpsAction.TO_CANCELED, _S.COMPLETED): Transition(_err("C300"), _C301),
    (UpsAction.TO_CANCELED, _S.CANCELED): Transition(_warn("B304"), _C301),
    (UpsAction.REQUEST_CANCEL, _S.NONE): _always(_err("C307")),
    (UpsAction.REQUEST_CANCEL, _S.SCHEDULED): _always(_ok(_S.CANCELED)),
    (UpsAction.REQUEST_CANCEL, _S.IN_PROGRESS): _always(_err("C312")),
    (UpsAction.REQUEST_CANCEL, _S.COMPLETED): _always(_err("C311")),
    (UpsAction.REQUEST_CANCEL, _S.CANCELED): _always(_warn("B304")),
}

_ACTION_FOR_TARGET = {
    ProcedureStepState.IN_PROGRESS: UpsAction.TO_IN_PROGRESS,
    ProcedureStepState.COMPLETED: UpsAction.TO_COMPLETED,
    ProcedureStepState.CANCELED: UpsAction.TO_CANCELED,
    ProcedureStepState.SCHEDULED: UpsAction.TO_SCHEDULED,
}


def action_for_target(target: ProcedureStepState) -> UpsAction:
    """The N-ACTION that asks for ``target`` (Change UPS State)."""
    return _ACTION_FOR_TARGET[target]


def transaction_matches(stored: str | None, requested: str | None, target: ProcedureStepState) -> bool:
    """Azure's "matching Transaction UID": equal (ordinal), or nothing stored yet and the target is IN PROGRESS."""
    if stored == requested:
        return True
    return (stored is None or not stored.strip()) and target is ProcedureStepState.IN_PROGRESS


def transition(action: UpsAction, state: ProcedureStepState, *, matching: bool = True) -> Outcome:
    """Look up one cell of :data:`TRANSITIONS`."""
    cell = TRANSITIONS[(action, state)]
    return cell.matching if matching else cell.mismatched
