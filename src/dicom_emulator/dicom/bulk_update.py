"""``$bulkUpdate`` rules (azure-behaviour §10.1, §15.1, §15.3): which tags may change, their validation, applying them.

Pure: datasets in, datasets and messages out. The service (services/bulk_update.py) reads and writes the files.
"""

from __future__ import annotations

import copy

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset

from dicom_emulator.dicom.json_model import SINGLE_VALUED_STRING_VRS, STRING_VRS, iter_element_views
from dicom_emulator.dicom.validation import error_comment, validate_value

# UpdateTags.cs: patient identification and demographics (no sequences) and three general study tags.
ALLOWED_TAGS: frozenset[int] = frozenset(
    int(t, 16)
    for t in (
        "00100010 00100020 00101000 00100022 00101001 00101005 00101060 00101090 00100021 "
        "00101010 00102180 00403001 00100030 00100032 00100040 00100200 00101020 00101030 00101040 00101080 "
        "00101081 00102150 00102152 00102154 00102160 001021F0 00104000 00102297 00102298 00102299 00102201 "
        "00102292 00102295 00080050 00080090 00081030"
    ).split()
)
MAX_STUDIES = 50
MSG_NOT_SUPPORTED = "Updating the tag is not supported"
MSG_STUDIES_MISSING = "The required field 'StudyInstanceUids' is missing or empty."
MSG_TOO_MANY_STUDIES = f"StudyInstanceUids count exceeded maximum length '{MAX_STUDIES}'"
# File meta of a rewritten file (azure-behaviour §10.1): Azure's implementation class UID and version name.
IMPLEMENTATION_CLASS_UID = "1.3.6.1.4.1.311.129"


def change_dataset_errors(change: Dataset) -> list[str]:
    """ErrorComments (``DICOM100: (gggg,eeee) - …``) for every element of ``change`` that may not be applied."""
    errors: list[str] = []
    for view in iter_element_views(change):
        if view.tag not in ALLOWED_TAGS or view.vr == "SQ":
            errors.append(error_comment(view.tag, MSG_NOT_SUPPORTED))
            continue
        if view.vr in STRING_VRS:
            values = [view.text or ""] if view.vr in SINGLE_VALUED_STRING_VRS and view.values else view.values
            for value in values:
                message = validate_value(view.vr, str(value))
                if message is not None:
                    errors.append(error_comment(view.tag, message))
                    break
    return errors


def apply_changes(target: Dataset, change: Dataset, *, implementation_version: str) -> None:
    """Write every element of ``change`` into ``target`` (pixel data and everything else untouched).

    An element sent without a value does not clear a value the instance has (Azure cannot set a non-null value to
    null, azure-behaviour §10.1). The file meta names Azure's implementation as the writer.
    """
    for elem in change:
        if elem.is_empty and elem.tag in target and not target[elem.tag].is_empty:
            continue
        target[elem.tag] = copy.deepcopy(elem)
    meta = getattr(target, "file_meta", None) or FileMetaDataset()
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = implementation_version[:16]
    target.file_meta = meta
