"""Azure's messages for workitem requests (``DicomCoreResource.resx``, branch ``archived``).

Tags print as fo-dicom's ``DicomTag.ToString()``: ``(0008,1195)`` (:func:`dicom_emulator.dicom.tags.tag_text`).
"""

from __future__ import annotations

MSG_MISSING_REQUIRED_TAG = "The required tag '{0}' is missing."
MSG_MISSING_REQUIRED_VALUE = "The value for tag '{0}' is missing."
MSG_ATTRIBUTE_MUST_NOT_BE_EMPTY = "The attribute with tag '{0}' must not be empty."
MSG_ATTRIBUTE_MUST_BE_EMPTY = "The attribute with tag '{0}' must be empty."
MSG_ATTRIBUTE_NOT_ALLOWED = "The attribute with tag '{0}' cannot be present."
MSG_UNEXPECTED_VALUE = "Expected value '{0}' to be one of the following values: [{1}]"
MSG_INVALID_TRANSITION = "The workitem instance can not transition to '{0}' state: {1}."
MSG_FINAL_STATE = "The workitem instance is already in the final state '{0}'. {1}."
MSG_MISMATCH_SOP_INSTANCE_UID = "SOPInstanceUID in the payload does not match the workitem query parameter."
MSG_ALREADY_EXISTS = "The workitem instance already exists. Try creating using a different UID."
MSG_NOT_FOUND = "The workitem instance is not found."
MSG_CANCEL_SUCCESS = "The workitem instance has been cancelled."
MSG_ALREADY_CANCELED = "The UPS is already in the requested state of CANCELED."
MSG_ALREADY_COMPLETED = "The UPS is already COMPLETED."
MSG_INVALID_TRANSACTION_UID = "Invalid TransactionUID for the specified Workitem Instance UID."
MSG_NOT_CLAIMED = "The target URI did not reference a claimed Workitem."
MSG_UPDATE_CONFLICT = "The submitted request is inconsistent with the current state of the Workitem."
MSG_BEING_UPDATED = "The workitem instance is currently being updated. Please try again later."
MSG_UNSUPPORTED_SEARCH_PARAMETER = (  # DicomCoreResource.UnsupportedSearchParameter (note Azure's double space)
    "Invalid query: AttributeId {0} is not queryable.  If the parameter is an attribute keyword, check the casing "
    "as they are case-sensitive. The conformance statement has a list of supported query parameters, attributes "
    "and the levels."
)
MSG_NESTED_SEQUENCE = (  # ElementValidationException(path, SQ, NestedSequence) from DicomTagParser
    "Dicom element '{0}' failed validation for VR 'SQ': Nested Dicom sequence tags are currently not supported."
)
MSG_SEQUENTIAL_TAGS = "Sequential dicom tags are currently not supported."
