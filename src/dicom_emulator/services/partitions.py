"""Data partitions (azure-behaviour §10.3, §14): Azure's ``PopulateDataPartitionFilter`` as a service.

With the feature off every partition-aware route works on ``Microsoft.Default`` and the partition form of a route is
a 400; with it on only the partition form works. Names are validated on every use; unknown names are created on
STOW and workitem create (``create=True``) and are a 400 everywhere else. Partitions are never renamed or deleted,
so a name once resolved is cached for the life of the process.
"""

from __future__ import annotations

import re

from dicom_emulator.errors import BadRequestError
from dicom_emulator.storage.models import DEFAULT_PARTITION_KEY, DEFAULT_PARTITION_NAME
from dicom_emulator.storage.partition_store import PartitionRecord, SqlPartitionStore

__all__ = [
    "DEFAULT_PARTITION_KEY",
    "DEFAULT_PARTITION_NAME",
    "PartitionRecord",
    "PartitionService",
    "PartitionsDisabledError",
]

# Azure's messages (azure-behaviour §14.1, §14.2); the invalid-name one ends with a space in Azure's resources.
MSG_DISABLED = "Data partitions feature is disabled."
MSG_MISSING = "PartitionName value is missing in the route segment."
MSG_NOT_FOUND = "Specified PartitionName does not exist."
MSG_INVALID = "The specified PartitionName is invalid. "
MSG_CANNOT_DISABLE = "Data partitions feature cannot be disabled while existing data has already been partitioned."
_NAME = re.compile(r"^[A-Za-z0-9_.-]*$")
MAX_NAME_LENGTH = 64


class PartitionsDisabledError(RuntimeError):
    """Start-up refused: the feature is off but partitions other than the default exist (azure-behaviour §14.2)."""


def is_valid_partition_name(name: str) -> bool:
    """``PartitionNameValidator``: not blank, at most 64 characters of ``[A-Za-z0-9_.-]``."""
    return bool(name.strip()) and len(name) <= MAX_NAME_LENGTH and _NAME.match(name) is not None


class PartitionService:
    def __init__(self, store: SqlPartitionStore, *, enabled: bool) -> None:
        self.store = store
        self.enabled = enabled
        self._known: dict[str, PartitionRecord] = {}

    async def check_start(self) -> None:
        """Azure refuses to start with the feature off once data was partitioned (azure-behaviour §14.2)."""
        if not self.enabled and await self.store.has_non_default():
            raise PartitionsDisabledError(MSG_CANNOT_DISABLE)

    async def list(self) -> list[PartitionRecord]:
        """``GET /{v}/partitions``: every partition, the default first; 400 when the feature is off."""
        if not self.enabled:
            raise BadRequestError(MSG_DISABLED)
        return await self.store.list()

    async def resolve(self, name: str | None, *, create: bool = False) -> PartitionRecord:
        """The partition a request addresses: ``name`` from the route (``None`` for the route without one)."""
        if name is None:
            if self.enabled:
                raise BadRequestError(MSG_MISSING)
            return await self._lookup(DEFAULT_PARTITION_NAME, create=False)
        if not self.enabled:
            raise BadRequestError(MSG_DISABLED)
        if not is_valid_partition_name(name):
            raise BadRequestError(MSG_INVALID)
        return await self._lookup(name, create=create)

    async def _lookup(self, name: str, *, create: bool) -> PartitionRecord:
        record = self._known.get(name)
        if record is None:
            record = await (self.store.get_or_create(name) if create else self.store.get(name))
            if record is None:
                raise BadRequestError(MSG_NOT_FOUND)
            self._known[name] = record
        return record

    async def name_of(self, key: int) -> str:
        """The name of partition ``key`` (operation results name partitions, azure-behaviour §15.2)."""
        for record in self._known.values():
            if record.key == key:
                return record.name
        for record in await self.store.list():
            self._known.setdefault(record.name, record)
            if record.key == key:
                return record.name
        return DEFAULT_PARTITION_NAME
