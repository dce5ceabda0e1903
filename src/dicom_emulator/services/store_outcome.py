"""What storing one instance came to: the result the store service gives both fronts.

STOW renders a list of them as the response dataset and chooses the HTTP status (``api.stow_response``);
C-STORE maps each to a DIMSE status (``dimse.handlers``). The codes are STOW's FailureReason / WarningReason
(``dicom.status``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class StoreOutcome:
    """What happened to one instance: a part of a STOW request or a C-STORE."""

    sop_class_uid: str | None = None
    sop_uid: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    failure_code: int | None = None
    warning_reason: int | None = None
    # ErrorComment texts for FailedAttributesSequence (0074,1048).
    comments: list[str] = field(default_factory=list)
    # True when the failure came from attribute validation: only then is 0074,1048 on a failure item.
    validation_failure: bool = False
    multiple_values_warning: bool = False

    @property
    def stored(self) -> bool:
        return self.failure_code is None
