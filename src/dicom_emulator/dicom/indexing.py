"""Index values of the core QIDO attributes, extracted once at store time (azure-behaviour §4.3, azure-behaviour
§4.4)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement

from dicom_emulator.dicom.json_model import ViewMemo, dataset_encodings
from dicom_emulator.dicom.query import normalize_date, normalize_string, person_name_words
from dicom_emulator.dicom.values import is_multi_value

# The first value of a top-level attribute (by keyword) as text without padding, or None.
FirstValue = Callable[[str], str | None]


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


def memo_first_value(ds: Dataset, memo: ViewMemo) -> FirstValue:
    """:func:`first_value` read from the element views the store's validation already built (no re-decoding).

    pydicom's conversion of a raw element costs more than the rest of indexing; the views hold the same text.
    """
    encodings = dataset_encodings(ds)

    def first(keyword: str) -> str | None:
        view = memo.view(ds, _TAGS[keyword], encodings)
        if view is None or view.vr == "SQ" or not view.values:
            return None
        text = str(view.values[0]).rstrip(" \0")
        return text or None

    return first


def has_multiple_values(ds: Dataset, keyword: str) -> bool:
    elem = ds.data_element(keyword) if keyword in ds else None
    return elem is not None and elem.VR != "SQ" and elem.VM > 1


def _norm(first: FirstValue, keyword: str, vr: str) -> str | None:
    value = first(keyword)
    return None if value is None else normalize_string(value, vr)


def _words(first: FirstValue, keyword: str) -> str | None:
    value = first(keyword)
    if value is None:
        return None
    # Leading space per word so each fuzzy query word is one "LIKE '% word%'" (prefix of a word).
    return "".join(f" {w}" for w in person_name_words(value)) or None


def _date(first: FirstValue, keyword: str) -> str | None:
    value = first(keyword)
    return None if value is None else normalize_date(value)


def study_index_values(ds: Dataset | FirstValue) -> dict[str, Any]:
    """Column values of the ``studies`` row (names match storage/models.py)."""
    first: FirstValue = partial(first_value, ds) if isinstance(ds, Dataset) else ds
    return {
        "patient_id": _norm(first, "PatientID", "LO"),
        "patient_name": _norm(first, "PatientName", "PN"),
        "patient_name_words": _words(first, "PatientName"),
        "patient_birth_date": _date(first, "PatientBirthDate"),
        "accession_number": _norm(first, "AccessionNumber", "SH"),
        "referring_physician_name": _norm(first, "ReferringPhysicianName", "PN"),
        "referring_physician_words": _words(first, "ReferringPhysicianName"),
        "study_date": _date(first, "StudyDate"),
        "study_description": _norm(first, "StudyDescription", "LO"),
    }


def series_index_values(ds: Dataset | FirstValue) -> dict[str, Any]:
    """Column values of the ``series`` row."""
    first: FirstValue = partial(first_value, ds) if isinstance(ds, Dataset) else ds
    return {
        "modality": _norm(first, "Modality", "CS"),
        "performed_procedure_step_start_date": _date(first, "PerformedProcedureStepStartDate"),
        "manufacturer_model_name": _norm(first, "ManufacturerModelName", "LO"),
    }


def number_of_frames(ds: Dataset, first: FirstValue | None = None) -> int | None:
    value = first("NumberOfFrames") if first is not None else first_value(ds, "NumberOfFrames")
    try:
        return int(value) if value is not None else (1 if "PixelData" in ds or "Rows" in ds else None)
    except ValueError:
        return None


_TAGS: dict[str, int] = {
    keyword: int(tag_for_keyword(keyword) or 0)
    for keyword in (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyDate",
        "StudyDescription",
        "Modality",
        "PerformedProcedureStepStartDate",
        "ManufacturerModelName",
        "NumberOfFrames",
        # The identity of a stored instance (services/store.py reads them from the views validation builds).
        "SOPClassUID",
        "SOPInstanceUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
    )
}
