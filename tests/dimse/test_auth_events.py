"""DIMSE under ``serve --auth``: unaffected (DIMSE has no tokens); a C-STORE publishes the same event as STOW."""

from __future__ import annotations

import asyncio

from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from dicom_emulator.config import Settings
from tests.dimse import scu
from tests.dimse.conftest import started
from tests.factories import make_dataset


async def test_c_store_with_auth_on_publishes_an_event(settings: Settings) -> None:
    settings.auth = True
    async with started(settings) as dimse:
        ds = make_dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        assert await asyncio.to_thread(scu.echo, dimse.port) == 0x0000
        [status] = await asyncio.to_thread(scu.store, dimse.port, [ds], [ExplicitVRLittleEndian])
        assert status.Status == 0x0000
        assert (await dimse.client.get("/v2/changefeed")).status_code == 401  # HTTP needs a token
        [event] = (await dimse.client.get("/emulator/events")).json()
        assert event["eventType"] == "Microsoft.HealthcareApis.DicomImageCreated"
        assert event["data"]["imageSopInstanceUid"] == ds.SOPInstanceUID
