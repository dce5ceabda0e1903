"""STOW FailureReason / WarningReason codes and the DICOM100 error number (azure-behaviour §2.6)."""

from __future__ import annotations

# --- FailureReason (0008,1197), PS3.18 Table I.2-1 plus Azure's own codes (azure-behaviour §2.6) ---

# 0x0110: general processing failure, e.g. a storage error while persisting (azure-behaviour §2.3 step 7).
PROCESSING_FAILURE = 272
# 0xA900: the instance failed validation: unreadable part, missing/invalid required attribute, study UID
# mismatch (Azure's code emits this, not 43265, for the mismatch: azure-behaviour §2.3 step 3).
VALIDATION_FAILURE = 43264
# 0xA901: documented by Azure for a study UID mismatch but never emitted by its code (azure-behaviour §2.6).
MISMATCH_STUDY_INSTANCE_UID = 43265
# 0xB00E: an instance with the same Study/Series/SOP Instance UIDs is already stored.
SOP_INSTANCE_ALREADY_EXISTS = 45070
# 0xB00F: the same instance is being created by another request or is pending clean-up.
PENDING_SOP_INSTANCE = 45071

# --- WarningReason (0008,1196) ---

# 1: Azure-specific, v2 only: the instance was stored but some attributes failed validation and were dropped
# from the stored metadata (azure-behaviour §2.3 step 4).
DATASET_HAS_VALIDATION_WARNINGS = 1
# 0xB007 "Data Set does not match SOP Class": Azure emits it for implicit-VR files; it takes precedence
# over DATASET_HAS_VALIDATION_WARNINGS (azure-behaviour §2.3 step 5).
DATASET_DOES_NOT_MATCH_SOP_CLASS = 45063

# Error number prefixed to every ErrorComment (0000,0902) as "DICOM100: ..." (azure-behaviour §2.6).
VALIDATION_ERROR_NUMBER = 100
