"""UPS-RS (Unified Procedure Step, PS3.4 Annex CC / PS3.18 §11) as Azure's DICOM service implements it.

Pure package: datasets and query strings in, values and messages out; no database and no HTTP. It holds, as
data, everything the workitem service decides with (azure-behaviour §9 of ``azure-dicom-api.md``), one module per
concern:

- :mod:`.states`: :class:`~.states.ProcedureStepState` and the state machine :data:`~.states.TRANSITIONS`, keyed
  on ``(action, current state)`` exactly as Azure's ``ProcedureStepStateExtensions.
  CheckProcedureStepStateTransitionTable`` (PS3.4 Table CC.1.1-2 with Azure's status codes, including where Azure
  differs from the standard);
- :mod:`.requirements`: the attribute requirement tables of PS3.4 Table CC.2.5-3 for create (N-CREATE) and
  update (N-SET), as Azure encodes them (``WorkitemDatasetValidatorExtension``), the final-state codes of PS3.4
  CC.2.5.1.1 (``WorkitemFinalStateValidatorExtension``) and the Change State request body; the check functions
  return Azure's message or ``None``;
- :mod:`.edits`: the dataset edits the service applies (create, update merge, state change, cancel request);
- :mod:`.search`: the search keys (``WorkitemQueryTag.sql``), the query parser (``WorkitemQueryParser``), the
  index values and the returned attributes (``WorkitemQueryResponseBuilder``);
- :mod:`.messages`: Azure's message texts; :mod:`.attributes`: the tags the package names and how it reads one.

Where the reference is silent, the archived ``microsoft/dicom-server`` (branch ``archived``,
``src/Microsoft.Health.Dicom.Core/Features/Workitem``) is the authority; the places are named in the modules.

Azure quirks reproduced on purpose (see the README):

- Requirement entries are kept in Azure's order *including duplicates* (a tag listed by two modules is checked
  twice), so the first failing rule, and therefore the message, is Azure's. Six attributes end up "required and
  non-empty" on create because a Type 2 rule and a "Type 3: non-empty if present" rule both apply (azure-behaviour
  §9.2).
- Requirement codes whose condition Azure cannot evaluate (1C, 2C, and the final-state code RC) are treated as
  optional, as Azure does.

Callers import from the module that defines a name; the package re-exports only the state enum, which the MPPS
gateway imports from here.
"""

from __future__ import annotations

from dicom_emulator.dicom.ups.states import ProcedureStepState

__all__ = ["ProcedureStepState"]
