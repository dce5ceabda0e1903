"""Test data: small DICOM instances built in code, and STOW request bodies."""

from __future__ import annotations

import io
import itertools
import struct
import uuid
import zlib

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


def deflated_instance(pixel_bytes: int, **kwargs: object) -> bytes:
    """A Deflated Explicit VR Little Endian instance whose OB Pixel Data holds ``pixel_bytes`` zeros.

    Built by streaming zeros through a raw deflate compressor, so a data set of hundreds of MB (a zip bomb)
    costs a few hundred KB of memory to make.
    """
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = make_dataset(**kwargs)  # type: ignore[arg-type]
    del ds.PixelData
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    if pixel_bytes < 65536:
        ds.Rows, ds.Columns = 1, pixel_bytes
    else:
        assert pixel_bytes % (1024 * 1024) == 0, "whole MiB: frames of 1024 x 1024"
        ds.Rows, ds.Columns, ds.NumberOfFrames = 1024, 1024, pixel_bytes // (1024 * 1024)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = io.BytesIO()
    out.write(head.getvalue())
    out.write(compressor.compress(body.getvalue()))
    # (7FE0,0010) OB, reserved, 32-bit length (PS3.5 §7.1.2), then the zeros in 1 MiB pieces.
    out.write(compressor.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, pixel_bytes)))
    zeros = bytes(1024 * 1024)
    left = pixel_bytes
    while left:
        piece = min(left, len(zeros))
        out.write(compressor.compress(zeros[:piece]))
        left -= piece
    out.write(compressor.flush())
    return out.getvalue()
