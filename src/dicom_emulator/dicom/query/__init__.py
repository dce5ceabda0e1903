"""Query parsing and matching values: QIDO-RS query strings, the typed conditions they become, and the value
normalization shared by indexing and matching. Pure package: no database and no HTTP.

Modules, lowest first (each imports only those above it in this list):

- :mod:`.messages`: Azure's error messages, word for word.
- :mod:`.dotnet`: .NET-compatible primitives (``String.Trim``, number converters, ``DateTime`` / ``DicomTime``
  parsing) that mimic Azure's C# code.
- :mod:`.normalize`: comparison forms of values, used at index time and at query time.
- :mod:`.conditions`: the typed query model (condition types, :class:`ParsedQuery`).
- :mod:`.attributes`: attribute ids (keyword or hex) and the names messages use.
- :mod:`.values`: per-VR value parsers (one filter value to one condition), shared by QIDO, UPS-RS and C-FIND.
- :mod:`.qido`: QIDO binding, the query string of one request to a :class:`ParsedQuery`.

This package re-exports what the rest of the emulator uses, so importers need not know the split.

Where the reference is silent about a message or an order of checks, the archived microsoft/dicom-server
is the authority: ``Api/Extensions/QueryOptionsExtensions.cs`` (query-string to filters),
``Api/Models/QueryOptions.cs`` + ``PaginationOptions.cs`` + ``Features/Filters/QueryModelStateValidatorAttribute.cs``
(reserved parameters), ``Core/Features/Query/QueryParser.cs`` and ``BaseQueryParser.cs`` (filters and values),
``Core/Features/Common/DicomTagParser.cs`` (attribute ids), and the strings in ``DicomCoreResource.resx`` /
``DicomApiResource.resx``.
"""

from __future__ import annotations

from dicom_emulator.dicom.query.attributes import parse_attribute_id, tag_name
from dicom_emulator.dicom.query.conditions import (
    Condition,
    DateRange,
    FuzzyName,
    ParsedQuery,
    SingleValue,
    UidList,
    Wildcard,
)
from dicom_emulator.dicom.query.dotnet import fold_key, trim
from dicom_emulator.dicom.query.messages import (
    MSG_DUPLICATE_ATTRIBUTE,
    MSG_DUPLICATE_ATTRIBUTE_ID,
    MSG_DUPLICATE_KEY,
    MSG_EMPTY_VALUE,
    MSG_INCLUDE_ALL_WITH_OTHERS,
    MSG_INCLUDE_FIELD_UNKNOWN,
    MSG_INVALID_QUERY_STRING_VALUE,
    MSG_RANGE,
    MSG_VALUE_NOT_VALID_FOR,
)
from dicom_emulator.dicom.query.normalize import (
    normalize_date,
    normalize_datetime,
    normalize_string,
    normalize_time,
    person_name_words,
)
from dicom_emulator.dicom.query.qido import DEFAULT_LIMIT, INCLUDE_FIELD_ALL, MAX_LIMIT, parse_filter, parse_qido
from dicom_emulator.dicom.query.values import dimse_datetime_range, parse_value

__all__ = [
    "DEFAULT_LIMIT",
    "INCLUDE_FIELD_ALL",
    "MAX_LIMIT",
    "MSG_DUPLICATE_ATTRIBUTE",
    "MSG_DUPLICATE_ATTRIBUTE_ID",
    "MSG_DUPLICATE_KEY",
    "MSG_EMPTY_VALUE",
    "MSG_INCLUDE_ALL_WITH_OTHERS",
    "MSG_INCLUDE_FIELD_UNKNOWN",
    "MSG_INVALID_QUERY_STRING_VALUE",
    "MSG_RANGE",
    "MSG_VALUE_NOT_VALID_FOR",
    "Condition",
    "DateRange",
    "FuzzyName",
    "ParsedQuery",
    "SingleValue",
    "UidList",
    "Wildcard",
    "dimse_datetime_range",
    "fold_key",
    "normalize_date",
    "normalize_datetime",
    "normalize_string",
    "normalize_time",
    "parse_attribute_id",
    "parse_filter",
    "parse_qido",
    "parse_value",
    "person_name_words",
    "tag_name",
    "trim",
]
