"""The storage records (and the default partition key) that the fronts handle, re-exported for them.

Routes and DIMSE handlers receive these from the services (an instance to stream, a tag to render as JSON) and
name their types, but they never import ``dicom_emulator.storage`` (an import-linter contract). The types stay
defined next to the SQL that fills them; this module is the one place the fronts take them from.
"""

from __future__ import annotations

from dicom_emulator.storage.index import InstanceRecord
from dicom_emulator.storage.models import DEFAULT_PARTITION_KEY
from dicom_emulator.storage.tags_store import TagErrorRecord, TagRecord

__all__ = ["DEFAULT_PARTITION_KEY", "InstanceRecord", "TagErrorRecord", "TagRecord"]
