"""Fixtures for the pure DICOM module tests: lenient pydicom, a valid instance, a file writer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import config as pydicom_config
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicom_emulator.dicom.reading import configure_pydicom

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"
SERIES_UID = "1.2.826.0.1.3680043.8.498.1.2"
SOP_UID = "1.2.826.0.1.3680043.8.498.1.2.3"


@pytest.fixture(autouse=True, scope="session")
def _lenient_pydicom() -> Iterator[None]:
    """The app calls configure_pydicom() at start; tests also write deliberately invalid values."""
    configure_pydicom()
    previous = pydicom_config.settings.writing_validation_mode
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    yield
    pydicom_config.settings.writing_validation_mode = previous


def build_instance() -> Dataset:
    """A minimal instance that passes v1 and v2 validation without any warning."""
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = SOP_UID
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.PatientID = "PID-1"
    ds.PatientName = "Doe^John"
    ds.StudyDate = "20240115"
    ds.Modality = "CT"
    return ds


@pytest.fixture
def instance() -> Dataset:
    return build_instance()


WriteDicom = Callable[..., Path]


@pytest.fixture
def write_dicom(tmp_path: Path) -> WriteDicom:
    """Write ``ds`` as a PS3.10 file (preamble + file meta) and return its path."""
    counter = iter(range(1_000_000))

    def write(ds: Dataset, *, implicit: bool = False, name: str | None = None) -> Path:
        path = tmp_path / (name or f"instance-{next(counter)}.dcm")
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", CT_IMAGE_STORAGE)
        meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", SOP_UID)
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        ds.file_meta = meta
        dcmwrite(path, ds, enforce_file_format=True)
        return path

    return write
