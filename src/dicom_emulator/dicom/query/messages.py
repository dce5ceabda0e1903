"""Azure's QIDO error messages, word for word.

azure-behaviour §4.2-§4.4 quotes the first words of most of them; the full text is Azure's resource string
(``DicomCoreResource.resx`` unless noted, ``DicomApiResource.resx`` for the API ones). Placeholders are filled
exactly as Azure fills them. Kept apart from the parsers because paging and UPS-RS reuse the same strings.
"""

from __future__ import annotations

# QueryModelStateValidatorAttribute + DicomCoreResource.InvalidQueryStringValue: "{parameter} {model-state error}".
MSG_INVALID_QUERY_STRING_VALUE = "The query parameter '{0}' is invalid. {1}"
# ASP.NET Core RangeAttribute default message (PaginationOptions: [Range(1, 200)] Limit, [Range(0, long.MaxValue)]
# Offset; the latter is the double overload, so the maximum prints as a double).
MSG_RANGE = "The field {0} must be between {1} and {2}."
OFFSET_MAX_TEXT = "9.223372036854776E+18"
# ASP.NET Core model-binding defaults: AttemptedValueIsInvalid (conversion failed) and ValueMustNotBeNull (blank
# value for a non-nullable type). The attempted value is all values of the parameter joined with ','.
MSG_VALUE_NOT_VALID_FOR = "The value '{0}' is not valid for {1}."
MSG_VALUE_INVALID = "The value '{0}' is invalid."

MSG_DUPLICATE_ATTRIBUTE_ID = (  # DicomApiResource.DuplicateAttributeId: the same key sent twice
    "Invalid QIDO-RS query. Duplicate AttributeId '{0}'. Each attribute is only allowed to be specified once."
)
# .NET Dictionary.Add: two keys that differ only by surrounding whitespace collide after Trim() (an ArgumentException,
# which the service maps to 400 with its message; azure-behaviour §1.4).
MSG_DUPLICATE_KEY = "An item with the same key has already been added. Key: {0}"
MSG_DUPLICATE_ATTRIBUTE = (  # keyword + hex of the same attribute
    "Invalid query: attribute '{0}' has been specified more than once using different ID formats. "
    "Each attribute is only allowed to be specified once."
)
MSG_UNKNOWN_QUERY_PARAMETER = (
    "Invalid query: unknown query parameter '{0}'. If the parameter is an attribute keyword, check the casing as "
    "they are case-sensitive. The conformance statement has a list of supported query parameters, attributes and "
    "the levels."
)
MSG_NOT_QUERYABLE = (  # DicomCoreResource.UnsupportedSearchParameter (note Azure's double space)
    "Invalid query: AttributeId {0} is not queryable.  If the parameter is an attribute keyword, check the casing "
    "as they are case-sensitive. The conformance statement has a list of supported query parameters, attributes "
    "and the levels."
)
MSG_QUERY_DISABLED = "Query is disabled on specified attribute '{0}'."
MSG_EMPTY_VALUE = "Invalid query: AttributeId '{0}' has empty string value that is not supported."
MSG_DISALLOWED_STUDY_UID = (  # trailing space is in Azure's string
    "Invalid query: cannot specify attribute 'StudyInstanceUID' for the given resource. "
)
MSG_DISALLOWED_SERIES_UID = "Invalid query: cannot specify attribute 'SeriesInstanceUID' for the given resource."
MSG_INCLUDE_ALL_WITH_OTHERS = "Invalid query: cannot specify included fields in addition to 'all'."
MSG_INCLUDE_FIELD_UNKNOWN = "Invalid query: IncludeField has unknown attribute '{0}'."
# ElementValidationException(SequenceDisallowed): DicomElementValidationFailed + SequentialDicomTagsNotSupported.
MSG_SEQUENCE_NOT_SUPPORTED = (
    "Dicom element '{0}' failed validation for VR 'SQ': Sequential dicom tags are currently not supported."
)
MSG_FUZZY_UNSUPPORTED_CHAR = (
    "Invalid query: specified tag '{0}' value '{1}' contains unsupported character '{2}'. Character is not "
    "supported with Fuzzy match, try exact match or removing the invalid character. "
)
MSG_INVALID_RANGE_VALUES = (
    "Invalid query: specified range is invalid.\n"
    "Both parts in the range cannot be empty.\n"
    "For details on valid range queries, please refer to Search Matching section in Conformance Statement "
    "(https://github.com/microsoft/dicom-server/blob/main/docs/resources/conformance-statement.md#search-matching)."
)
MSG_INVALID_DATE = (
    "Invalid query: specified Date value '{0}' is invalid for attribute '{1}'. "
    "Date should be valid and formatted as yyyyMMdd."
)
MSG_INVALID_DATE_RANGE = (
    "Invalid query: specified date range '{0}' is invalid.\n"
    "The first part date {1} should be lesser than or equal to the second part date {2}."
)
MSG_INVALID_DATETIME = (
    "Invalid query: specified DateTime value '{0}' is invalid for attribute '{1}'. "
    "DateTime should be valid and formatted as yyyyMMddHHmmss.FFFFFF where yyyy is mandatory."
)
MSG_DATETIME_WITH_OFFSET = (
    "Invalid query: specified DateTime value '{0}' for attribute {1} contains offset which is not supported."
)
MSG_INVALID_DATETIME_RANGE = (
    "Invalid query: specified date range '{0}' is invalid.\n"
    "The first part DateTime {1} should be lesser than or equal to the second part DateTime {2}."
)
MSG_INVALID_TIME = (
    "Invalid query: specified Time value '{0}' is invalid for parameter '{1}'. "
    "Time should be valid and formatted as HHmmss.FFFFFF where HH is mandatory."
)
MSG_INVALID_TIME_RANGE = (
    "Invalid query: specified date range '{0}' is invalid.\n"
    "The first part time {1} should be lesser than or equal to the second part time {2}."
)
MSG_INVALID_LONG = "Invalid query: specified value '{0}' extended query tag with path '{1}' is not a valid long value."
MSG_INVALID_DOUBLE = (
    "Invalid query: specified value '{0}' extended query tag with path '{1}' is not a valid double value."
)
