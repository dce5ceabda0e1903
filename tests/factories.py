"""Test data: small DICOM instances built in code, and STOW request bodies."""

from __future__ import annotations

import io
import itertools
import uuid

import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_counter = itertools.count(1)


def new_uid() -> str:
    return generate_uid(prefix="1.2.826.0.1.3680043.8.498.")


def make_dataset(
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    patient_id: str | None = "PID-1",
    patient_name: str = "Doe^John",
    modality: str = "CT",
    study_date: str = "20240115",
    accession: str = "ACC1",
    rows: int = 4,
    columns: int = 4,
    frames: int = 1,
    **extra: object,
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid or new_uid()
    ds.StudyInstanceUID = study_uid or new_uid()
    ds.SeriesInstanceUID = series_uid or new_uid()
    if patient_id is not None:
        ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.Modality = modality
    ds.StudyDate = study_date
    ds.StudyTime = "101010"
    ds.AccessionNumber = accession
    ds.StudyDescription = "Test study"
    ds.SeriesDescription = "Test series"
    ds.ReferringPhysicianName = "Ref^Doctor"
    ds.InstanceNumber = next(_counter)
    ds.SeriesNumber = 1
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    if frames > 1:
        ds.NumberOfFrames = frames
    pixels = (np.arange(rows * columns * frames, dtype=np.uint16) % 4096).reshape(frames, rows, columns)
    ds.PixelData = pixels.tobytes()
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def to_bytes(ds: Dataset, *, implicit: bool = False) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return buf.getvalue()


def make_instance(**kwargs: object) -> bytes:
    implicit = bool(kwargs.pop("implicit", False))
    return to_bytes(make_dataset(**kwargs), implicit=implicit)  # type: ignore[arg-type]


def multipart(parts: list[bytes], *, part_type: str = "application/dicom") -> tuple[bytes, str]:
    """A STOW body shaped like dicomweb-client's: leading CRLF, no CRLF after the close delimiter."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for part in parts:
        out.write(f"\r\n--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode())
        out.write(part)
    out.write(f"\r\n--{boundary}--".encode())
    return out.getvalue(), f'multipart/related; type="application/dicom"; boundary="{boundary}"'
