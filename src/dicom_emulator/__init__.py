"""Local emulator of the Azure Health Data Services DICOM service."""

from __future__ import annotations

__version__ = "0.1.0"
