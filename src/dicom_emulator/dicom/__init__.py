"""Pure DICOM logic: no database, HTTP or filesystem imports."""
