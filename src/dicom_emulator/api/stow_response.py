"""The STOW-RS response dataset and its HTTP status (azure-behaviour §2.4, §2.5), from the outcomes
of the store service."""

from __future__ import annotations

from typing import Any

from dicom_emulator.services.store_outcome import StoreOutcome


def _failed_attributes(comments: list[str]) -> dict[str, Any]:
    # fo-dicom writes an empty sequence as {"vr": "SQ"} with no Value (azure-behaviour §1.4).
    if not comments:
        return {"vr": "SQ"}
    return {"vr": "SQ", "Value": [{"00000902": {"vr": "LO", "Value": [c]}} for c in comments]}


def store_status(outcomes: list[StoreOutcome], api_major: int) -> int:
    """HTTP status for a STOW request that had at least one part (azure-behaviour §2.5)."""
    stored = [o for o in outcomes if o.stored]
    if not stored:
        return 409
    if len(stored) < len(outcomes):
        return 202
    if api_major >= 2 and any(o.warning_reason is not None for o in stored):
        return 202
    return 200


def build_store_response(
    outcomes: list[StoreOutcome],
    *,
    api_major: int,
    base_url: str,
    route_study_uid: str | None,
) -> dict[str, Any]:
    """The response dataset; ``base_url`` is ``{scheme}://{host}/{version}`` (absolute RetrieveURLs)."""
    body: dict[str, Any] = {}
    stored = [o for o in outcomes if o.stored]
    failed = [o for o in outcomes if not o.stored]
    if route_study_uid is not None and stored:
        body["00081190"] = {"vr": "UR", "Value": [f"{base_url}/studies/{route_study_uid}"]}
    if failed:
        items = []
        for o in failed:
            item: dict[str, Any] = {}
            if o.sop_class_uid is not None:
                item["00081150"] = {"vr": "UI", "Value": [o.sop_class_uid]}
            if o.sop_uid is not None:
                item["00081155"] = {"vr": "UI", "Value": [o.sop_uid]}
            item["00081197"] = {"vr": "US", "Value": [o.failure_code]}
            if o.validation_failure:
                item["00741048"] = _failed_attributes(o.comments)
            items.append(item)
        body["00081198"] = {"vr": "SQ", "Value": items}
    if stored:
        items = []
        for o in stored:
            item = {
                "00081150": {"vr": "UI", "Value": [o.sop_class_uid]},
                "00081155": {"vr": "UI", "Value": [o.sop_uid]},
                "00081190": {
                    "vr": "UR",
                    "Value": [f"{base_url}/studies/{o.study_uid}/series/{o.series_uid}/instances/{o.sop_uid}"],
                },
            }
            if o.warning_reason is not None:
                item["00081196"] = {"vr": "US", "Value": [o.warning_reason]}
            # v2 always carries FailedAttributesSequence on success items, possibly empty (azure-behaviour §1.3).
            if api_major >= 2:
                item["00741048"] = _failed_attributes(o.comments)
            items.append(item)
        body["00081199"] = {"vr": "SQ", "Value": items}
    return body
