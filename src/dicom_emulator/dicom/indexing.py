"""Index values of the core QIDO attributes, extracted once at store time (azure-behaviour §4.3, azure-behaviour
§4.4)."""

from __future__ import annotations

from typing import Any

from pydicom import Dataset
from pydicom.dataelem import DataElement

from dicom_emulator.dicom.query import normalize_date, normalize_string, person_name_words
from dicom_emulator.dicom.values import is_multi_value


def first_value(ds: Dataset, keyword: str) -> str | None:
    """The first value of a top-level element as text; only the first value is indexed (azure-behaviour §4.4)."""
    elem: DataElement | None = ds.data_element(keyword) if keyword in ds else None
    if elem is None or elem.VR == "SQ":
        return None
    value = elem.value
    if value is None or value == "":
        return None
    if is_multi_value(value):
        if len(value) == 0:
            return None
        value = value[0]
    text = str(value).rstrip(" \0")
    return text or None


def has_multiple_values(ds: Dataset, keyword: str) -> bool:
    elem = ds.data_element(keyword) if keyword in ds else None
    return elem is not None and elem.VR != "SQ" and elem.VM > 1


def _norm(ds: Dataset, keyword: str, vr: str) -> str | None:
    value = first_value(ds, keyword)
    return None if value is None else normalize_string(value, vr)


def _words(ds: Dataset, keyword: str) -> str | None:
    value = first_value(ds, keyword)
    if value is None:
        return None
    # Leading space per word so each fuzzy query word is one "LIKE '% word%'" (prefix of a word).
    return "".join(f" {w}" for w in person_name_words(value)) or None


def _date(ds: Dataset, keyword: str) -> str | None:
    value = first_value(ds, keyword)
    return None if value is None else normalize_date(value)


def study_index_values(ds: Dataset) -> dict[str, Any]:
    """Column values of the ``studies`` row (names match storage/models.py)."""
    return {
        "patient_id": _norm(ds, "PatientID", "LO"),
        "patient_name": _norm(ds, "PatientName", "PN"),
        "patient_name_words": _words(ds, "PatientName"),
        "patient_birth_date": _date(ds, "PatientBirthDate"),
        "accession_number": _norm(ds, "AccessionNumber", "SH"),
        "referring_physician_name": _norm(ds, "ReferringPhysicianName", "PN"),
        "referring_physician_words": _words(ds, "ReferringPhysicianName"),
        "study_date": _date(ds, "StudyDate"),
        "study_description": _norm(ds, "StudyDescription", "LO"),
    }


def series_index_values(ds: Dataset) -> dict[str, Any]:
    """Column values of the ``series`` row."""
    return {
        "modality": _norm(ds, "Modality", "CS"),
        "performed_procedure_step_start_date": _date(ds, "PerformedProcedureStepStartDate"),
        "manufacturer_model_name": _norm(ds, "ManufacturerModelName", "LO"),
    }


def number_of_frames(ds: Dataset) -> int | None:
    value = first_value(ds, "NumberOfFrames")
    try:
        return int(value) if value is not None else (1 if "PixelData" in ds or "Rows" in ds else None)
    except ValueError:
        return None
