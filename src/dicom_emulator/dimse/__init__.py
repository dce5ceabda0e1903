"""DIMSE front of the emulator: a pynetdicom Application Entity over the same domain services as DICOMweb.

C-ECHO, C-STORE (the STOW store service), Study Root C-FIND (the QIDO query engine) and C-GET (the retrieve
service), Modality Worklist C-FIND (UPS workitems) and Modality Performed Procedure Step N-CREATE/N-SET (which
drive those workitems). Started by the app lifespan when ``--dimse-port`` is set; see :mod:`.gateway`.
"""

from __future__ import annotations

from dicom_emulator.dimse.gateway import DimseGateway

__all__ = ["DimseGateway"]
