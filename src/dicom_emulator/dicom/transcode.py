"""Transfer-syntax conversion on retrieve (reference §3.2).

Decoding uses pydicom's pixel handlers with the installed codec plugins (pylibjpeg, openjpeg,
libjpeg, rle); nothing here is a hand-written codec. Failures raise NotAcceptableError (406).
"""

from __future__ import annotations

import io
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless

from dicom_emulator.errors import NotAcceptableError

EXPLICIT_VR_LITTLE_ENDIAN = str(ExplicitVRLittleEndian)
JPEG_2000 = "1.2.840.10008.1.2.4.90"
TRANSCODING_FAILED = "The requested transfer syntax is not supported for this instance."


def transcode(source: Path | bytes, target: str) -> bytes:
    """Return the Part 10 file re-encoded in ``target`` (explicit VR little endian or JPEG 2000)."""
    try:
        ds = dcmread(io.BytesIO(source) if isinstance(source, bytes) else source, force=True)
        current = UID(str(ds.file_meta.TransferSyntaxUID))
        if target == EXPLICIT_VR_LITTLE_ENDIAN:
            if current.is_compressed:
                ds.decompress()
            else:
                # Native data in another encoding (implicit VR, big endian, deflate): re-encode.
                if "PixelData" in ds and current == "1.2.840.10008.1.2.2":
                    ds.PixelData = ds.pixel_array.astype(ds.pixel_array.dtype.newbyteorder("<")).tobytes()
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        elif target == JPEG_2000:
            if current.is_compressed:
                ds.decompress()
            ds.compress(JPEG2000Lossless)
        else:
            raise NotAcceptableError(TRANSCODING_FAILED)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        return out.getvalue()
    except NotAcceptableError:
        raise
    except Exception as exc:
        raise NotAcceptableError(TRANSCODING_FAILED) from exc
