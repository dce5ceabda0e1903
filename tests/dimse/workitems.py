"""Workitems for the worklist and MPPS tests, created through UPS-RS (POST /v2/workitems?{uid})."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.factories import new_uid
from tests.workitem_samples import code_item, create_body, request_item

DICOM_JSON = {"Accept": "application/dicom+json", "Content-Type": "application/dicom+json"}


def ups_derived_body(uid: str, *, patient_id: str, accession: str, study_uid: str) -> dict[str, Any]:
    """A plain UPS workitem: the worklist attributes come from its UPS attributes (and a top-level Modality)."""
    return create_body(
        uid,
        **{
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
            "00100020": {"vr": "LO", "Value": [patient_id]},
            "00404005": {"vr": "DT", "Value": ["20240115083000"]},  # ScheduledProcedureStepStartDateTime
            "00741204": {"vr": "LO", "Value": ["Screening mammography"]},  # ProcedureStepLabel
            "0040A370": {"vr": "SQ", "Value": [request_item(accession, "RP-001", study_uid)]},
            "00404025": {"vr": "SQ", "Value": [code_item("MG_ROOM_1", "Mammography room 1")]},
            "00080060": {"vr": "CS", "Value": ["MG"]},  # Modality, as the original emulator's examples carry it
        },
    )


def mwl_given_body(uid: str, *, patient_id: str) -> dict[str, Any]:
    """A workitem that carries worklist attributes itself: AccessionNumber and a ScheduledProcedureStepSequence."""
    step = {
        "00080060": {"vr": "CS", "Value": ["CT"]},
        "00400001": {"vr": "AE", "Value": ["CT_SCANNER"]},
        "00400002": {"vr": "DA", "Value": ["20240116"]},
        "00400003": {"vr": "TM", "Value": ["101500"]},
        "00400007": {"vr": "LO", "Value": ["CT head"]},
        "00400009": {"vr": "SH", "Value": ["SPS-CT-1"]},
    }
    return create_body(
        uid,
        **{
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Roe^Richard"}]},
            "00100020": {"vr": "LO", "Value": [patient_id]},
            "00080050": {"vr": "SH", "Value": ["ACC-002"]},
            "00404005": {"vr": "DT", "Value": ["20240116101500"]},
            "00400100": {"vr": "SQ", "Value": [step]},
        },
    )


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    uid = body["00080018"]["Value"][0]
    r = await client.post(f"/v2/workitems?{uid}", content=json.dumps([body]).encode(), headers=DICOM_JSON)
    assert r.status_code == 201, r.text
    return str(uid)


async def get(client: httpx.AsyncClient, uid: str) -> dict[str, Any]:
    r = await client.get(f"/v2/workitems/{uid}", headers={"Accept": "application/dicom+json"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def state(workitem: dict[str, Any]) -> str:
    return str(workitem["00741000"]["Value"][0])


__all__ = ["create", "get", "mwl_given_body", "new_uid", "state", "ups_derived_body"]
